package supervisor_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// attempts splits a run's stored events into the attempts that sent them.
func attempts(evs []trakkar.Event) [][]trakkar.Event {
	var out [][]trakkar.Event
	for _, ev := range evs {
		// Seqs run on across attempts (they belong to the run); each attempt
		// begins with its claim's status.
		claimed := ev.Type == trakkar.EventStatus && strings.HasPrefix(ev.Text, "Claimed by runner ")
		if claimed || len(out) == 0 {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], ev)
	}
	return out
}

// A lost lease stops the container within seconds and nothing more is reported
// for that attempt; the re-queued run is picked up again cleanly.
func TestLeaseLostStopsTheContainer(t *testing.T) {
	parallel(t)
	var offset atomic.Int64
	e := newEnv(t, envOpts{lease: 3, now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "REL-10", Title: "Lose the lease", Description: "fake:scenario=hang\n"}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(nil))
	var first string
	waitFor(t, 60*time.Second, "agent running", func() bool {
		cs := e.managedContainers()
		if len(cs) == 1 {
			first = cs[0].ID
		}
		rv, _ := e.lastRun("REL-10")
		return first != "" && strings.Contains(eventTexts(rv.Events), "Working on it")
	})
	// Trakkar stops hearing from the runner: jump its clock past the lease.
	offset.Store(int64(10 * time.Second))
	e.stand.ExpireLeases()
	lost := time.Now()
	waitFor(t, 15*time.Second, "the first container gone", func() bool {
		for _, c := range e.managedContainers() {
			if c.ID == first {
				return false
			}
		}
		return true
	})
	if d := time.Since(lost); d > slowHost*10*time.Second {
		t.Errorf("container stopped %s after the lease was lost", d)
	}
	// The re-queued run (attempt 2) is claimed again and runs in a new container.
	waitFor(t, 30*time.Second, "attempt 2 running", func() bool {
		rv, _ := e.lastRun("REL-10")
		att := attempts(rv.Events)
		return rv.Run.Attempt == 2 && len(att) >= 2 && strings.Contains(eventTexts(att[1]), "Workspace ready")
	})
	rv, _ := e.lastRun("REL-10")
	att := attempts(rv.Events)
	if len(att) < 2 {
		t.Fatalf("want events of two attempts, got %d:\n%s", len(att), eventTexts(rv.Events))
	}
	for _, ev := range att[0] {
		if ev.At.After(lost.Add(2 * time.Second)) {
			t.Errorf("attempt 1 reported %q at %s, after its lease was lost at %s", ev.Text, ev.At, lost)
		}
	}
	if !strings.Contains(eventTexts(att[1]), "Workspace ready") {
		t.Errorf("attempt 2 did not prepare its workspace:\n%s", eventTexts(att[1]))
	}
}

// Trakkar answers 503 for 35 s mid-run, past the 30 s after which the runner
// once gave up on its events: the agent keeps going, and every event reaches
// Trakkar exactly once, in order, when it is back. Retries are capped at half
// a second, so the outage holds dozens of them and its end is seen at once.
func TestTrakkarOutageLosesNothing(t *testing.T) {
	parallelLong(t)
	// The client gives up on a call after 2 s, so the shipper's own retries
	// carry the outage (the agent's-end outage test keeps the client's).
	e := newEnv(t, envOpts{lease: 300, clientBackoff: 300 * time.Millisecond, clientMaxElapsed: 2 * time.Second})
	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "REL-11", Title: "Talk through an outage",
		Description: "fake:scenario=chatty\nfake:count=50\nfake:delay=1s\n"}); err != nil {
		t.Fatal(err)
	}
	e.start(e.config(func(c *supervisor.Config) { c.EventRetryMax = 500 * time.Millisecond }))
	waitFor(t, 60*time.Second, "first progress notes", func() bool {
		rv, _ := e.lastRun("REL-11")
		return strings.Contains(eventTexts(rv.Events), "Progress note 2 of 50")
	})
	var down atomic.Bool
	down.Store(true)
	var refused atomic.Int64
	e.stand.SetFault(func(r *http.Request) (int, bool) {
		if down.Load() {
			refused.Add(1)
			return http.StatusServiceUnavailable, true
		}
		return 0, false
	})
	time.Sleep(35 * time.Second)
	down.Store(false)
	rv := e.waitCompleted("REL-11", 120*time.Second)
	if refused.Load() == 0 {
		t.Fatal("the outage refused nothing; the test did not exercise it")
	}
	assertSeqContiguous(t, rv.Events)
	assertNoDuplicateContent(t, rv.Events)
	all := eventTexts(rv.Events)
	for i := 1; i <= 50; i++ {
		if !strings.Contains(all, "Progress note "+strconv.Itoa(i)+" of 50") {
			t.Fatalf("progress note %d lost in the outage", i)
		}
	}
	if rv.Completion.Outcome != trakkar.OutcomeNoChanges {
		t.Fatalf("outcome %q, want no_changes", rv.Completion.Outcome)
	}
}

