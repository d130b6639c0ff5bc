package supervisor_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/fakeruntime"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/internal/workerproto"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// The tests in this file drive the supervisor's phase machine with the
// in-memory runtime: real host git on a temporary repository and the real
// stand-in Trakkar over HTTP, no Docker. Each takes well under a second.

var _ supervisor.Runtime = (*fakeruntime.Runtime)(nil)

// fakeEnv is one Docker-free setup: a bare origin and its clone, the stand-in
// on a frozen clock (leases lapse only when a test moves it), and a fake runtime
// whose scripts the test picks per container.
type fakeEnv struct {
	t      *testing.T
	stand  *standin.Server
	api    *trakkar.Client
	rt     *fakeruntime.Runtime
	repo   string
	origin string
	log    *zap.Logger
	clock  atomic.Int64 // offset of the stand-in's clock, ns
	script atomic.Pointer[func(docker.Spec) fakeruntime.Script]
	// agentID is the agent container crashRunning left behind.
	agentID string
	// metrics, when set before start, hears the supervisor (Deps.Metrics).
	metrics supervisor.Metrics
	// runtime, when set before start, wraps rt (a test's hooks around it).
	runtime supervisor.Runtime
	// wrap, when set, wraps the stand-in's handler (a test's hooks around it).
	wrap atomic.Pointer[func(http.Handler) http.Handler]
}

func newFakeEnv(t *testing.T, agent trakkar.Agent) *fakeEnv {
	t.Helper()
	return newFakeEnvLease(t, agent, 5)
}

