package supervisor_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trakkar/trakkar-agent/internal/docker"
	"github.com/trakkar/trakkar-agent/internal/fakeruntime"
	"github.com/trakkar/trakkar-agent/internal/hostgit"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// These tests hold the fresh-lease rule (docs/trakkar-agent-api.md,
// "Behaviour the runner owes Trakkar"): no push without a lease Trakkar
// confirmed within lease_seconds/3. The stand-in's lease is 1 s, so a
// confirmation is stale after 333 ms.

// cutTrakkar makes the stand-in answer heartbeats with 503, as an
// unreachable Trakkar does, and counts those sent meanwhile in the
// publishing state. Events still go through: the runner finishes a run only
// once Trakkar holds the agent's output, so a cut that took events too would
// stop it before publishing.
type cutTrakkar struct {
	on         atomic.Bool
	publishing atomic.Int64
}

func (c *cutTrakkar) fault(r *http.Request) (int, bool) {
	if !c.on.Load() || !strings.HasSuffix(r.URL.Path, "/heartbeat") {
		return 0, false
	}
	var b struct{ State string }
	raw, _ := io.ReadAll(r.Body)
	if json.Unmarshal(raw, &b) == nil && b.State == trakkar.StatePublishing {
		c.publishing.Add(1)
	}
	return http.StatusServiceUnavailable, true
}

// agentReleased edits a file once release is closed.
func agentReleased(release <-chan struct{}) func(docker.Spec) fakeruntime.Script {
	return agentHangs(func(s *fakeruntime.Script) {
		s.Release, s.Files, s.Result = release, map[string]string{"hello.txt": "hi\n"}, doneResult
	})
}

// holdAtPublish runs a task until the agent has finished with Trakkar cut off
// and the runner is asking Trakkar, in the publishing state, to confirm its
// lease. It returns the cut and the running supervisor. e's lease must be 1 s.
func holdAtPublish(t *testing.T, e *fakeEnv, key string) (*cutTrakkar, *fakeRun) {
	t.Helper()
	release := make(chan struct{})
	e.setScript(agentReleased(release))
	cut := &cutTrakkar{}
	e.stand.SetFault(cut.fault)
	e.task(key)
	p := e.start(e.config(nil))
	e.waitAgent(key)
	cut.on.Store(true)
	time.Sleep(500 * time.Millisecond) // the last confirmation is now older than lease/3
	close(release)
	// The runner says it committed just before it would push.
	waitFor(t, 30*time.Second, "the commit, the step before the push", func() bool {
		tv, ok := e.stand.TaskByKey(key)
		return ok && len(tv.Runs) > 0 && strings.Contains(texts(tv.Runs[0].Events), "status: Committed ")
	})
	waitFor(t, 30*time.Second, "heartbeats asking to confirm the lease before the push", func() bool {
		return cut.publishing.Load() >= 3
	})
	time.Sleep(time.Second) // time enough for a push, were one going
	if e.pushed("hello.txt") {
		t.Fatal("the branch was pushed while Trakkar could not confirm the lease")
	}
	return cut, p
}

func TestNoPushUntilTrakkarConfirmsTheLease(t *testing.T) {
	parallel(t)
	e := newFakeEnvLease(t, trakkar.Agent{}, 1) // holdAtPublish sleeps past lease/3
	cut, p := holdAtPublish(t, e, "LEASE-1")
	cut.on.Store(false) // Trakkar is back: the lease is confirmed and the push goes
	p.wait(t)
	if !e.pushed("hello.txt") {
		t.Fatal("the branch was not pushed once Trakkar confirmed the lease")
	}
	rv := e.runOf("LEASE-1")
	if rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("completion = %+v, want succeeded", rv.Completion)
	}
}

func TestLeaseLostAtPublishPublishesNothing(t *testing.T) {
	parallel(t)
	e := newFakeEnvLease(t, trakkar.Agent{}, 1)
	cut, p := holdAtPublish(t, e, "LEASE-2")
	wt := worktreeOf(t, e, "LEASE-2")
	// The lease lapses while the runner is cut off; Trakkar queues attempt 2.
	e.clock.Add(int64(5 * time.Second))
	e.stand.ExpireLeases()
	if rv := e.runOf("LEASE-2"); rv.Run.Status != trakkar.StatusQueued || rv.Run.Attempt != 2 {
		t.Fatalf("run after the lapse: %s attempt %d, want queued attempt 2", rv.Run.Status, rv.Run.Attempt)
	}
	cut.on.Store(false) // the runner hears 409 lease_lost
	p.wait(t)
	if e.pushed("hello.txt") {
		t.Fatal("a runner that lost the lease pushed")
	}
	rv := e.runOf("LEASE-2")
	if rv.Completion != nil {
		t.Fatalf("a lost run was completed: %+v", rv.Completion)
	}
	if b, err := os.ReadFile(filepath.Join(wt.Path, "hello.txt")); err != nil || string(b) != "hi\n" {
		t.Fatalf("the workspace was not kept: %q, %v", b, err)
	}
}

