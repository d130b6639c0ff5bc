package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/fakegithub"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/testimage"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

const (
	ghToken    = "ghp_benchTokenValue123"
	modelKey   = "sk-ant-api03-benchModelKey"
	agentToken = "trk_agent_bench_secret"
)

// errFatal carries a harness helper's Fatal out of the helper: the test
// helpers (testimage, fakegithub) report failures through testing.TB.
type errFatal struct{ msg string }

// harness is the testing.TB the test helpers get outside a test: Fatal
// panics with errFatal (recovered by main), cleanups run at the end, temp
// folders live under one folder of this run. The embedded nil TB only
// satisfies the interface's unexported method; nothing calls through it.
type harness struct {
	testing.TB
	mu       sync.Mutex
	dir      string
	n        int
	cleanups []func()
	verbose  bool
}

func (h *harness) Helper()                           {}
func (h *harness) Name() string                      { return "bench" }
func (h *harness) Fatal(args ...any)                 { panic(errFatal{fmt.Sprint(args...)}) }
func (h *harness) Fatalf(format string, args ...any) { panic(errFatal{fmt.Sprintf(format, args...)}) }
func (h *harness) FailNow()                          { panic(errFatal{"FailNow"}) }
func (h *harness) Fail()                             {}
func (h *harness) Failed() bool                      { return false }
func (h *harness) Error(args ...any)                 { fmt.Fprintln(os.Stderr, args...) }
func (h *harness) Errorf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (h *harness) Log(args ...any)                   { h.Logf("%s", fmt.Sprint(args...)) }
func (h *harness) Logf(format string, args ...any) {
	if h.verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func (h *harness) TempDir() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	d := filepath.Join(h.dir, fmt.Sprintf("tmp%03d", h.n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		panic(errFatal{err.Error()})
	}
	return d
}

func (h *harness) Cleanup(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, f)
}

// cleanup runs the cleanups, newest first.
func (h *harness) cleanup() {
	h.mu.Lock()
	fs := h.cleanups
	h.cleanups = nil
	h.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// bench is what every row shares: the worker image, the Docker client, the
// fake GitHub, the trakkar-agent binary, and this run's unique id.
type bench struct {
	h        *harness
	dc       *docker.Client
	image    string
	gh       *fakegithub.Server
	bin      string
	runID    string
	repos    int
	runners  []string // runner ids started, for the final sweep
	clones   []string // clones runners worked on, for their cache volumes
	progress io.Writer
	keepLogs bool // -keep: each runner's log is saved in the run folder
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench: "+format+"\n", args...)
}

// trakkarStandIn is a stand-in Trakkar on real HTTP that records when each
// claim, event and completion arrived.
type trakkarStandIn struct {
	s   *standin.Server
	url string
	rec *recorder
}

func (b *bench) newTrakkar(agent trakkar.Agent) *trakkarStandIn {
	s := standin.New(standin.Options{Token: agentToken, Agent: agent, LeaseSeconds: 60})
	rec := &recorder{claims: map[string]time.Time{}, completes: map[string]time.Time{}, seen: map[string]map[int64]arrival{}}
	srv := httptest.NewServer(rec.wrap(s.Handler()))
	b.h.Cleanup(srv.Close)
	b.h.Cleanup(s.Close) // first: releases long polls
	return &trakkarStandIn{s: s, url: srv.URL, rec: rec}
}

// arrival is an event as Trakkar first stored it.
type arrival struct {
	ev trakkar.Event
	at time.Time // when the request that carried it was answered
}

type reqAt struct {
	run string
	at  time.Time
}

type recorder struct {
	mu        sync.Mutex
	claims    map[string]time.Time
	completes map[string]time.Time
	seen      map[string]map[int64]arrival
	eventReqs []reqAt
	polls     int
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (r *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
		// /v1/agent/runs/{id}/{action}
		var run, action string
		if len(parts) == 5 && parts[2] == "runs" {
			run, action = parts[3], parts[4]
		}
		if action == "claim" {
			r.mu.Lock()
			if _, ok := r.claims[run]; !ok {
				r.claims[run] = time.Now()
			}
			r.mu.Unlock()
		}
		var body []byte
		if action == "events" {
			body, _ = io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		if strings.HasSuffix(req.URL.Path, "/runs/queued") {
			// Counted on arrival: a long poll with nothing queued is answered
			// only when its wait ends, and the runner is ready before that.
			r.mu.Lock()
			r.polls++
			r.mu.Unlock()
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, req)
		now := time.Now()
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case action == "events" && sw.code == http.StatusOK:
			r.eventReqs = append(r.eventReqs, reqAt{run, now})
			var in struct {
				Events []trakkar.Event `json:"events"`
			}
			if json.Unmarshal(body, &in) == nil {
				m := r.seen[run]
				if m == nil {
					m = map[int64]arrival{}
					r.seen[run] = m
				}
				for _, ev := range in.Events {
					if _, dup := m[ev.Seq]; !dup {
						m[ev.Seq] = arrival{ev, now}
					}
				}
			}
		case action == "complete" && sw.code == http.StatusOK:
			if _, ok := r.completes[run]; !ok {
				r.completes[run] = now
			}
		}
	})
}

func (r *recorder) pollCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.polls
}

func (r *recorder) claimed(run string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.claims[run]
	return t, ok
}

func (r *recorder) completed(run string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.completes[run]
	return t, ok
}

// firstEvent is the first arrival of an event of run of type typ whose text
// starts with prefix.
func (r *recorder) firstEvent(run, typ, prefix string) (arrival, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best arrival
	found := false
	for _, a := range r.seen[run] {
		if a.ev.Type == typ && strings.HasPrefix(a.ev.Text, prefix) && (!found || a.ev.Seq < best.ev.Seq) {
			best, found = a, true
		}
	}
	return best, found
}

