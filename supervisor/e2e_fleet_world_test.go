//go:build linux

package supervisor_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/fakegithub"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// fleetLease is the stand-in's lease in the fleet test: heartbeats every
// second, a lease confirmed within the last second may publish.
const fleetLease = 3

// fleetWorld is one scenario's fleet: a stand-in Trakkar and a fake GitHub in
// the server namespace, three runner hosts with their own clone and runner id.
type fleetWorld struct {
	t        *testing.T
	name     string
	stand    *standin.Server
	gh       *fakegithub.Server
	tport    int // Trakkar's port, the one a cut rejects
	apiURL   string
	forgeURL string
	image    string
	dc       *docker.Client
	hosts    []*fleetHost
	maxConc  int
	log      *zap.Logger

	mu        sync.Mutex
	branches  map[string]string // task branch → task key
	pushesBy  map[string]int    // runner id → pushes and PRs seen from its host
	published int
	split     []string // publishes by a runner that did not hold the run's lease then
}

type fleetHost struct {
	i        int
	ns       netns
	ip       string
	runnerID string
	repo     string
	p        *proc
}

type fleetOpts struct {
	agent   trakkar.Agent
	maxConc int
}

func newFleetWorld(t *testing.T, letter string, o fleetOpts) *fleetWorld {
	t.Helper()
	w := &fleetWorld{t: t, name: letter, image: testimage.Ensure(t), dc: testimage.Docker(t), maxConc: o.maxConc,
		log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), branches: map[string]string{}, pushesBy: map[string]int{}}
	srv, nss := fleetNet(t, "fl"+testimage.RunID()+letter, 3)

	w.stand = standin.New(standin.Options{Token: agentToken, Agent: o.agent, LeaseSeconds: fleetLease, Logger: w.log.Named("standin")})
	tln := listenIn(t, srv, fleetServerIP+":0")
	w.tport = tln.Addr().(*net.TCPAddr).Port
	hs := &http.Server{Handler: w.stand.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(tln) }()
	t.Cleanup(func() { _ = hs.Close() })
	t.Cleanup(w.stand.Close) // runs first: releases open long polls
	w.apiURL = "http://" + tln.Addr().String()

	w.gh = fakegithub.NewOn(t, ghToken, listenIn(t, srv, fleetServerIP+":0"))
	w.forgeURL = w.gh.URL()
	cloneURL := w.gh.AddRepo(t, "acme", "web", map[string]string{"README.md": "# web\n"})
	w.gh.Observe(w.observe)

	for i, ns := range nss {
		h := &fleetHost{i: i, ns: ns, ip: fleetHostIP(i),
			runnerID: fmt.Sprintf("rnr_fleet_%s_%s_h%d", testimage.RunID(), letter, i),
			repo:     filepath.Join(t.TempDir(), "web")}
		// Cloned from the bare repository's path, then pointed at the forge:
		// the test process itself is not on the fleet's network.
		gitCmd(t, "", "clone", "-q", w.gh.BareDir("acme", "web"), h.repo)
		gitCmd(t, h.repo, "remote", "set-url", "origin", cloneURL)
		w.hosts = append(w.hosts, h)
	}
	// After every runner stopped (cleanups run last first): what the runners
	// left, the killed one's container included.
	t.Cleanup(func() {
		for _, h := range w.hosts {
			for _, c := range w.containers(h) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_ = w.dc.Remove(ctx, c.ID)
				cancel()
			}
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range w.hosts {
				if h.p != nil {
					// Debug lines (git, request retries) would push the
					// run's story out of any tail short enough to read.
					t.Logf("runner %d (%s) output, debug lines left out:\n%s", h.i, h.runnerID, tailText(withoutDebug(h.p.output()), 20000))
				}
			}
		}
	})
	return w
}

// withoutDebug drops debug lines and folds a run of lines that differ only in
// their timestamp (a heartbeat failing every second while cut off) into its
// first line and a count.
func withoutDebug(s string) string {
	var b strings.Builder
	prev, repeats := "", 0
	flush := func() {
		if repeats > 0 {
			fmt.Fprintf(&b, "\t… the same %d more times\n", repeats)
			repeats = 0
		}
	}
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.Contains(line, "\tDEBUG\t") {
			continue
		}
		_, msg, _ := strings.Cut(line, "\t")
		if msg != "" && msg == prev {
			repeats++
			continue
		}
		flush()
		prev = msg
		b.WriteString(line)
	}
	flush()
	return b.String()
}

