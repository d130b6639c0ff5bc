package supervisor

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// slowLogsRuntime follows logs until its context ends, then takes a while to
// return, as a real log stream closing does.
type slowLogsRuntime struct {
	Runtime  // only LogsSince is called before an abort
	returned atomic.Bool
}

func (f *slowLogsRuntime) LogsSince(ctx context.Context, _ string, _ time.Time, _ bool, _, _ io.Writer) error {
	<-ctx.Done()
	time.Sleep(100 * time.Millisecond)
	f.returned.Store(true)
	return ctx.Err()
}

// An aborting supervisor leaves the container running, but nothing it started
// for it outlives the call: the log follower has returned, on the agent's path
// and on verify's.
func TestRunContainerJoinsLogsOnAbort(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		call func(ctx context.Context, s *Supervisor, r *run, waitCh chan docker.WaitResult) ending
	}{
		{"agent", func(ctx context.Context, s *Supervisor, r *run, waitCh chan docker.WaitResult) ending {
			ar, err := s.supervise(ctx, r, &workspace{}, "c1", waitCh, logPos{})
			if err != nil {
				t.Fatalf("supervise: %v", err)
			}
			return ar.end
		}},
		{"verify", func(ctx context.Context, s *Supervisor, r *run, waitCh chan docker.WaitResult) ending {
			sink := func([]byte, func(trakkar.Event, logPos)) {}
			ce, err := s.runContainer(ctx, r, "c1", waitCh, runOpts{what: "verify container", deadline: time.Hour, stdout: sink, stderr: sink})
			if err != nil {
				t.Fatalf("runContainer: %v", err)
			}
			return ce.end
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt := &slowLogsRuntime{}
			s := &Supervisor{rt: rt, log: zap.NewNop()}
			r := &run{claim: trakkar.Claim{Run: trakkar.Run{ID: "run_1"}}, log: zap.NewNop(),
				stopReq: make(chan struct{}), lost: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			if end := c.call(ctx, s, r, make(chan docker.WaitResult)); end != endAborted {
				t.Fatalf("ended %v, want aborted", end)
			}
			if !rt.returned.Load() {
				t.Fatal("returned while its log follower was still running")
			}
		})
	}
}