// Stop reaches the agent within the 5 s budget after the heartbeat that
// carries it, also when the agent ignores SIGTERM (killed after the grace).
// The budget is timed to the runner's stop request: what the engine takes to
// stop and remove the container (14 s for a 1 s grace on a loaded CI engine)
// is not the runner's, and the agent hangs until stopped, so the container's
// going at all proves the stop and the kill. Its two cases run side by side.
func TestStopLatency(t *testing.T) {
	for _, c := range []struct {
		name, desc string
	}{
		{"exits on SIGTERM", "fake:scenario=hang\n"},
		{"ignores SIGTERM", "fake:scenario=hang\nfake:ignore-sigterm\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			e := newEnv(t, envOpts{lease: 3})
			// Record when a heartbeat answer first carries the Stop.
			var carried atomic.Int64
			e.wrapHandler(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					next.ServeHTTP(w, r)
					if strings.HasSuffix(r.URL.Path, "/heartbeat") && carried.Load() == 0 {
						if tv, ok := e.stand.TaskByKey("REL-12"); ok && len(tv.Runs) > 0 && tv.Runs[0].Run.Status == trakkar.StatusStopRequested {
							carried.Store(time.Now().UnixNano())
						}
					}
				})
			})
			task, _, err := e.stand.CreateTask(standin.NewTask{Key: "REL-12", Title: "Stop me", Description: c.desc})
			if err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zap.InfoLevel)
			e.log = zap.New(zapcore.NewTee(e.log.Core(), core))
			e.start(e.config(func(cfg *supervisor.Config) { cfg.StopGrace = 2 * time.Second }))
			waitFor(t, 60*time.Second, "agent running", func() bool {
				rv, ok := e.lastRun("REL-12")
				return ok && len(e.managedContainers()) == 1 && strings.Contains(eventTexts(rv.Events), "Working on it")
			})
			if err := e.stand.Stop(task.ID); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, "container gone", func() bool { return len(e.managedContainers()) == 0 })
			gone := time.Now()
			if carried.Load() == 0 {
				t.Fatal("no heartbeat carried the Stop")
			}
			at := time.Unix(0, carried.Load())
			stops := logs.FilterMessage("stopping container").All()
			if len(stops) == 0 {
				t.Fatal("the container went without the runner stopping it")
			}
			latency := stops[0].Time.Sub(at)
			t.Logf("stop requested %s after the heartbeat, container gone after %s", latency, gone.Sub(at))
			// The budget is 5 s; the slack is for a loaded host.
			if latency > slowHost*5*time.Second {
				t.Errorf("the runner stopped the agent %s after the heartbeat carrying Stop; budget 5s", latency)
			}
			rv := e.waitCompleted("REL-12", 30*time.Second)
			if rv.Completion.Outcome != trakkar.OutcomeStopped {
				t.Fatalf("outcome %q", rv.Completion.Outcome)
			}
		})
	}
}

// Two supervisors (two hosts) share one agent: ten tasks, each run exactly once.
func TestTwoSupervisorsShareTheQueue(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	// The second host has its own clone of the same origin.
	second := filepath.Join(t.TempDir(), "web2")
	gitCmd(t, "", "clone", "-q", gitCmd(t, e.repo, "remote", "get-url", "origin"), second)
	cfgA := e.config(func(c *supervisor.Config) { c.Publish = supervisor.PublishBranch; c.MaxConcurrency = 3 })
	cfgB := e.config(func(c *supervisor.Config) {
		c.Publish = supervisor.PublishBranch
		c.MaxConcurrency = 3
		c.Repo = second
		c.Runner.ID = e.runner + "_b"
		c.Runner.Hostname = "e2e-host-b"
	})
	var keys []string
	for i := 0; i < 10; i++ {
		k := "TWO-" + strconv.Itoa(i+1)
		keys = append(keys, k)
		if _, _, err := e.stand.CreateTask(standin.NewTask{Key: k, Title: "Task " + k,
			Description: "fake:delay=100ms\nfake:write=two/" + strings.ToLower(k) + ".txt=" + k + "\n"}); err != nil {
			t.Fatal(err)
		}
	}
	e.start(cfgA)
	e.start(cfgB)
	runners := map[string]int{}
	for _, k := range keys {
		e.waitCompleted(k, 120*time.Second)
	}
	for _, k := range keys {
		tv, _ := e.stand.TaskByKey(k)
		if len(tv.Runs) != 1 || tv.Runs[0].Run.Attempt != 1 || tv.Runs[0].Completion.Outcome != trakkar.OutcomeSucceeded {
			t.Fatalf("%s: %d runs, attempt %d, completion %+v", k, len(tv.Runs), tv.Runs[0].Run.Attempt, tv.Runs[0].Completion)
		}
		if n := len(attempts(tv.Runs[0].Events)); n != 1 {
			t.Fatalf("%s was worked %d times", k, n)
		}
		runners[tv.Runs[0].RunnerID]++
	}
	t.Logf("runs per runner: %v", runners)
	for id := range runners {
		if id != cfgA.Runner.ID && id != cfgB.Runner.ID {
			t.Fatalf("unknown runner %q", id)
		}
	}
}

// The first SIGTERM drains: running agents are stopped and reported stopped,
// workspaces kept, no container left, exit status 0.
func TestSIGTERMDrains(t *testing.T) {
	parallel(t)
	e := newEnv(t, envOpts{})
	for _, k := range []string{"DRAIN-1", "DRAIN-2"} {
		if _, _, err := e.stand.CreateTask(standin.NewTask{Key: k, Title: k, Description: "fake:scenario=hang\n"}); err != nil {
			t.Fatal(err)
		}
	}
	p := e.spawn(t, e.url)
	waitFor(t, 60*time.Second, "both agents running", func() bool { return len(e.managedContainers()) == 2 })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("supervisor did not exit within 60s of SIGTERM\n%s", p.out.String())
	}
	for _, k := range []string{"DRAIN-1", "DRAIN-2"} {
		rv, _ := e.lastRun(k)
		if rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeStopped {
			t.Errorf("%s: completion %+v", k, rv.Completion)
		}
		if _, err := os.Stat(filepath.Join(e.repo, ".trakkar-worktrees", strings.ToLower(k))); err != nil {
			t.Errorf("%s: workspace not kept: %v", k, err)
		}
	}
	if n := len(e.managedContainers()); n != 0 {
		t.Errorf("%d containers left after draining", n)
	}
}
