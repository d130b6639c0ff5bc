package supervisor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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
	"github.com/trakkar/trakkar-agent/supervisor"
)

// killPoint is one place where the supervisor process dies. It is hit either
// when the supervisor logs a line containing marker (then offset later), or
// when it sends a request that match accepts: before the server handles it,
// or, with after, once the server has handled it but before the reply leaves.
type killPoint struct {
	phase  string
	marker string
	offset time.Duration
	match  func(*http.Request) bool
	after  bool
}

func (k killPoint) String() string {
	if k.match != nil {
		when := "arrives"
		if k.after {
			when = "handled, reply lost"
		}
		return k.phase + ": request " + k.marker + " " + when
	}
	return fmt.Sprintf("%s: %q +%s", k.phase, k.marker, k.offset)
}

func request(method, pathSuffix, query string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == method && strings.HasSuffix(r.URL.Path, pathSuffix) && strings.Contains(r.URL.RawQuery, query)
	}
}

// killPoints spread over every phase of a run, in the order a run meets them.
// Log markers are the supervisor's own lines (status texts and log messages).
var killPoints = []killPoint{
	{phase: "claim", marker: "POST claim", match: request("POST", "/claim", "")},
	{phase: "claim", marker: "POST claim", match: request("POST", "/claim", ""), after: true},
	{phase: "claim", marker: "Claimed by runner"},
	{phase: "workspace", marker: "GET info/refs (fetch)", match: request("GET", "/info/refs", "service=git-upload-pack")},
	{phase: "workspace", marker: "Workspace ready on branch"},
	{phase: "container", marker: "Workspace ready on branch", offset: 80 * time.Millisecond},
	{phase: "container", marker: "Container started ("},
	{phase: "running", marker: "Container started (", offset: 700 * time.Millisecond},
	{phase: "running", marker: "\tcontainer exited\t"},
	{phase: "verify", marker: "\tverifying\t"},
	{phase: "verify", marker: "\tverifying\t", offset: 700 * time.Millisecond},
	{phase: "verify", marker: "\tverify finished\t"},
	{phase: "commit", marker: "\tstaged\t"}, // host git staged the change; the commit comes next
	{phase: "commit", marker: "Committed "},
	{phase: "push", marker: "POST git-receive-pack", match: request("POST", "/git-receive-pack", "")},
	{phase: "push", marker: "POST git-receive-pack", match: request("POST", "/git-receive-pack", ""), after: true},
	{phase: "pr", marker: "Pushed branch "},
	{phase: "pr", marker: "POST pulls", match: request("POST", "/repos/acme/web/pulls", ""), after: true},
	{phase: "complete", marker: "POST complete", match: request("POST", "/complete", ""), after: true},
	{phase: "complete", marker: "\trun completed\t"},
}

const killNotes = 10

// killer holds the armed kill point and the process it kills.
type killer struct {
	mu    sync.Mutex
	point *killPoint
	proc  *killable
	fired chan struct{}
	// refused counts completions Trakkar turned away because the run was
	// already completed differently: a run reported twice.
	refused int
}

func (k *killer) takeRefused() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.refused
	k.refused = 0
	return n
}

// statusWriter notes the status of a reply.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// arm sets the next kill of proc; the returned channel closes once it
// happened. A nil point disarms.
func (k *killer) arm(p *killPoint, proc *killable) chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.point, k.proc, k.fired = p, proc, make(chan struct{})
	return k.fired
}

// take disarms and returns the armed point when cond holds for it.
func (k *killer) take(cond func(*killPoint) bool) (*killPoint, *killable, chan struct{}) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.point == nil || !cond(k.point) {
		return nil, nil, nil
	}
	kp := k.point
	k.point = nil
	return kp, k.proc, k.fired
}

// line is called for every output line of the supervisor.
func (k *killer) line(s string) {
	kp, p, fired := k.take(func(kp *killPoint) bool { return kp.match == nil && strings.Contains(s, kp.marker) })
	if kp == nil {
		return
	}
	// No waiting here: this runs on the goroutine that drains the process's
	// output, which its exit waits for.
	time.AfterFunc(kp.offset, func() { p.kill(); close(fired) })
}