// A push the forge rejects as not fast-forward (another runner moved the
// branch) fails the run clearly and keeps the workspace; it is never forced.
func TestRejectedPushFailsAndKeepsTheWorkspace(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	release := make(chan struct{})
	e.setScript(agentReleased(release))
	e.task("LEASE-3")
	p := e.start(e.config(nil))
	e.waitAgent("LEASE-3")
	wt := worktreeOf(t, e, "LEASE-3")

	// Someone else pushes the task branch meanwhile.
	other := filepath.Join(t.TempDir(), "other")
	gitCmd(t, "", "clone", "-q", e.origin, other)
	if err := os.WriteFile(filepath.Join(other, "theirs.txt"), []byte("theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, other, "add", ".")
	gitCmd(t, other, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "theirs")
	gitCmd(t, other, "push", "-q", "origin", "HEAD:refs/heads/"+wt.Branch)
	theirs := strings.TrimSpace(gitCmd(t, other, "rev-parse", "HEAD"))

	close(release)
	p.wait(t)
	rv := e.runOf("LEASE-3")
	if rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeFailed {
		t.Fatalf("completion = %+v, want failed", rv.Completion)
	}
	if rv.Completion.Error == nil || !strings.Contains(*rv.Completion.Error, "push") {
		t.Errorf("the error does not say the push failed: %v", rv.Completion.Error)
	}
	if tip := strings.TrimSpace(gitCmd(t, "", "--git-dir", e.origin, "rev-parse", "refs/heads/"+wt.Branch)); tip != theirs {
		t.Fatalf("origin's branch moved from %s to %s: the push was forced", theirs, tip)
	}
	if b, err := os.ReadFile(filepath.Join(wt.Path, "hello.txt")); err != nil || string(b) != "hi\n" {
		t.Fatalf("the workspace was not kept: %q, %v", b, err)
	}
}

// worktreeOf reads the task's worktree from its run record once it is there.
func worktreeOf(t *testing.T, e *fakeEnv, key string) hostgit.Worktree {
	t.Helper()
	var wt hostgit.Worktree
	waitFor(t, 30*time.Second, "the run record of "+key+" to name its worktree", func() bool {
		b, err := os.ReadFile(e.recordPath(key))
		if err != nil {
			return false
		}
		var rec struct{ Worktree hostgit.Worktree }
		if json.Unmarshal(b, &rec) != nil {
			return false
		}
		wt = rec.Worktree
		return wt.Path != "" && wt.Branch != ""
	})
	return wt
}

// A runner restarted after its agent finished publishes through the same
// rule: no push until Trakkar confirms the lease the restart claimed again.
func TestRecoveredRunWaitsForAFreshLease(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	e.task("WEB-1")
	close(e.crashRunning())
	waitFor(t, 30*time.Second, "the agent's exit", func() bool { return len(e.rt.Running(nil)) == 0 })
	_ = e.rt.Remove(context.Background(), e.agentID)
	e.editRecord("WEB-1", func(m map[string]any) { m["phase"] = "finishing" })

	cut := &cutTrakkar{}
	cut.on.Store(true)
	e.stand.SetFault(cut.fault)
	p := e.start(e.config(nil))
	waitFor(t, 30*time.Second, "the commit, the step before the push", func() bool {
		return strings.Contains(texts(e.runOf("WEB-1").Events), "status: Committed ")
	})
	waitFor(t, 30*time.Second, "heartbeats asking to confirm the lease before the push", func() bool {
		return cut.publishing.Load() >= 3
	})
	time.Sleep(time.Second) // time enough for a push, were one going
	if e.pushed("hello.txt") {
		t.Fatal("the restarted runner pushed while Trakkar could not confirm the lease")
	}
	cut.on.Store(false)
	p.wait(t)
	if !e.pushed("hello.txt") {
		t.Fatal("the restarted runner did not push once Trakkar confirmed the lease")
	}
	if rv := e.runOf("WEB-1"); rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("completion = %+v, want succeeded", rv.Completion)
	}
}

// A lease that lapses while the runner still works on the run: Trakkar queues
// attempt 2 and this runner claims it. Attempt 1 shares the task's worktree,
// job folder and state files, so attempt 2 starts only once attempt 1 has
// stopped its container and ended.
func TestNewerAttemptWaitsForTheOlderOne(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	const key = "LEASE-5"
	e.setScript(func(s docker.Spec) fakeruntime.Script {
		if strings.HasSuffix(s.Name, "-a2") {
			return agentSucceeds(s)
		}
		// Attempt 1 holds on to its container through the stop's grace.
		return agentHangs(func(sc *fakeruntime.Script) { sc.IgnoreTerm = true })(s)
	})
	var overlap atomic.Bool
	e.rt.OnCreate = func(s docker.Spec) {
		if strings.HasSuffix(s.Name, "-a2") && len(e.rt.Running(map[string]string{supervisor.LabelTaskKey: key})) > 0 {
			overlap.Store(true)
		}
	}
	e.task(key)
	p := e.start(e.config(func(c *supervisor.Config) { c.Once, c.StopGrace = false, time.Second }))
	e.waitAgent(key)
	e.clock.Add(int64(time.Hour))
	e.stand.ExpireLeases()
	e.attempt2Succeeded(p, key, 0)
	if overlap.Load() {
		t.Error("attempt 2's container was created while attempt 1's still ran")
	}
	if !e.pushed("hello.txt") {
		t.Error("attempt 2's change was not pushed")
	}
}

// Heartbeats that Trakkar answers "gone" while the completion is on its way
// hear of that completion: the run is not reported as a lost lease.
func TestHeartbeatAfterTheCompletionIsNotALostLease(t *testing.T) {
	parallel(t)
	// A 5 s lease: with the default 1 s, heartbeats time out on a loaded host
	// and the push waits for a confirmed lease past the test's bounds.
	e := newFakeEnvLease(t, trakkar.Agent{}, 5)
	core, logs := observer.New(zap.WarnLevel)
	e.log = zap.New(zapcore.NewTee(e.log.Core(), core))
	// The completion's answer is held back until a heartbeat has found the
	// run completed and been answered, and a moment more for the runner to
	// read that answer.
	var completing atomic.Bool
	var beatsAfter atomic.Int64
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasSuffix(r.URL.Path, "/complete"):
				next.ServeHTTP(w, r)
				completing.Store(true)
				for deadline := time.Now().Add(slowHost * fakeWait); beatsAfter.Load() == 0 && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(200 * time.Millisecond)
			case strings.HasSuffix(r.URL.Path, "/heartbeat") && completing.Load():
				next.ServeHTTP(w, r)
				beatsAfter.Add(1)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
	e.wrap.Store(&wrap)
	e.task("LEASE-6")
	e.start(e.config(nil)).wait(t)
	if rv := e.runOf("LEASE-6"); rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("completion = %+v, want succeeded", rv.Completion)
	}
	if beatsAfter.Load() == 0 {
		t.Fatal("no heartbeat reached Trakkar while the completion was answered; the test proves nothing")
	}
	if n := logs.FilterMessageSnippet("lease lost").Len(); n > 0 {
		t.Errorf("%d lease-lost warnings for a run that completed: %v", n, logs.FilterMessageSnippet("lease lost").All()[0].Message)
	}
}

