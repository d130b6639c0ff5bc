package supervisor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/fakegithub"
	"github.com/trakkar/trakkar-agent/internal/forge"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

const (
	ghToken    = "ghp_e2eTestTokenValue123"
	modelKey   = "sk-ant-api03-e2eTestModelKey"
	agentToken = "trk_agent_e2e_secret"
)

// env is one end-to-end setup: a stand-in Trakkar over real HTTP, a fake GitHub
// serving a real origin repository over git's smart HTTP, a clone of it, and the
// worker test image on the real Docker engine.
type env struct {
	t      testing.TB
	stand  *standin.Server
	api    *trakkar.Client
	gh     *fakegithub.Server
	dc     *docker.Client
	repo   string
	image  string
	log    *zap.Logger
	runner string
	url    string // the stand-in's base URL
	// handler serves the stand-in; tests may wrap it to observe traffic.
	handler atomic.Pointer[handlerBox]
	// metrics, when set before start, hears the supervisor (Deps.Metrics).
	metrics supervisor.Metrics
}

type handlerBox struct{ h http.Handler }

// wrapHandler puts middleware in front of the stand-in.
func (e *env) wrapHandler(wrap func(http.Handler) http.Handler) {
	e.handler.Store(&handlerBox{wrap(e.stand.Handler())})
}

// serve returns the stand-in's URL for a supervisor running as a process.
func (e *env) serve(t testing.TB) string { return e.url }

type envOpts struct {
	// lease is the stand-in's lease in seconds, 10 unless set: a loaded host
	// (two suites on two cores) can hold a heartbeat back for seconds, and a
	// lapse there would re-run the agent. A test that needs a lapse sets it.
	lease int
	// now, when set, is the stand-in's clock, so a test can make leases lapse.
	now   func() time.Time
	agent trakkar.Agent // the agent settings the stand-in serves (verify command…)
	// clientBackoff and clientMaxElapsed, when set, tune the Trakkar client's
	// retries, so outage tests recover in a second and not in 30.
	clientBackoff, clientMaxElapsed time.Duration
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	e := &env{t: t, log: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))}
	e.image = testimage.Ensure(t)
	e.dc = testimage.Docker(t)
	e.gh = fakegithub.New(t, ghToken)
	cloneURL := e.gh.AddRepo(t, "acme", "web", map[string]string{"README.md": "# web\n"})
	e.repo = filepath.Join(reachableTempDir(t), "web")
	gitCmd(t, "", "clone", "-q", cloneURL, e.repo)
	t.Cleanup(e.dropCaches) // after every supervisor of the test stopped

	if o.lease == 0 {
		o.lease = 10
	}
	e.stand = standin.New(standin.Options{Token: agentToken, Agent: o.agent, LeaseSeconds: o.lease, Logger: e.log.Named("standin"), Now: o.now})
	e.handler.Store(&handlerBox{e.stand.Handler()})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.handler.Load().h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(e.stand.Close) // runs first: releases open long polls
	e.url = srv.URL
	var err error
	e.api, err = trakkar.NewClient(trakkar.Options{BaseURL: srv.URL, Token: agentToken, Version: "test", Logger: e.log.Named("client"),
		MaxBackoff: o.clientBackoff, MaxElapsed: o.clientMaxElapsed})
	if err != nil {
		t.Fatal(err)
	}
	e.runner = "rnr_e2e_" + testimage.RunID() + "_" + strings.ReplaceAll(t.Name(), "/", "_")
	return e
}