// middleware kills the supervisor around a matching request.
func (k *killer) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kp, p, fired := k.take(func(kp *killPoint) bool { return kp.match != nil && kp.match(r) })
		if kp == nil {
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(sw, r)
			if strings.HasSuffix(r.URL.Path, "/complete") && sw.status == http.StatusGone {
				k.mu.Lock()
				k.refused++
				k.mu.Unlock()
			}
			return
		}
		if kp.after {
			// The server acts on the request; its reply never reaches the
			// supervisor, which dies first.
			next.ServeHTTP(httptest.NewRecorder(), r)
		}
		p.kill()
		<-p.done
		close(fired)
		http.Error(w, "killed", http.StatusServiceUnavailable)
	})
}

// killable is one life of the supervisor binary, in its own process group so
// a kill also ends the git processes it started, as a stopped container or
// service would.
type killable struct {
	cmd     *exec.Cmd
	out     *lineTee
	started chan struct{} // cmd.Process is set
	done    chan struct{}
}

func (p *killable) kill() {
	<-p.started
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

func (p *killable) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// lineTee keeps the output and hands every complete line to fn.
type lineTee struct {
	mu   sync.Mutex
	all  bytes.Buffer
	part []byte
	fn   func(string)
}

func (l *lineTee) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.all.Write(b)
	l.part = append(l.part, b...)
	var lines []string
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(l.part[:i]))
		l.part = l.part[i+1:]
	}
	l.mu.Unlock()
	for _, s := range lines {
		l.fn(s)
	}
	return len(b), nil
}

func (l *lineTee) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

type killEnv struct {
	*env
	k     *killer
	ghURL string // the fake GitHub behind the killer's proxy
}

// start runs the supervisor binary; with kp, it dies at that point. Its task
// containers get no network, as most tests' do (env.config says why).
func (e *killEnv) start(t *testing.T, kp *killPoint) (*killable, chan struct{}) {
	t.Helper()
	cmd := exec.Command(binary(t), "--repo", e.repo, "--image", e.image, "--interval", "1", "--poll-wait", "1",
		"--stop-grace", "2", "--github-api-url", e.ghURL, "--log-level", "debug", "--network", "none")
	cmd.Env = append(os.Environ(),
		"TRAKKAR_API_URL="+e.url, "TRAKKAR_TOKEN="+agentToken, "GH_TOKEN="+ghToken,
		// Console logs: the kill points' markers are tab-separated.
		"ANTHROPIC_API_KEY="+modelKey, "TRAKKAR_RUNNER_ID="+e.runner, "TRAKKAR_LOG_FORMAT=console")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &killable{cmd: cmd, out: &lineTee{}, started: make(chan struct{}), done: make(chan struct{})}
	p.out.fn = e.k.line
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.WaitDelay = 5 * time.Second
	// Armed before the process exists: the first kill points come within
	// milliseconds of its start.
	fired := e.k.arm(kp, p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	close(p.started)
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			p.kill()
			<-p.done
		}
	})
	return p, fired
}

// stop drains a supervisor with SIGTERM and waits for it to exit.
func (p *killable) stop(t *testing.T) {
	t.Helper()
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.kill()
		<-p.done
		t.Errorf("supervisor did not drain within 60s of SIGTERM")
	}
}

// killWait bounds the wait for a kill point and for the restarted runner to
// finish. It only decides how long a failing point takes; a CI host running
// several suites on two cores can be many times slower than an idle one.
const killWait = 3 * time.Minute

// tally counts what went wrong over all kill points.
type tally struct {
	points, lost, dupPRs, gaps, dupEvents int
}

func (c tally) String() string {
	return fmt.Sprintf("kill points %d: lost %d, duplicate PRs %d, event gaps %d, duplicate events %d",
		c.points, c.lost, c.dupPRs, c.gaps, c.dupEvents)
}