// newFakeEnvLease is newFakeEnv with the stand-in's lease in seconds. The
// default, 5 s, keeps heartbeats (which time out after a third of it) alive on
// a host running two suites at once; a test that needs the runner's own view
// of the lease to go stale quickly asks for 1 s.
func newFakeEnvLease(t *testing.T, agent trakkar.Agent, leaseSeconds int) *fakeEnv {
	t.Helper()
	e := &fakeEnv{t: t, log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
	dir := t.TempDir()
	e.origin = filepath.Join(dir, "origin.git")
	gitCmd(t, "", "init", "-q", "--bare", "-b", "main", e.origin)
	seed := filepath.Join(dir, "seed")
	gitCmd(t, "", "init", "-q", "-b", "main", seed)
	if err := os.WriteFile(filepath.Join(seed, "README.md"), []byte("# web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, seed, "add", ".")
	gitCmd(t, seed, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init")
	gitCmd(t, seed, "push", "-q", e.origin, "main")
	e.repo = filepath.Join(dir, "web")
	gitCmd(t, "", "clone", "-q", e.origin, e.repo)

	base := time.Now()
	e.stand = standin.New(standin.Options{Token: agentToken, Agent: agent, LeaseSeconds: leaseSeconds, Logger: e.log.Named("standin"),
		Now: func() time.Time { return base.Add(time.Duration(e.clock.Load())) }})
	h := e.stand.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wrap := e.wrap.Load(); wrap != nil {
			(*wrap)(h).ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(e.stand.Close)
	var err error
	e.api, err = trakkar.NewClient(trakkar.Options{BaseURL: srv.URL, Token: agentToken, Version: "test", Logger: e.log.Named("client"),
		MaxBackoff: 50 * time.Millisecond, MaxElapsed: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.setScript(agentSucceeds)
	e.rt = fakeruntime.New(func(s docker.Spec) fakeruntime.Script { return (*e.script.Load())(s) })
	return e
}

func (e *fakeEnv) setScript(f func(docker.Spec) fakeruntime.Script) { e.script.Store(&f) }

func (e *fakeEnv) config(mod func(*supervisor.Config)) supervisor.Config {
	cfg := supervisor.Config{
		Repo: e.repo, Remote: "origin", Provider: supervisor.ProviderClaude,
		Interval: 20 * time.Millisecond, Image: "fake-image", Publish: supervisor.PublishBranch,
		Runner:        supervisor.RunnerInfo{ID: "rnr_fake_" + testimage.RunID() + "_" + strings.ReplaceAll(e.t.Name(), "/", "_"), Hostname: "fake-host", Version: "test"},
		ContainerUser: containerUser(e.t),
		StopGrace:     100 * time.Millisecond, NoAgentGit: true, Once: true, EventRetryMax: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

// fakeRun is one supervisor process.
type fakeRun struct {
	sup    *supervisor.Supervisor
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (e *fakeEnv) start(cfg supervisor.Config) *fakeRun {
	e.t.Helper()
	g, err := hostgit.New(hostgit.Options{StateDir: e.t.TempDir(), Logger: e.log.Named("git")})
	if err != nil {
		e.t.Fatal(err)
	}
	var rt supervisor.Runtime = e.rt
	if e.runtime != nil {
		rt = e.runtime
	}
	sup, err := supervisor.New(cfg, supervisor.Deps{API: e.api, Runtime: rt, Git: g, Logger: e.log, Metrics: e.metrics})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &fakeRun{sup: sup, cancel: cancel, done: make(chan struct{})}
	go func() { p.err = sup.Run(ctx); close(p.done) }()
	e.t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// wait fails the test unless Run returns within a few seconds.
func (p *fakeRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("Run: %v", p.err)
		}
	case <-time.After(slowHost * fakeWait):
		t.Fatal("supervisor did not return")
	}
}

// abort kills the process's context, as a crash would, and waits for it.
func (p *fakeRun) abort(t *testing.T) {
	t.Helper()
	p.cancel()
	p.wait(t)
}

func (e *fakeEnv) task(key string) trakkar.Task {
	e.t.Helper()
	task, _, err := e.stand.CreateTask(standin.NewTask{Key: key, Title: "Do " + key})
	if err != nil {
		e.t.Fatal(err)
	}
	return task
}

// runOf is the task's first run as the stand-in sees it.
func (e *fakeEnv) runOf(key string) standin.RunView {
	tv, ok := e.stand.TaskByKey(key)
	if !ok || len(tv.Runs) == 0 {
		e.t.Fatalf("task %s has no run", key)
	}
	return tv.Runs[0]
}

// fakeWait bounds every wait in these tests, stretched by slowHost. It only
// decides how long a failing test takes: a loaded CI host (several suites on
// two cores) can be seconds late where an idle one takes milliseconds.
const fakeWait = 30 * time.Second

// waitAgent waits until the agent's container of the task runs.
func (e *fakeEnv) waitAgent(key string) string {
	e.t.Helper()
	var id string
	waitFor(e.t, fakeWait, "agent container of "+key, func() bool {
		for _, c := range e.rt.Running(map[string]string{supervisor.LabelTaskKey: key}) {
			if s, _ := e.rt.Spec(c); s.Labels[supervisor.LabelRole] == "" {
				id = c
				return true
			}
		}
		return false
	})
	return id
}

// record reads the task's run record (supervisor/record.go's run.json).
func (e *fakeEnv) record(key string) map[string]any {
	e.t.Helper()
	b, err := os.ReadFile(e.recordPath(key))
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *fakeEnv) recordPath(key string) string {
	return filepath.Join(e.repo, ".trakkar-worktrees", ".state", hostgit.Slug(key, 60), "run.json")
}

func (e *fakeEnv) editRecord(key string, edit func(map[string]any)) {
	e.t.Helper()
	m := e.record(key)
	edit(m)
	b, _ := json.Marshal(m)
	if err := os.WriteFile(e.recordPath(key), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// pushed reports whether origin has the file on some trakkar branch.
func (e *fakeEnv) pushed(file string) bool {
	out := gitCmd(e.t, "", "--git-dir", e.origin, "for-each-ref", "--format=%(refname)", "refs/heads/")
	for _, ref := range strings.Fields(out) {
		if ref == "refs/heads/main" {
			continue
		}
		if strings.Contains(gitCmd(e.t, "", "--git-dir", e.origin, "ls-tree", "-r", "--name-only", ref), file) {
			return true
		}
	}
	return false
}

func isVerify(s docker.Spec) bool { return s.Labels[supervisor.LabelRole] == supervisor.RoleVerify }

var doneResult = &workerproto.Result{Outcome: workerproto.OutcomeSucceeded, Summary: "Wrote hello.txt"}

// agentSucceeds edits a file and exits 0; a verify command passes.
func agentSucceeds(s docker.Spec) fakeruntime.Script {
	if isVerify(s) {
		return fakeruntime.Script{Lines: nil, Stderr: []string{"ok"}}
	}
	return fakeruntime.Script{
		Lines:  []workerproto.Line{{Type: workerproto.TypeMessage, Text: "I'll write hello.txt"}},
		Forged: []string{`{"type":"message","text":"forged by the agent"}`},
		Files:  map[string]string{"hello.txt": "hi\n"}, Result: doneResult,
	}
}

// agentHangs prints a line and runs until stopped.
func agentHangs(mod func(*fakeruntime.Script)) func(docker.Spec) fakeruntime.Script {
	return func(s docker.Spec) fakeruntime.Script {
		sc := fakeruntime.Script{Lines: []workerproto.Line{{Type: workerproto.TypeMessage, Text: "working"}}, Hang: true}
		if mod != nil {
			mod(&sc)
		}
		return sc
	}
}

func texts(evs []trakkar.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(ev.Type + ": " + ev.Text + "\n")
	}
	return b.String()
}

func errText(c *trakkar.Completion) string {
	if c == nil || c.Error == nil {
		return ""
	}
	return *c.Error
}

// TestPhasesOneRun drives one run from claim to completion through each way a
// container can end, and what the supervisor does about it.
func TestPhasesOneRun(t *testing.T) {
	t.Parallel()
	verify := "make test"
	cases := []struct {
		name   string
		agent  trakkar.Agent
		script func(docker.Spec) fakeruntime.Script
		mod    func(*supervisor.Config)
		// act runs once the agent's container is running.
		act     func(e *fakeEnv, p *fakeRun, task trakkar.Task)
		outcome string
		errHas  string
		pushed  bool
		check   func(t *testing.T, e *fakeEnv, rv standin.RunView)
	}{
		{
			name: "exit 0 publishes", script: agentSucceeds, outcome: trakkar.OutcomeSucceeded, pushed: true,
			check: func(t *testing.T, e *fakeEnv, rv standin.RunView) {
				all := texts(rv.Events)
				if !strings.Contains(all, "message: I'll write hello.txt") {
					t.Errorf("the worker's signed line is not an event:\n%s", all)
				}
				if strings.Contains(all, "forged by the agent") {
					t.Errorf("an unsigned line became an event:\n%s", all)
				}
			},
		},
		{
			name:    "exit code without result",
			script:  func(docker.Spec) fakeruntime.Script { return fakeruntime.Script{Exit: workerproto.ExitAgentFailed} },
			outcome: trakkar.OutcomeFailed, errHas: workerproto.ExitReason(workerproto.ExitAgentFailed),
		},
		{
			name:    "oom killed",
			script:  func(docker.Spec) fakeruntime.Script { return fakeruntime.Script{OOM: true} },
			outcome: trakkar.OutcomeFailed, errHas: "ran out of memory",
		},
		{
			name: "stop", script: agentHangs(nil), outcome: trakkar.OutcomeStopped,
			act: func(e *fakeEnv, _ *fakeRun, task trakkar.Task) {
				if err := e.stand.Stop(task.ID); err != nil {
					e.t.Fatal(err)
				}
			},
		},
		{
			name: "stop ignored until the grace ends", script: agentHangs(func(s *fakeruntime.Script) { s.IgnoreTerm = true }),
			outcome: trakkar.OutcomeStopped,
			act: func(e *fakeEnv, _ *fakeRun, task trakkar.Task) {
				if err := e.stand.Stop(task.ID); err != nil {
					e.t.Fatal(err)
				}
			},
		},
		{
			name: "drain", script: agentHangs(nil), outcome: trakkar.OutcomeStopped, errHas: "runner shut down",
			act: func(_ *fakeEnv, p *fakeRun, _ trakkar.Task) { p.sup.Drain() },
		},
		{
			name: "lease lost", script: agentHangs(nil),
			act: func(e *fakeEnv, _ *fakeRun, _ trakkar.Task) {
				e.clock.Add(int64(time.Hour))
				e.stand.ExpireLeases()
			},
			check: func(t *testing.T, e *fakeEnv, rv standin.RunView) {
				if e.rt.Count("Stop") == 0 {
					t.Error("the container was not stopped after the lease was lost")
				}
			},
		},
		{
			name: "verify passes", agent: trakkar.Agent{VerifyCommand: &verify}, script: agentSucceeds,
			outcome: trakkar.OutcomeSucceeded, pushed: true,
		},
		{
			name: "verify timeout", agent: trakkar.Agent{VerifyCommand: &verify},
			script: func(s docker.Spec) fakeruntime.Script {
				if isVerify(s) {
					return fakeruntime.Script{Stderr: []string{"running tests"}, Hang: true}
				}
				return agentSucceeds(s)
			},
			mod:     func(c *supervisor.Config) { c.VerifyTimeout = 50 * time.Millisecond },
			outcome: trakkar.OutcomeFailed, errHas: "timed out after 50ms", pushed: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			e := newFakeEnv(t, c.agent)
			e.setScript(c.script)
			task := e.task("WEB-1")
			p := e.start(e.config(c.mod))
			if c.act != nil {
				e.waitAgent("WEB-1")
				c.act(e, p, task)
			}
			p.wait(t)
			rv := e.runOf("WEB-1")
			if c.outcome == "" {
				if rv.Completion != nil {
					t.Fatalf("completed a run it no longer held: %+v", *rv.Completion)
				}
			} else {
				if rv.Completion == nil {
					t.Fatalf("not completed; events:\n%s", texts(rv.Events))
				}
				if rv.Completion.Outcome != c.outcome || !strings.Contains(errText(rv.Completion), c.errHas) {
					t.Fatalf("completion %s %q, want %s containing %q; events:\n%s",
						rv.Completion.Outcome, errText(rv.Completion), c.outcome, c.errHas, texts(rv.Events))
				}
			}
			if got := e.pushed("hello.txt"); got != c.pushed {
				t.Errorf("pushed = %v, want %v", got, c.pushed)
			}
			if n := len(e.rt.Running(nil)); n != 0 {
				t.Errorf("%d containers still running", n)
			}
			if left, _ := e.rt.List(context.Background(), nil); len(left) != 0 {
				t.Errorf("%d containers not removed", len(left))
			}
			if c.check != nil {
				c.check(t, e, rv)
			}
		})
	}
}

// TestPhasesRecovery crashes a supervisor at each phase its record names and
// checks that a new process finishes the run exactly once: the agent is never
// started twice once its container exists, and the change is published once.
func TestPhasesRecovery(t *testing.T) {
	t.Parallel()
	verify := "make test"
	cases := []struct {
		name  string
		agent trakkar.Agent
		// crash brings the first process down with the run in a phase, and
		// may rewrite what it left; it returns what the second process's
		// containers do.
		crash   func(e *fakeEnv) func(docker.Spec) fakeruntime.Script
		phase   string // the recorded phase the second process starts from
		outcome string
		errHas  string
		creates int // agent containers created over both processes
	}{
		{
			name: "preparing", phase: "preparing", outcome: trakkar.OutcomeSucceeded, creates: 2,
			crash: func(e *fakeEnv) func(docker.Spec) fakeruntime.Script {
				e.crashRunning()
				// A crash between the container's create and the record naming it.
				e.editRecord("WEB-1", func(m map[string]any) { m["phase"] = "preparing"; delete(m, "container_id") })
				return agentSucceeds
			},
		},
		{
			name: "running, container running", phase: "running", outcome: trakkar.OutcomeSucceeded, creates: 1,
			crash: func(e *fakeEnv) func(docker.Spec) fakeruntime.Script {
				release := e.crashRunning()
				// The container ends while the second process follows it.
				go func() {
					for end := time.Now().Add(slowHost * fakeWait); e.rt.Count("Wait") == 0 && time.Now().Before(end); {
						time.Sleep(5 * time.Millisecond)
					}
					close(release)
				}()
				return agentSucceeds
			},
		},
		{
			name: "running, container created not started", phase: "running", outcome: trakkar.OutcomeSucceeded, creates: 2,
			crash: func(e *fakeEnv) func(docker.Spec) fakeruntime.Script {
				e.crashRunning()
				// Killed between the create and the start.
				spec, _ := e.rt.Spec(e.agentID)
				_ = e.rt.Remove(context.Background(), e.agentID)
				e.setScript(agentSucceeds)
				nid, err := e.rt.Create(context.Background(), spec)
				if err != nil {
					e.t.Fatal(err)
				}
				e.editRecord("WEB-1", func(m map[string]any) { m["container_id"] = nid })
				return agentSucceeds
			},
		},
		{
			name: "running, container gone", phase: "running", outcome: trakkar.OutcomeFailed, creates: 1,
			errHas: "disappeared while the runner was down",
			crash: func(e *fakeEnv) func(docker.Spec) fakeruntime.Script {
				e.crashRunning()
				_ = e.rt.Remove(context.Background(), e.agentID)
				return agentSucceeds
			},
		},
		{
			name: "finishing, verify cut short", agent: trakkar.Agent{VerifyCommand: &verify}, phase: "finishing",
			outcome: trakkar.OutcomeSucceeded, creates: 1,
			crash: func(e *fakeEnv) func(docker.Spec) fakeruntime.Script {
				e.setScript(func(s docker.Spec) fakeruntime.Script {
					if isVerify(s) {
						return fakeruntime.Script{Hang: true}
					}
					return agentSucceeds(s)
				})
				p := e.start(e.config(nil))
				waitFor(e.t, fakeWait, "verify container", func() bool {
					return len(e.rt.Running(map[string]string{supervisor.LabelRole: supervisor.RoleVerify})) == 1
				})
				p.abort(e.t)
				return agentSucceeds
			},
		},
		{
			// Killed after the agent's exit, before the change was published.
			name: "finishing, before publishing", phase: "finishing", outcome: trakkar.OutcomeSucceeded, creates: 1,
			crash: func(e *fakeEnv) func(docker.Spec) fakeruntime.Script {
				close(e.crashRunning())
				waitFor(e.t, fakeWait, "the agent's exit", func() bool { return len(e.rt.Running(nil)) == 0 })
				_ = e.rt.Remove(context.Background(), e.agentID)
				e.editRecord("WEB-1", func(m map[string]any) { m["phase"] = "finishing" })
				return agentSucceeds
			},
		},
		{
			name: "completing", phase: "completing", outcome: trakkar.OutcomeSucceeded, creates: 1,
			crash: func(e *fakeEnv) func(docker.Spec) fakeruntime.Script {
				e.stand.SetFault(func(r *http.Request) (int, bool) {
					return http.StatusServiceUnavailable, strings.HasSuffix(r.URL.Path, "/complete")
				})
				p := e.start(e.config(nil))
				waitFor(e.t, fakeWait, "the completing phase", func() bool {
					b, _ := os.ReadFile(e.recordPath("WEB-1"))
					return strings.Contains(string(b), `"phase": "completing"`)
				})
				p.abort(e.t)
				e.stand.SetFault(nil)
				return agentSucceeds
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			e := newFakeEnv(t, c.agent)
			e.task("WEB-1")
			e.setScript(c.crash(e))
			if got := e.record("WEB-1")["phase"]; got != c.phase {
				t.Fatalf("crashed in phase %v, want %s", got, c.phase)
			}
			e.start(e.config(nil)).wait(t)
			rv := e.runOf("WEB-1")
			if rv.Completion == nil {
				t.Fatalf("not completed; events:\n%s", texts(rv.Events))
			}
			if rv.Completion.Outcome != c.outcome || !strings.Contains(errText(rv.Completion), c.errHas) {
				t.Fatalf("completion %s %q, want %s containing %q; events:\n%s",
					rv.Completion.Outcome, errText(rv.Completion), c.outcome, c.errHas, texts(rv.Events))
			}
			creates := 0
			for _, call := range e.rt.Calls() {
				if call.Op == "Create" && !strings.Contains(call.ID, "-verify-") {
					creates++
				}
			}
			if creates != c.creates {
				t.Errorf("%d agent containers created, want %d", creates, c.creates)
			}
			if got, want := e.pushed("hello.txt"), c.outcome == trakkar.OutcomeSucceeded; got != want {
				t.Errorf("pushed = %v, want %v", got, want)
			}
			if left, _ := e.rt.List(context.Background(), nil); len(left) != 0 {
				t.Errorf("%d containers not removed", len(left))
			}
			if got := e.record("WEB-1")["phase"]; got != "done" {
				t.Errorf("record ends in phase %v", got)
			}
		})
	}
}

// crashRunning starts a process whose agent hangs, aborts it while the
// container runs (recorded phase: running), and returns the channel that lets
// the container finish as agentSucceeds would.
func (e *fakeEnv) crashRunning() chan struct{} {
	e.t.Helper()
	release := make(chan struct{})
	e.setScript(func(s docker.Spec) fakeruntime.Script {
		sc := agentSucceeds(s)
		sc.Hang, sc.Release = true, release
		return sc
	})
	p := e.start(e.config(nil))
	e.agentID = e.waitAgent("WEB-1")
	p.abort(e.t)
	return release
}

// TestPhasesPanicInOneRun checks that a run that panics leaves the others, and
// the supervisor, going.
func TestPhasesPanicInOneRun(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	e.task("WEB-1")
	e.task("WEB-2")
	var crashes atomic.Int32
	e.rt.OnCreate = func(s docker.Spec) {
		if s.Labels[supervisor.LabelTaskKey] == "WEB-1" {
			crashes.Add(1)
			panic("a bug in one run")
		}
	}
	e.start(e.config(func(c *supervisor.Config) { c.MaxConcurrency = 2 })).wait(t)
	if crashes.Load() != 1 {
		t.Fatalf("the crashing run created %d containers", crashes.Load())
	}
	if rv := e.runOf("WEB-1"); rv.Completion != nil {
		t.Errorf("the crashed run was completed: %+v", *rv.Completion)
	}
	rv := e.runOf("WEB-2")
	if rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("the other run did not succeed: %+v; events:\n%s", rv.Completion, texts(rv.Events))
	}
}

// A create that the previous process sent just before it was killed can reach
// the engine after the restart cleaned up: the run's own container name is
// then taken by a leftover of the same run. The run replaces it instead of
// failing (TestKillAnywhere's kill point just after "Workspace ready").
func TestPhasesLeftoverContainerHoldsTheName(t *testing.T) {
	t.Parallel()
	verifyCmd := "make test"
	for _, tc := range []struct {
		name   string
		agent  trakkar.Agent
		target func(docker.Spec) bool
	}{
		{"agent container", trakkar.Agent{}, func(s docker.Spec) bool { return s.Labels[supervisor.LabelRole] == "" }},
		// A kill during verify: the restarted runner verifies again.
		{"verify container", trakkar.Agent{VerifyCommand: &verifyCmd}, isVerify},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			e := newFakeEnv(t, tc.agent)
			e.task("WEB-1")
			var planted atomic.Bool
			e.rt.OnCreate = func(s docker.Spec) {
				if !tc.target(s) || !planted.CompareAndSwap(false, true) {
					return
				}
				leftover := s
				leftover.Labels = maps.Clone(s.Labels)
				if _, err := e.rt.Create(context.Background(), leftover); err != nil {
					t.Errorf("plant the leftover: %v", err)
				}
			}
			e.start(e.config(nil)).wait(t)
			if !planted.Load() {
				t.Fatal("no such container was created")
			}
			rv := e.runOf("WEB-1")
			if rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
				t.Fatalf("run did not succeed over the leftover: %+v %s; events:\n%s", rv.Completion, errText(rv.Completion), texts(rv.Events))
			}
		})
	}
}

// Runners that share an engine may hold different attempts of one run: the
// verify container of attempt 1, on a runner cut off from Trakkar, is still
// its owner's while attempt 2 verifies elsewhere. Attempt 2 must not remove it
// (TestFleet's partition at publish time saw attempt 1's verify killed).
func TestPhasesVerifyLeavesAnotherRunnersContainer(t *testing.T) {
	parallel(t)
	verifyCmd := "make test"
	e := newFakeEnv(t, trakkar.Agent{VerifyCommand: &verifyCmd})
	e.task("WEB-1")
	const other = "rnr_other_host"
	var planted atomic.Value
	// Planted when this runner creates its agent container, so it is there
	// when this runner's verify round looks for leftovers.
	e.rt.OnCreate = func(s docker.Spec) {
		if isVerify(s) || s.Labels[supervisor.LabelRunner] == other || planted.Load() != nil {
			return
		}
		theirs := s
		theirs.Name = s.Name + "-verify-1-theirs"
		theirs.Labels = maps.Clone(s.Labels)
		theirs.Labels[supervisor.LabelRunner] = other
		theirs.Labels[supervisor.LabelRole] = supervisor.RoleVerify
		id, err := e.rt.Create(context.Background(), theirs)
		if err != nil {
			t.Errorf("plant the other runner's verify container: %v", err)
			return
		}
		planted.Store(id)
	}
	e.start(e.config(nil)).wait(t)
	if planted.Load() == nil {
		t.Fatal("no agent container was created")
	}
	if rv := e.runOf("WEB-1"); rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("run did not succeed: %+v %s", rv.Completion, errText(rv.Completion))
	}
	cs, err := e.rt.List(context.Background(), map[string]string{supervisor.LabelRunner: other})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != planted.Load().(string) {
		t.Fatalf("the other runner's verify container was removed: %+v", cs)
	}
}