func gitCmd(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// reachableTempDir is a t.TempDir the container's user can pass through, as
// a repository in a home folder usually is: as root the runner then checks
// the worktree out as that user instead of chowning it.
func reachableTempDir(t testing.TB) string {
	dir := t.TempDir()
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// containerUser is the user task containers run as: the test's own, or 1000
// when the tests run as root (the agent never runs as root).
func containerUser(t testing.TB) string {
	if os.Geteuid() == 0 {
		return "1000:1000"
	}
	return strings.TrimSpace(mustOut(t, "id", "-u")) + ":" + strings.TrimSpace(mustOut(t, "id", "-g"))
}

// config is the supervisor's configuration for this env. Task containers get
// no network unless a test asks for one: starting a container on the engine's
// bridge costs the engine more work (an interface and its sysctls, set by
// re-running dockerd), and most tests are not about the network. The product's
// default, open, is kept by the hostile suite under runc, by
// TestThreeTasksBecomeThreePullRequests and by the recovery tests that run
// the binary (TestSIGKILL…, TestOrphanContainerReaped).
func (e *env) config(mod func(*supervisor.Config)) supervisor.Config {
	user := containerUser(e.t)
	cfg := supervisor.Config{
		Repo:          e.repo,
		Remote:        "origin",
		Provider:      supervisor.ProviderClaude,
		Interval:      200 * time.Millisecond,
		PollWait:      time.Second,
		Image:         e.image,
		Publish:       supervisor.PublishPR,
		ForgeRepo:     forge.Repo{Owner: "acme", Name: "web"},
		GitToken:      ghToken,
		Runner:        supervisor.RunnerInfo{ID: e.runner, Hostname: "e2e-host", Version: "test"},
		ContainerUser: user,
		ModelEnv:      []string{"ANTHROPIC_API_KEY=" + modelKey},
		Secrets:       []string{ghToken, modelKey, agentToken},
		StopGrace:     2 * time.Second,
		Network:       supervisor.NetworkNone,
		Resources:     docker.Resources{MemoryBytes: 512 << 20, NanoCPUs: 1e9, PidsLimit: 256},
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func mustOut(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out)
}

// started is a supervisor running in the background.
type started struct {
	sup  *supervisor.Supervisor
	done chan struct{} // closed when Run returned; err holds its result
	err  error
	stop context.CancelFunc
}

// wait returns Run's result, failing the test if it does not return within
// slowHost times timeout.
func (s *started) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	timeout *= slowHost
	select {
	case <-s.done:
		return s.err
	case <-time.After(timeout):
		t.Fatalf("supervisor did not return within %s", timeout)
		return nil
	}
}

func (e *env) start(cfg supervisor.Config) *started {
	e.t.Helper()
	g, err := hostgit.New(hostgit.Options{StateDir: e.t.TempDir(), Logger: e.log.Named("git")})
	if err != nil {
		e.t.Fatal(err)
	}
	sup, err := supervisor.New(cfg, supervisor.Deps{
		API: e.api, Runtime: e.dc, Git: g, Logger: e.log,
		Forge:   &forge.GitHub{BaseURL: e.gh.URL(), Token: ghToken, Logger: e.log.Named("forge")},
		Metrics: e.metrics,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{sup: sup, done: make(chan struct{}), stop: cancel}
	go func() { s.err = sup.Run(ctx); close(s.done) }()
	var once sync.Once
	e.t.Cleanup(func() {
		once.Do(func() {
			sup.Drain()
			select {
			case <-s.done:
			case <-time.After(60 * time.Second):
				e.t.Error("supervisor did not stop within 60s of draining")
			}
			cancel()
		})
	})
	return s
}

// slowHost stretches every wait of this package. A wait's bound only decides
// how long a failing test takes, and two copies of the suite sharing a 2-core
// host run each about three times slower than one alone.
const slowHost = 3

// waitFor polls cond until it holds or slowHost times the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout *= slowHost
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// lastRun returns the newest run of a task.
func (e *env) lastRun(key string) (standin.RunView, bool) { return lastRunOn(e.stand, key) }

func (e *env) waitCompleted(key string, timeout time.Duration) standin.RunView {
	e.t.Helper()
	return waitCompletedOn(e.t, e.stand, key, timeout)
}

// lastRunOn is the newest run of the task key on a stand-in.
func lastRunOn(stand *standin.Server, key string) (standin.RunView, bool) {
	tv, ok := stand.TaskByKey(key)
	if !ok || len(tv.Runs) == 0 {
		return standin.RunView{}, false
	}
	return tv.Runs[len(tv.Runs)-1], true
}

// waitCompletedOn waits until the newest run of key has a completion.
func waitCompletedOn(t testing.TB, stand *standin.Server, key string, timeout time.Duration) standin.RunView {
	t.Helper()
	var rv standin.RunView
	waitFor(t, timeout, "run of "+key+" to complete", func() bool {
		var ok bool
		rv, ok = lastRunOn(stand, key)
		return ok && rv.Completion != nil
	})
	return rv
}

func (e *env) managedContainers() []docker.Container {
	e.t.Helper()
	cs, err := e.dc.List(context.Background(), map[string]string{supervisor.LabelRunner: e.runner})
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

func assertSeqContiguous(t testing.TB, evs []trakkar.Event) {
	t.Helper()
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: events must arrive in seq order with no gaps", i, ev.Seq)
		}
	}
}

func eventTexts(evs []trakkar.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(ev.Type + ": " + ev.Text + "\n")
	}
	return b.String()
}

// concurrently runs fn for each name as a subtest, all at once, inside the
// caller's own parallel slot. Parallel subtests would queue for slots again,
// behind every test of the package still waiting, so a long test's cases
// would start last and end the package late.
func concurrently(t *testing.T, names []string, fn func(t *testing.T, i int)) {
	t.Helper()
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, func(t *testing.T) { fn(t, i) })
		}()
	}
	wg.Wait()
}