// SIGKILL the real supervisor binary at points spread over every phase of a
// run, restart it each time, and check that nothing is lost, repeated or left
// behind: one completion and one PR per task, gapless events carrying every
// progress note exactly once, no container, network or worktree left over.
func TestKillAnywhere(t *testing.T) {
	parallelLong(t)
	// The points run in groups side by side, each group with its own
	// Trakkar, forge, repository and runner, in the order a run meets them.
	const groups = 3
	tallies := make([]tally, groups)
	start := time.Now()
	names := make([]string, groups)
	for g := range groups {
		names[g] = fmt.Sprintf("group-%d", g+1)
	}
	t.Run("groups", func(t *testing.T) {
		concurrently(t, names, func(t *testing.T, g int) {
			e := newKillEnv(t)
			for i := g; i < len(killPoints); i += groups {
				kp := killPoints[i]
				tallies[g].points++
				key := fmt.Sprintf("KP-%d", i+1)
				ok := t.Run(fmt.Sprintf("%02d-%s", i+1, kp.phase), func(t *testing.T) {
					e.killAndRecover(t, &tallies[g], key, kp)
				})
				if !ok && tallies[g].lost > 0 {
					break // a run left unfinished would be picked up by the next point's supervisor
				}
			}
		})
	})
	var c tally
	for _, g := range tallies {
		c.points, c.lost, c.dupPRs, c.gaps, c.dupEvents = c.points+g.points, c.lost+g.lost,
			c.dupPRs+g.dupPRs, c.gaps+g.gaps, c.dupEvents+g.dupEvents
	}
	t.Logf("%s (%s)", c, time.Since(start).Round(time.Second))
	fmt.Println(c.String())
	if c.lost+c.dupPRs+c.gaps+c.dupEvents != 0 || c.points != len(killPoints) {
		t.Fatalf("%s", c)
	}
}

// newKillEnv is one group's world: the stand-in and the forge (Git and REST
// traffic too) behind the killer.
func newKillEnv(t *testing.T) *killEnv {
	verify := "echo verify-start; sleep 1; echo verify-done"
	e := &killEnv{env: newEnv(t, envOpts{lease: 10, agent: trakkar.Agent{VerifyCommand: &verify}}), k: &killer{}}
	e.wrapHandler(e.k.middleware)
	target, _ := url.Parse(e.gh.URL())
	proxy := httptest.NewServer(e.k.middleware(httputil.NewSingleHostReverseProxy(target)))
	t.Cleanup(proxy.Close)
	e.ghURL = proxy.URL
	gitCmd(t, e.repo, "remote", "set-url", "origin", proxy.URL+"/acme/web.git")
	return e
}

