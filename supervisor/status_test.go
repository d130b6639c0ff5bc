package supervisor_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// ReadRuns sees what a real run wrote: while the agent works, the run's phase,
// container, workspace and latest event; once it is stopped, the kept
// workspace and the outcome. Another runner id sees none of it.
func TestReadRunsFromARun(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	e.setScript(agentHangs(nil))
	task := e.task("WEB-5")
	cfg := e.config(nil)
	p := e.start(cfg)
	id := e.waitAgent("WEB-5")

	var runs []supervisor.RunInfo
	waitFor(t, fakeWait, "the agent's line as the last event", func() bool {
		var err error
		if runs, err = supervisor.ReadRuns(e.repo, cfg.Runner.ID); err != nil {
			t.Fatal(err)
		}
		return len(runs) == 1 && runs[0].LastEvent != nil && runs[0].LastEvent.Text == "working"
	})
	r := runs[0]
	if r.TaskKey != "WEB-5" || r.Phase != "running" || r.ContainerID != id || r.Workspace == "" || r.Kept ||
		r.ClaimedAt.IsZero() || r.Elapsed(time.Now()) <= 0 {
		t.Errorf("working run: %+v", r)
	}
	if other, _ := supervisor.ReadRuns(e.repo, "rnr_someone_else"); len(other) != 0 {
		t.Errorf("another runner's status shows %+v", other)
	}

	if err := e.stand.Stop(task.ID); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	runs, err := supervisor.ReadRuns(e.repo, cfg.Runner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Phase != "done" || !runs[0].Kept || runs[0].Outcome != trakkar.OutcomeStopped {
		t.Fatalf("stopped run: %+v", runs)
	}
	if le := runs[0].LastEvent; le == nil || le.Type != trakkar.EventStatus {
		t.Errorf("last event after the stop: %+v, want the status that said so", le)
	}

	// The latest event is written without a sync: a crash may leave it
	// empty or unfilled, which shows no event and hides nothing else.
	files, _ := filepath.Glob(filepath.Join(supervisor.WorktreeRoot(e.repo), ".state", "*", "last-event.json"))
	if len(files) != 1 {
		t.Fatalf("last event files: %v, want 1", files)
	}
	for name, data := range map[string][]byte{"empty": nil, "unfilled": make([]byte, 64)} {
		if err := os.WriteFile(files[0], data, 0o644); err != nil {
			t.Fatal(err)
		}
		runs, err = supervisor.ReadRuns(e.repo, cfg.Runner.ID)
		if err != nil || len(runs) != 1 || runs[0].LastEvent != nil || runs[0].Outcome != trakkar.OutcomeStopped {
			t.Fatalf("with an %s last event file: %+v, %v; want the stopped run without an event", name, runs, err)
		}
	}
}
