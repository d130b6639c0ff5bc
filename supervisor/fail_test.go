package supervisor

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/redact"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// recordingAPI keeps the events the shipper posts.
type recordingAPI struct {
	mu  sync.Mutex
	evs []trakkar.Event
}

func (a *recordingAPI) PostEvents(_ context.Context, _ string, evs []trakkar.Event) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, evs...)
	return evs[len(evs)-1].Seq, nil
}

// A failed agent run says why exactly once in the task (none when the worker
// said it itself) and once in the completion.
func TestAgentFailureSaidOnce(t *testing.T) {
	cases := []struct {
		name       string
		ar         agentRun
		wantEvents []string
		wantReason string
	}{
		{"workspace past the cap", agentRun{end: endDiskFull},
			[]string{"The agent's container was stopped: the workspace grew past --max-workspace-mb (5 MiB). The workspace is kept for inspection."},
			"the workspace grew past --max-workspace-mb (5 MiB)"},
		{"out of memory", agentRun{exit: docker.ExitStatus{Code: 137, OOMKilled: true}},
			[]string{"The agent's container ran out of memory"}, "the agent's container ran out of memory"},
		{"no result", agentRun{exit: docker.ExitStatus{Code: workerproto.ExitCLIMissing}},
			[]string{"the worker left no result: the agent CLI is missing from the image"},
			"the worker left no result: the agent CLI is missing from the image"},
		{"the worker's own reason", agentRun{exit: docker.ExitStatus{Code: workerproto.ExitAgentFailed},
			result: &workerproto.Result{Outcome: "failed", Error: "the model refused"}},
			nil, "the model refused"},
		{"unexplained exit", agentRun{exit: docker.ExitStatus{Code: workerproto.ExitAgentFailed}, result: &workerproto.Result{Outcome: "failed"}},
			[]string{"Agent failed: the agent reported a failure"}, "the agent reported a failure"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := &recordingAPI{}
			s := &Supervisor{cfg: Config{MaxWorkspaceMB: 5}, log: zap.NewNop(), redact: redact.New()}
			r := &run{runReporter: runReporter{redact: s.redact}, claim: trakkar.Claim{Run: trakkar.Run{ID: "run_1"}}, log: zap.NewNop(), lost: make(chan struct{}),
				ship: trakkar.NewShipper(api, "run_1", trakkar.ShipperOptions{Logger: zap.NewNop()})}
			comp := s.outcome(r, &c.ar)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.ship.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range api.evs {
				if ev.Type == trakkar.EventError {
					got = append(got, ev.Text)
				}
			}
			if !slices.Equal(got, c.wantEvents) {
				t.Errorf("error events %q, want %q", got, c.wantEvents)
			}
			if comp == nil || comp.Outcome != trakkar.OutcomeFailed || comp.Error == nil || *comp.Error != c.wantReason {
				t.Fatalf("completion %+v, want failed with %q", comp, c.wantReason)
			}
		})
	}
}