func (r *recorder) arrivals(run string) []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]arrival, 0, len(r.seen[run]))
	for _, a := range r.seen[run] {
		out = append(out, a)
	}
	return out
}

// eventRequests counts the accepted events requests of runs within [from, to].
func (r *recorder) eventRequests(runs map[string]bool, from, to time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.eventReqs {
		if runs[q.run] && !q.at.Before(from) && !q.at.After(to) {
			n++
		}
	}
	return n
}

// newRepo makes a repository acme/<name> on the fake GitHub with files
// generated files (besides a README) and returns a fresh clone of it.
func (b *bench) newRepo(files int) (string, error) {
	b.repos++
	name := fmt.Sprintf("bench-%s-%d", b.runID, b.repos)
	url := b.gh.AddRepo(b.h, "acme", name, map[string]string{"README.md": "# bench\n"})
	if files > 0 {
		if err := addFiles(b.gh.BareDir("acme", name), files); err != nil {
			return "", err
		}
	}
	clone := filepath.Join(b.h.TempDir(), name)
	if out, err := exec.Command("git", "clone", "-q", url, clone).CombinedOutput(); err != nil {
		return "", fmt.Errorf("clone %s: %w: %s", name, err, out)
	}
	b.clones = append(b.clones, clone)
	return clone, nil
}

// addFiles commits n small files, 100 to a folder, on top of main with git
// fast-import: every file is its own blob, as in a real repository.
func addFiles(bare string, n int) error {
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		content := fmt.Sprintf("package p%d\n\n// File %d of the benchmark repository.\nconst V%d = %d\n", i/100, i, i, i)
		fmt.Fprintf(&in, "blob\nmark :%d\ndata %d\n%s\n", i+1, len(content), content)
	}
	msg := fmt.Sprintf("add %d files", n)
	fmt.Fprintf(&in, "commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s\nfrom refs/heads/main^0\n",
		time.Now().Unix(), len(msg), msg)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "M 100644 :%d src/d%04d/f%06d.go\n", i+1, i/100, i)
	}
	in.WriteString("done\n")
	cmd := exec.Command("git", "--git-dir", bare, "fast-import", "--quiet", "--done")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("fast-import: %w: %s", err, out)
	}
	return nil
}

// runnerProc is a trakkar-agent process.
type runnerProc struct {
	cmd  *exec.Cmd
	id   string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

func (p *runnerProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.Write(b)
}

func (p *runnerProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startRunner starts trakkar-agent on repo against ti, and waits until it
// polls Trakkar.
func (b *bench) startRunner(ti *trakkarStandIn, repo string, extra ...string) (*runnerProc, error) {
	id := fmt.Sprintf("rnr_bench_%s_%d", b.runID, len(b.runners)+1)
	b.runners = append(b.runners, id)
	args := append([]string{"--repo", repo, "--image", b.image, "--github-api-url", b.gh.URL(),
		"--stop-grace", "2", "--log-format", "json", "--memory-mb", "512", "--cpus", "1"}, extra...)
	p := &runnerProc{id: id, done: make(chan struct{})}
	p.cmd = exec.Command(b.bin, args...)
	p.cmd.Env = append(os.Environ(), "TRAKKAR_API_URL="+ti.url, "TRAKKAR_TOKEN="+agentToken, "GH_TOKEN="+ghToken,
		"ANTHROPIC_API_KEY="+modelKey, "TRAKKAR_RUNNER_ID="+id)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	polls := ti.rec.pollCount()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start trakkar-agent: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	b.h.Cleanup(func() {
		p.stop()
		if b.keepLogs {
			_ = os.WriteFile(filepath.Join(b.h.dir, id+".log"), []byte(p.output()), 0o644)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for ti.rec.pollCount() == polls {
		select {
		case <-p.done:
			return nil, fmt.Errorf("trakkar-agent exited at start:\n%s", tail(p.output(), 20))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("trakkar-agent did not poll within a minute:\n%s", tail(p.output(), 20))
		}
	}
	return p, nil
}

// stop drains the runner (SIGTERM) and kills it if it does not exit.
func (p *runnerProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// peakRSS is the process's high-water resident set, in bytes.
func (p *runnerProc) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in process status")
}

// cpuTime is the CPU the process used so far (user+system).
func (p *runnerProc) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read process stat: %w", err)
	}
	s := string(b)
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("short process stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks, nil
}

// logTime is the time of the runner's first JSON log line with msg for run.
func (p *runnerProc) logTime(msg, run string) (time.Time, bool) {
	for _, line := range strings.Split(p.output(), "\n") {
		if !strings.Contains(line, msg) || !strings.Contains(line, run) {
			continue
		}
		var l struct {
			TS  string `json:"ts"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != msg {
			continue
		}
		if t, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// sweep removes what this run's runners may have left: containers labelled
// with their ids and the clones' cache volumes.
func (b *bench) sweep() {
	if b.dc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, id := range b.runners {
		cs, err := b.dc.List(ctx, map[string]string{supervisor.LabelRunner: id})
		if err != nil {
			b.logf("list containers of %s: %v", id, err)
			continue
		}
		for _, c := range cs {
			if err := b.dc.Remove(ctx, c.ID); err != nil {
				b.logf("remove container %s: %v", c.ID, err)
			}
		}
	}
	for _, repo := range b.clones {
		if _, err := supervisor.PruneCaches(ctx, b.dc, repo); err != nil {
			b.logf("prune caches of %s: %v", repo, err)
		}
	}
}

// buildImage builds (or reuses) the offline worker test image.
func (b *bench) buildImage() (string, error) {
	ref := testimage.Ensure(b.h)
	return ref, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