// A runner restarted after its run's lease lapsed finds the run queued again
// (attempt 2). Its recovery claims and continues it; the poll loop, which
// lists the run as queued meanwhile, must not start it a second time.
func TestRecoveredRunIsNotStartedTwice(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	e.task("WEB-1")
	release := e.crashRunning()
	e.clock.Add(int64(time.Hour))
	e.stand.ExpireLeases()
	// Claims wait until the poll loop has listed the queued run, so the
	// recovery's claim cannot take it off the queue first.
	var listed atomic.Bool
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/claim") {
				for deadline := time.Now().Add(slowHost * fakeWait); !listed.Load() && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
			}
			next.ServeHTTP(w, r)
			if strings.HasSuffix(r.URL.Path, "/runs/queued") {
				listed.Store(true)
			}
		})
	}
	e.wrap.Store(&wrap)
	var agents atomic.Int32
	e.rt.OnCreate = func(s docker.Spec) {
		if s.Labels[supervisor.LabelRole] == "" {
			agents.Add(1)
		}
	}
	close(release)
	p := e.start(e.config(func(c *supervisor.Config) { c.Once = false }))
	// Half a second after the completion: time for a second start, were one going.
	rv := e.attempt2Succeeded(p, "WEB-1", 500*time.Millisecond)
	if !listed.Load() {
		t.Fatal("the poll loop never listed the queued run; the test proves nothing")
	}
	if n := agents.Load(); n != 0 {
		t.Errorf("%d agent containers started after the restart; the recovery follows the one that ran", n)
	}
	if strings.Contains(texts(rv.Events), "(attempt 2)") {
		t.Errorf("the poll loop started attempt 2 beside its recovery:\n%s", texts(rv.Events))
	}
}