func (e *killEnv) killAndRecover(t *testing.T, c *tally, key string, kp killPoint) {
	file := strings.ToLower(key) + ".txt"
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: key, Title: "Kill point " + key,
		Description: fmt.Sprintf("fake:scenario=chatty\nfake:count=%d\nfake:delay=120ms\nfake:write=%s=%s\n", killNotes, file, key)}); err != nil {
		t.Fatal(err)
	}
	first, fired := e.start(t, &kp)
	select {
	case <-fired:
		<-first.done
	case <-first.done:
		select {
		case <-fired: // killed at a request: the process was gone first
		case <-time.After(time.Second):
			t.Fatalf("supervisor exited before %s:\n%s", kp, first.out)
		}
	case <-time.After(killWait):
		e.k.arm(nil, nil)
		c.lost++
		t.Fatalf("kill point %s never reached:\n%s", kp, first.out)
	}
	t.Logf("killed at %s", kp)

	second, _ := e.start(t, nil)
	var rv standin.RunView
	deadline := time.Now().Add(killWait)
	for {
		var ok bool
		// Done on both sides: Trakkar has the completion, and the restarted
		// runner has finished with the run (it may learn of a completion the
		// killed one sent only when it looks at the run again).
		if rv, ok = e.lastRun(key); ok && rv.Completion != nil && e.recordPhase(key) == "done" {
			break
		}
		if time.Now().After(deadline) {
			c.lost++
			t.Fatalf("run of %s not completed after restart (record: %q)\nfirst life:\n%s\nsecond life:\n%s",
				key, e.recordPhase(key), first.out, second.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	second.stop(t)
	t.Logf("restart: %s (attempt %d)", recoveredAs(second.out.String()), rv.Run.Attempt)
	dump := func() {
		t.Logf("events:\n%s\nfirst life:\n%s\nsecond life:\n%s", eventTexts(rv.Events), first.out, second.out)
	}

	if n := e.k.takeRefused(); n > 0 {
		c.lost++
		t.Errorf("%d completions of %s refused as different from the first", n, key)
	}
	if tv, _ := e.stand.TaskByKey(key); len(tv.Runs) != 1 {
		t.Errorf("%d runs for %s, want 1", len(tv.Runs), key)
	}
	comp := rv.Completion
	if comp.Outcome != trakkar.OutcomeSucceeded || comp.PullRequest == nil {
		c.lost++
		t.Errorf("completion of %s: %+v (error: %s)", key, comp, deref(comp.Error))
		dump()
		return
	}
	if _, files := e.gh.Branch(t, "acme", "web", comp.PullRequest.Branch); files[file] != key {
		c.lost++
		t.Errorf("branch %s has %s = %q, want %q", comp.PullRequest.Branch, file, files[file], key)
	}
	prs := 0
	for _, pr := range e.gh.PRs("acme", "web") {
		if pr.Head == comp.PullRequest.Branch {
			prs++
		}
	}
	if prs != 1 {
		c.dupPRs += max(prs-1, 0)
		if prs == 0 {
			c.lost++
		}
		t.Errorf("%d PRs for %s, want 1", prs, comp.PullRequest.Branch)
	}

	gaps, dups, missing := checkKillEvents(rv.Events)
	c.gaps += gaps
	c.dupEvents += dups
	c.lost += missing
	if gaps+dups+missing > 0 {
		t.Errorf("events of %s: %d gaps, %d duplicates, %d notes missing", key, gaps, dups, missing)
	}
	e.assertNothingLeft(t)
	if t.Failed() {
		dump()
	}
}

// checkKillEvents counts seq gaps (seqs run on across attempts),
// agent lines delivered more than once, and progress notes never delivered.
func checkKillEvents(evs []trakkar.Event) (gaps, dups, missing int) {
	var prev int64
	for _, ev := range evs {
		if ev.Seq != prev+1 {
			gaps++
		}
		prev = ev.Seq
	}
	seen := map[string]int{}
	for _, ev := range evs {
		if ev.Type != trakkar.EventMessage && ev.Type != trakkar.EventTool {
			continue
		}
		for _, line := range strings.Split(ev.Text, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				seen[line]++
			}
		}
	}
	for _, n := range seen {
		dups += n - 1
	}
	for i := 1; i <= killNotes; i++ {
		if seen[fmt.Sprintf("Progress note %d of %d.", i, killNotes)] == 0 {
			missing++
		}
	}
	return gaps, dups, missing
}

// assertNothingLeft fails on any container or network of this runner, and on
// any task worktree once the task's PR is open.
func (e *killEnv) assertNothingLeft(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{supervisor.LabelRunner: e.runner}
	if cs, err := e.dc.List(ctx, labels); err != nil || len(cs) != 0 {
		t.Errorf("containers left: %v %v", cs, err)
	}
	if ns, err := e.dc.ListNetworks(ctx, labels); err != nil || len(ns) != 0 {
		t.Errorf("networks left: %v %v", ns, err)
	}
	entries, err := os.ReadDir(filepath.Join(e.repo, supervisor.WorktreeFolder))
	if err != nil {
		t.Errorf("read worktree folder: %v", err)
	}
	for _, de := range entries {
		if !strings.HasPrefix(de.Name(), ".") {
			t.Errorf("worktree left: %s", de.Name())
		}
	}
	if wts := gitCmd(t, e.repo, "worktree", "list", "--porcelain"); strings.Count(wts, "worktree ") != 1 {
		t.Errorf("git still lists task worktrees:\n%s", wts)
	}
}

// recoveredAs says how the restarted supervisor picked the run up, from its
// log: the recorded phase it continued from, or a fresh claim.
func recoveredAs(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "\trun no longer ours") {
			return "record found, run already finalised"
		}
		if !strings.Contains(line, "\trecovering run\t") {
			continue
		}
		phase, container := "?", "no container"
		if _, rest, ok := strings.Cut(line, `"phase": "`); ok {
			phase, _, _ = strings.Cut(rest, `"`)
		}
		if strings.Contains(line, `"container": true`) {
			container = "container found"
		}
		return "continued from phase " + phase + ", " + container
	}
	return "no record: claimed afresh"
}

// recordPhase is the phase in the runner's record of the task's run.
func (e *killEnv) recordPhase(key string) string {
	b, err := os.ReadFile(filepath.Join(e.repo, supervisor.WorktreeFolder, ".state", strings.ToLower(key), "run.json"))
	if err != nil {
		return ""
	}
	var rec struct {
		Phase string `json:"phase"`
	}
	if json.Unmarshal(b, &rec) != nil {
		return ""
	}
	return rec.Phase
}
