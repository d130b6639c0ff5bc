package supervisor_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

var (
	buildOnce sync.Once
	agentBin  string
	buildErr  error
)

// binary builds cmd/trakkar-agent once: crash tests SIGKILL a real process.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "trakkar-agent-e2e")
		if err != nil {
			buildErr = err
			return
		}
		agentBin = filepath.Join(dir, "trakkar-agent")
		out, err := exec.Command("go", "build", "-o", agentBin, "../cmd/trakkar-agent").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build trakkar-agent: %v", buildErr)
	}
	return agentBin
}

// process is the supervisor as a separate OS process.
type process struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func (e *env) spawn(t *testing.T, apiURL string, extra ...string) *process {
	t.Helper()
	args := append([]string{"--repo", e.repo, "--image", e.image, "--interval", "1", "--poll-wait", "1",
		"--stop-grace", "2", "--github-api-url", e.gh.URL(), "--log-level", "debug"}, extra...)
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(),
		"TRAKKAR_API_URL="+apiURL, "TRAKKAR_TOKEN="+agentToken, "GH_TOKEN="+ghToken,
		"ANTHROPIC_API_KEY="+modelKey, "TRAKKAR_RUNNER_ID="+e.runner, "TRAKKAR_LOG_FORMAT=console")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, out: &out}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("supervisor output:\n%s", out.String())
		}
	})
	return p
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// assertNoDuplicateContent fails when the same agent output reached the task twice.
func assertNoDuplicateContent(t *testing.T, evs []trakkar.Event) {
	t.Helper()
	seen := map[string]int64{}
	for _, ev := range evs {
		if ev.Type != trakkar.EventMessage && ev.Type != trakkar.EventTool {
			continue
		}
		for _, line := range strings.Split(ev.Text, "\n") {
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			if prev, dup := seen[line]; dup {
				t.Fatalf("%q delivered twice (seq %d and %d)", line, prev, ev.Seq)
			}
			seen[line] = ev.Seq
		}
	}
}

// SIGKILL mid-run, restart: the same container finishes, the events go on with
// no gap or duplicate, one PR, run completed.
func TestSIGKILLMidRunThenRestart(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{lease: 10})
	url := e.serve(t)
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "REL-1", Title: "Survive a crash",
		Description: "fake:scenario=edit\nfake:delay=800ms\nfake:write=crash.txt=still here\n"}); err != nil {
		t.Fatal(err)
	}
	p := e.spawn(t, url)
	var containerID string
	waitFor(t, 60*time.Second, "the agent streaming", func() bool {
		rv, ok := e.lastRun("REL-1")
		cs := e.managedContainers()
		if len(cs) == 1 {
			containerID = cs[0].ID
		}
		return ok && containerID != "" && countType(rv.Events, trakkar.EventMessage, trakkar.EventTool) >= 2
	})
	p.kill(t)
	if cs := e.managedContainers(); len(cs) != 1 || cs[0].ID != containerID {
		t.Fatalf("the agent's container must outlive the supervisor: %v", cs)
	}
	e.spawn(t, url)
	rv := e.waitCompleted("REL-1", 90*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeSucceeded || rv.Completion.PullRequest == nil {
		t.Fatalf("after restart: %+v\n%s", rv.Completion, eventTexts(rv.Events))
	}
	assertSeqContiguous(t, rv.Events)
	assertNoDuplicateContent(t, rv.Events)
	if !strings.Contains(eventTexts(rv.Events), "Runner restarted") {
		t.Errorf("the task does not say the runner restarted:\n%s", eventTexts(rv.Events))
	}
	if n := len(e.gh.PRs("acme", "web")); n != 1 {
		t.Fatalf("%d PRs, want exactly 1", n)
	}
	waitFor(t, 30*time.Second, "container removed", func() bool { return len(e.managedContainers()) == 0 })
}

// SIGKILL while the container is finishing: the restart publishes and completes.
func TestSIGKILLWhileContainerExits(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{lease: 10})
	url := e.serve(t)
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "REL-2", Title: "Exit while down",
		Description: "fake:scenario=edit\nfake:delay=150ms\nfake:write=exit.txt=done\n"}); err != nil {
		t.Fatal(err)
	}
	p := e.spawn(t, url)
	// Killed once the agent runs: a kill between create and start is another case.
	waitFor(t, 60*time.Second, "container running", func() bool {
		cs := e.managedContainers()
		return len(cs) == 1 && cs[0].State == "running"
	})
	p.kill(t)
	// The agent finishes while no supervisor is watching.
	waitFor(t, 60*time.Second, "container exited", func() bool {
		cs := e.managedContainers()
		return len(cs) == 1 && cs[0].State == "exited"
	})
	e.spawn(t, url)
	rv := e.waitCompleted("REL-2", 90*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeSucceeded || rv.Completion.PullRequest == nil {
		t.Fatalf("after restart: %+v\n%s", rv.Completion, eventTexts(rv.Events))
	}
	assertSeqContiguous(t, rv.Events)
	assertNoDuplicateContent(t, rv.Events)
	if n := len(e.gh.PRs("acme", "web")); n != 1 {
		t.Fatalf("%d PRs, want exactly 1", n)
	}
	_, files := e.gh.Branch(t, "acme", "web", rv.Completion.PullRequest.Branch)
	if files["exit.txt"] != "done" && !strings.Contains(files["exit.txt"], "done") {
		t.Fatalf("published files: %v", keysOf(files))
	}
}

// A labelled container that no run record owns is removed on start.
func TestOrphanContainerReaped(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	url := e.serve(t)
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "REL-3", Title: "Hang", Description: "fake:scenario=hang\n"}); err != nil {
		t.Fatal(err)
	}
	p := e.spawn(t, url)
	var orphan string
	waitFor(t, 60*time.Second, "container started", func() bool {
		cs := e.managedContainers()
		if len(cs) == 1 {
			orphan = cs[0].ID
		}
		return orphan != ""
	})
	p.kill(t)
	// Its record is gone (a wiped state folder): nothing owns the container now.
	// The container still runs and writes in there, so the wipe may take tries.
	state := filepath.Join(e.repo, ".trakkar-worktrees", ".state")
	waitFor(t, 30*time.Second, "the state folder wiped", func() bool { return os.RemoveAll(state) == nil })
	e.spawn(t, url)
	// By id: once the lease lapses the run is offered again, and the new
	// supervisor may claim it and start a container of its own.
	waitFor(t, 30*time.Second, "orphan removed", func() bool {
		for _, c := range e.managedContainers() {
			if c.ID == orphan {
				return false
			}
		}
		return true
	})
}

func countType(evs []trakkar.Event, types ...string) int {
	n := 0
	for _, ev := range evs {
		for _, t := range types {
			if ev.Type == t {
				n++
			}
		}
	}
	return n
}
