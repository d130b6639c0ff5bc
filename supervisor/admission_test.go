package supervisor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/fakeruntime"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// heldStarts holds every agent container's create until the test lets one
// through: the runs stay in their setup.
type heldStarts struct {
	*fakeruntime.Runtime
	let chan struct{}
}

func (h heldStarts) Create(ctx context.Context, s docker.Spec) (string, error) {
	if !isVerify(s) {
		select {
		case <-h.let:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return h.Runtime.Create(ctx, s)
}

// claimed counts the tasks' runs some runner holds or finished.
func (e *fakeEnv) claimed(keys []string) int {
	n := 0
	for _, k := range keys {
		if len(e.runOf(k).Claims) > 0 {
			n++
		}
	}
	return n
}

// A runner claims only while fewer than --max-starting runs set up; the rest
// stay queued in Trakkar and are claimed one by one as containers start. The
// agents run until stopped, so a place that freed only when a run ended
// would claim nothing more.
func TestAdmissionClaimsOnlyWhatItCanStart(t *testing.T) {
	t.Parallel()
	for _, once := range []bool{false, true} {
		t.Run(fmt.Sprintf("once=%v", once), func(t *testing.T) {
			parallel(t)
			e := newFakeEnv(t, trakkar.Agent{})
			e.setScript(agentHangs(nil))
			held := heldStarts{Runtime: e.rt, let: make(chan struct{})}
			e.runtime = held
			keys := []string{"ADM-1", "ADM-2", "ADM-3"}
			ids := map[string]string{}
			for _, k := range keys {
				ids[k] = e.task(k).ID
			}
			p := e.start(e.config(func(c *supervisor.Config) {
				c.Once, c.MaxConcurrency, c.MaxStarting = once, 3, 1
			}))
			for want := 1; want <= len(keys); want++ {
				waitFor(t, fakeWait, fmt.Sprintf("%d claimed", want), func() bool { return e.claimed(keys) >= want })
				// Several poll intervals (20ms) pass: nothing more is claimed
				// while the one setup is held.
				time.Sleep(200 * time.Millisecond)
				if got := e.claimed(keys); got != want {
					t.Fatalf("%d runs claimed while %d setup(s) were let through, want %d", got, want-1, want)
				}
				held.let <- struct{}{}
			}
			for _, k := range keys {
				e.waitAgent(k)
				if err := e.stand.Stop(ids[k]); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range keys {
				waitFor(t, fakeWait, k+" completed", func() bool { return e.runOf(k).Completion != nil })
				if c := e.runOf(k).Completion; c.Outcome != trakkar.OutcomeStopped {
					t.Errorf("%s ended %s, want stopped: %s", k, c.Outcome, c.Summary)
				}
			}
			if once {
				p.wait(t)
			}
		})
	}
}