// start runs the real trakkar-agent on host h.
func (w *fleetWorld) start(h *fleetHost) *proc {
	w.t.Helper()
	args := []string{"--repo", h.repo, "--image", w.image, "--interval", "1", "--poll-wait", "1", "--stop-grace", "2",
		"--github-api-url", w.forgeURL, "--no-caches", "--log-level", "debug",
		"--network", "none"} // the fleet is about the runners' network, not the tasks' (env.config)
	if w.maxConc > 0 {
		args = append(args, "--max-concurrency", fmt.Sprint(w.maxConc))
	}
	env := fleetEnv("TRAKKAR_API_URL="+w.apiURL, "TRAKKAR_TOKEN="+agentToken, "GH_TOKEN="+ghToken,
		"ANTHROPIC_API_KEY="+modelKey, "TRAKKAR_RUNNER_ID="+h.runnerID, "TRAKKAR_LOG_FORMAT=console")
	h.p = startIn(w.t, h.ns, env, h.repo, binary(w.t), args...)
	return h.p
}

func (w *fleetWorld) startAll() {
	for _, h := range w.hosts {
		w.start(h)
	}
}

// task delegates a task whose agent edits a file, pausing delay after each
// line of output.
func (w *fleetWorld) task(key string, delay time.Duration) {
	w.t.Helper()
	title := "Fleet " + key
	desc := fmt.Sprintf("fake:scenario=edit\nfake:delay=%s\nfake:write=%s.txt=done by the fleet\n", delay, strings.ToLower(key))
	if _, _, err := w.stand.CreateTask(standin.NewTask{Key: key, Title: title, Description: desc}); err != nil {
		w.t.Fatal(err)
	}
	branch, err := hostgit.BranchName("trakkar/", key, title)
	if err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.branches[branch] = key
	w.mu.Unlock()
}

// observe is called by the fake GitHub before each push and PR: the runner on
// the host it came from must hold the run's lease at that moment.
func (w *fleetWorld) observe(p fakegithub.Publish) {
	ip, _, _ := net.SplitHostPort(p.RemoteAddr)
	runner := "unknown host " + ip
	for _, h := range w.hosts {
		if h.ip == ip {
			runner = h.runnerID
		}
	}
	w.mu.Lock()
	key := w.branches[strings.TrimPrefix(p.Ref, "refs/heads/")]
	w.mu.Unlock()
	holder := ""
	if rv, ok := w.lastRun(key); ok {
		switch rv.Run.Status {
		case trakkar.StatusClaimed, trakkar.StatusRunning, trakkar.StatusStopRequested:
			holder = rv.RunnerID
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.published++
	w.pushesBy[runner]++
	if key == "" || holder != runner {
		w.split = append(w.split, fmt.Sprintf("%s of %s (task %q) by %s while the lease was held by %q", p.Kind, p.Ref, key, runner, holder))
	}
}

func (w *fleetWorld) pushesFrom(h *fleetHost) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pushesBy[h.runnerID]
}

func (w *fleetWorld) lastRun(key string) (standin.RunView, bool) { return lastRunOn(w.stand, key) }

func (w *fleetWorld) host(runnerID string) *fleetHost {
	for _, h := range w.hosts {
		if h.runnerID == runnerID {
			return h
		}
	}
	return nil
}

// claimOf waits until attempt n of the task's run is claimed and returns its host.
func (w *fleetWorld) claimOf(key string, attempt int, timeout time.Duration) *fleetHost {
	w.t.Helper()
	var h *fleetHost
	waitFor(w.t, timeout, fmt.Sprintf("attempt %d of %s to be claimed", attempt, key), func() bool {
		rv, ok := w.lastRun(key)
		if !ok {
			return false
		}
		for _, c := range rv.Claims {
			if c.Attempt == attempt {
				h = w.host(c.RunnerID)
				return h != nil
			}
		}
		return false
	})
	return h
}

func (w *fleetWorld) containers(h *fleetHost) []docker.Container {
	w.t.Helper()
	cs, err := w.dc.List(context.Background(), map[string]string{supervisor.LabelRunner: h.runnerID})
	if err != nil {
		w.t.Fatal(err)
	}
	return cs
}

func (w *fleetWorld) running(h *fleetHost) int {
	n := 0
	for _, c := range w.containers(h) {
		if c.State == "running" {
			n++
		}
	}
	return n
}

// cut rejects everything host h sends to Trakkar; the forge and Docker stay.
func (w *fleetWorld) cut(h *fleetHost) {
	w.t.Helper()
	if err := cutRule(h.ns, w.tport, true); err != nil {
		w.t.Fatal(err)
	}
}

func (w *fleetWorld) heal(h *fleetHost) {
	w.t.Helper()
	if err := cutRule(h.ns, w.tport, false); err != nil {
		w.t.Fatal(err)
	}
}

func (w *fleetWorld) waitCompleted(key string, timeout time.Duration) standin.RunView {
	w.t.Helper()
	return waitCompletedOn(w.t, w.stand, key, timeout)
}

// kept reports whether host h still has a task worktree.
func (w *fleetWorld) kept(h *fleetHost) bool {
	ents, _ := os.ReadDir(supervisor.WorktreeRoot(h.repo))
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			return true
		}
	}
	return false
}

