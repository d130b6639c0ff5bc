package supervisor_test

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/fakeruntime"
	"github.com/trakkar/trakkar-agent/internal/logkey"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
)

// Every status and error event a run sends to Trakkar is in the log with the
// same text, in the same order, and the completion's line carries the outcome
// and the failure reason as Trakkar got them. No line repeats a field key:
// the run's logger and the shipper's carry run_id once.
func TestLifecycleInTheLog(t *testing.T) {
	parallel(t)
	tests := []struct {
		name    string
		script  func(docker.Spec) fakeruntime.Script
		outcome string
	}{
		{"succeeded", agentSucceeds, trakkar.OutcomeSucceeded},
		{"failed", func(docker.Spec) fakeruntime.Script { return fakeruntime.Script{Exit: workerproto.ExitAgentFailed} }, trakkar.OutcomeFailed},
		{"refused result", func(docker.Spec) fakeruntime.Script {
			return fakeruntime.Script{Files: map[string]string{"x.txt": "x\n"},
				Result: &workerproto.Result{Outcome: "maybe", Summary: "?"}, Exit: workerproto.ExitAgentFailed}
		}, trakkar.OutcomeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t, trakkar.Agent{})
			core, logs := observer.New(zapcore.DebugLevel)
			e.log = zap.New(core)
			e.setScript(tt.script)
			e.task("WEB-9")
			e.start(e.config(nil)).wait(t)
			rv := e.runOf("WEB-9")
			if rv.Completion == nil || rv.Completion.Outcome != tt.outcome {
				t.Fatalf("completion %+v, want %s", rv.Completion, tt.outcome)
			}

			// The run's lines, in order.
			var runLines []observer.LoggedEntry
			for _, en := range logs.AllUntimed() {
				if runID(en) == rv.Run.ID {
					runLines = append(runLines, en)
				}
			}
			i := 0
			for _, ev := range rv.Events {
				if ev.Type != trakkar.EventStatus && ev.Type != trakkar.EventError {
					continue
				}
				want := zapcore.InfoLevel
				if ev.Type == trakkar.EventError {
					want = zapcore.WarnLevel
				}
				for i < len(runLines) && (runLines[i].Message != ev.Text || runLines[i].Level != want) {
					i++
				}
				if i == len(runLines) {
					t.Fatalf("%s event %q is not in the run's log (in order, at %s)\nevents:\n%s", ev.Type, ev.Text, want, texts(rv.Events))
				}
			}

			done := logs.FilterMessage("run completed").AllUntimed()
			if len(done) != 1 {
				t.Fatalf("%d \"run completed\" lines, want 1", len(done))
			}
			fields := done[0].ContextMap()
			if fields[logkey.Outcome] != tt.outcome || runID(done[0]) != rv.Run.ID {
				t.Errorf("run completed line %v, want outcome %s of run %s", fields, tt.outcome, rv.Run.ID)
			}
			if want := errText(rv.Completion); want != "" && fields[logkey.Reason] != want {
				t.Errorf("run completed reason %q, want Trakkar's %q", fields[logkey.Reason], want)
			}

			for _, en := range logs.AllUntimed() {
				seen := map[string]bool{}
				for _, f := range en.Context {
					if seen[f.Key] {
						t.Errorf("%s line %q carries %q twice: %v", en.LoggerName, en.Message, f.Key, en.ContextMap())
					}
					seen[f.Key] = true
				}
			}
		})
	}
}

func runID(en observer.LoggedEntry) string {
	for _, f := range en.Context {
		if f.Key == logkey.RunID {
			return f.String
		}
	}
	return ""
}