// attempt2Succeeded waits for key's completion, then settle more, drains p
// and requires that attempt 2 of the run completed successfully.
func (e *fakeEnv) attempt2Succeeded(p *fakeRun, key string, settle time.Duration) standin.RunView {
	e.t.Helper()
	waitFor(e.t, fakeWait, "the completion of attempt 2", func() bool { return e.runOf(key).Completion != nil })
	time.Sleep(settle)
	p.sup.Drain()
	p.wait(e.t)
	rv := e.runOf(key)
	if rv.Run.Attempt != 2 || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		e.t.Fatalf("attempt %d completed %+v, want attempt 2 succeeded", rv.Run.Attempt, rv.Completion)
	}
	return rv
}

// A lease that lapses while the runner waits for Trakkar to take the agent's
// output ends that wait: Trakkar answers the re-queued run's events with 409
// lease_lost, which no resend changes. Before, the wait went on for good and
// held the run's slot, so on a fleet that Trakkar cut off for longer than the
// lease no runner was left to take the re-queued runs.
func TestLeaseLostWhileTheOutputWaitsEndsTheRun(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	const key = "LEASE-6"
	release := make(chan struct{})
	e.setScript(agentReleased(release))
	var cut atomic.Bool // Trakkar unreachable: events and heartbeats
	e.stand.SetFault(func(r *http.Request) (int, bool) {
		p := r.URL.Path
		return http.StatusServiceUnavailable, cut.Load() && (strings.HasSuffix(p, "/events") || strings.HasSuffix(p, "/heartbeat"))
	})
	e.task(key)
	cut.Store(true) // from the claim on: no event can be acknowledged
	p := e.start(e.config(nil))
	e.waitAgent(key)
	close(release) // the agent ends; its events wait for Trakkar
	waitFor(t, fakeWait, "the agent's exit", func() bool { return len(e.rt.Running(nil)) == 0 })
	time.Sleep(300 * time.Millisecond) // the runner is now waiting for the acks
	if b, err := os.ReadFile(e.recordPath(key)); err != nil || !strings.Contains(string(b), `"phase": "running"`) {
		t.Fatalf("record while the output waits for Trakkar: %s, %v; want phase running", b, err)
	}

	e.clock.Add(int64(time.Hour))
	e.stand.ExpireLeases()
	if rv := e.runOf(key); rv.Run.Status != trakkar.StatusQueued || rv.Run.Attempt != 2 {
		t.Fatalf("run after the lapse: %s attempt %d, want queued attempt 2", rv.Run.Status, rv.Run.Attempt)
	}
	cut.Store(false) // the runner now hears 409 lease_lost
	p.wait(t)
	if e.pushed("hello.txt") {
		t.Fatal("a runner that lost the lease pushed")
	}
	if rv := e.runOf(key); rv.Completion != nil {
		t.Fatalf("a lost run was completed: %+v", rv.Completion)
	}
}

// Events answered 409 lease_lost tell the runner the run is another runner's,
// also while its heartbeats still pass (a Trakkar that checks only there):
// the agent is stopped at once, nothing more is sent, nothing is published or
// completed.
func TestEventsAnsweredLeaseLostStopTheRun(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	const key = "LEASE-7"
	release := make(chan struct{}) // never closed: only the lost lease ends the agent
	e.setScript(agentReleased(release))
	// Events wait (503) until the agent runs, so some are being resent when
	// the answer turns to lease_lost.
	var lost atomic.Bool
	var refused, eventsAfter atomic.Int64
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/events") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			if !lost.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"down"}}`))
				return
			}
			if refused.Add(1) > 1 {
				eventsAfter.Add(1)
			}
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":{"code":"lease_lost","message":"run held by another runner"}}`))
		})
	}
	e.wrap.Store(&wrap)
	e.task(key)
	p := e.start(e.config(nil))
	e.waitAgent(key)
	lost.Store(true)
	p.wait(t)
	if refused.Load() == 0 {
		t.Fatal("no event request was answered lease_lost; the test proves nothing")
	}
	if n := len(e.rt.Running(nil)); n > 0 {
		t.Errorf("%d containers still running after the lease was lost", n)
	}
	if n := eventsAfter.Load(); n > 0 {
		t.Errorf("%d event requests after the first lease_lost answer", n)
	}
	if e.pushed("hello.txt") {
		t.Error("a runner that lost the lease pushed")
	}
	if rv := e.runOf(key); rv.Completion != nil {
		t.Errorf("a lost run was completed: %+v", rv.Completion)
	}
}