// fleetTally is what a world's stand-in and fake GitHub observed.
type fleetTally struct {
	runs, lost, stopped, dupPRs, force, split int
}

func (a *fleetTally) add(b fleetTally) {
	a.runs += b.runs
	a.lost += b.lost
	a.stopped += b.stopped
	a.dupPRs += b.dupPRs
	a.force += b.force
	a.split += b.split
}

// tally counts, for every task: its claimed attempts, whether it ended
// without an outcome or failed (lost), stopped by a drain, its PRs beyond
// one, and checks each attempt's events are gapless.
func (w *fleetWorld) tally() fleetTally {
	w.t.Helper()
	var tl fleetTally
	prsByHead := map[string]int{}
	for _, pr := range w.gh.PRs("acme", "web") {
		prsByHead[pr.Head]++
	}
	w.mu.Lock()
	branches := make(map[string]string, len(w.branches))
	for b, k := range w.branches {
		branches[b] = k
	}
	tl.split = len(w.split)
	for _, s := range w.split {
		w.t.Errorf("split-brain publish: %s", s)
	}
	w.mu.Unlock()
	for branch, key := range branches {
		tv, _ := w.stand.TaskByKey(key)
		for _, rv := range tv.Runs {
			tl.runs += len(rv.Claims)
			seqsGapless(w.t, key, rv.Events)
		}
		rv, ok := w.lastRun(key)
		switch {
		case !ok || rv.Completion == nil:
			w.t.Errorf("task %s was never completed", key)
			tl.lost++
		case rv.Completion.Outcome == trakkar.OutcomeStopped:
			tl.stopped++
		case rv.Completion.Outcome != trakkar.OutcomeSucceeded:
			w.t.Errorf("task %s ended %s: %v", key, rv.Completion.Outcome, rv.Completion.Error)
			tl.lost++
		case rv.Completion.PullRequest == nil || prsByHead[branch] == 0:
			w.t.Errorf("task %s succeeded without a pull request", key)
			tl.lost++
		}
		if n := prsByHead[branch]; n > 1 {
			w.t.Errorf("task %s has %d pull requests", key, n)
			tl.dupPRs += n - 1
		}
	}
	tl.force = w.gh.ForcePushes()
	if tl.force > 0 {
		w.t.Errorf("%d force pushes: %+v", tl.force, w.gh.Updates())
	}
	return tl
}

// seqsGapless checks that the run's events run 1, 2, 3… with no gap, across
// attempts (seqs belong to the run).
func seqsGapless(t testing.TB, key string, evs []trakkar.Event) {
	t.Helper()
	var prev int64
	for _, ev := range evs {
		if ev.Seq != prev+1 {
			t.Errorf("task %s: event seq %d follows %d", key, ev.Seq, prev)
			return
		}
		prev = ev.Seq
	}
}
