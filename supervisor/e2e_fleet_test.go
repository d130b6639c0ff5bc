//go:build linux

package supervisor_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// TestFleet runs the real trakkar-agent on three runner hosts (network
// namespaces joined to a "Trakkar + forge" namespace by veth and a bridge),
// sharing one Docker engine, against the stand-in and the fake GitHub, and
// plays issue 14's five cases, each in a world of its own, in parallel:
// failover, a partition during the agent run, a partition at publish time
// (the split-brain case), Trakkar lost for everyone for longer than a lease,
// and a rolling restart with 9 queued tasks. The tally counts what the
// stand-in and the fake GitHub observed. Needs root, iproute2 and iptables.
func TestFleet(t *testing.T) {
	parallelLong(t)
	scenarios := []struct {
		name string
		run  func(t *testing.T) *fleetWorld
	}{
		{"failover", fleetFailover},
		{"partition during the agent run", fleetPartitionRun},
		{"partition at publish time", fleetPartitionPublish},
		{"trakkar flaps for everyone", fleetFlap},
		{"rolling restart", fleetRollingRestart},
	}
	var (
		mu    sync.Mutex
		total fleetTally
	)
	names := make([]string, len(scenarios))
	for i, sc := range scenarios {
		names[i] = sc.name
	}
	t.Run("scenarios", func(t *testing.T) {
		concurrently(t, names, func(t *testing.T, i int) {
			sc := scenarios[i]
			w := sc.run(t)
			tl := w.tally()
			t.Logf("%s: runs %d, lost %d, stopped by a drain %d, duplicate PRs %d, force pushes %d, split-brain publishes %d",
				sc.name, tl.runs, tl.lost, tl.stopped, tl.dupPRs, tl.force, tl.split)
			mu.Lock()
			total.add(tl)
			mu.Unlock()
		})
	})
	line := fmt.Sprintf("fleet: %d scenarios, runs %d, lost %d, duplicate PRs %d, force pushes %d, split-brain publishes %d",
		len(scenarios), total.runs, total.lost, total.dupPRs, total.force, total.split)
	fmt.Println(line)
	t.Log(line)
	if total.lost+total.dupPRs+total.force+total.split > 0 {
		t.Fatalf("the fleet lost, duplicated or overwrote work: %s", line)
	}
}

// A runner is SIGKILLed mid-run and never comes back: its lease lapses,
// another runner takes attempt 2 and finishes with one PR. The dead runner's
// container is left alone by the other hosts and removed by the next runner
// started on its own host.
func fleetFailover(t *testing.T) *fleetWorld {
	w := newFleetWorld(t, "f", fleetOpts{})
	w.startAll()
	w.task("FO-1", 1500*time.Millisecond)
	a := w.claimOf("FO-1", 1, 60*time.Second)
	waitFor(t, 60*time.Second, "the agent running on the first host", func() bool { return w.running(a) == 1 })
	a.p.kill()
	b := w.claimOf("FO-1", 2, 60*time.Second)
	if b == a {
		t.Fatalf("attempt 2 went to the dead runner %s", a.runnerID)
	}
	rv := w.waitCompleted("FO-1", 120*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeSucceeded || rv.Completion.PullRequest == nil {
		t.Fatalf("after failover: %+v", rv.Completion)
	}
	if len(w.containers(a)) == 0 {
		t.Fatal("the dead runner's container was removed by another host's runner")
	}
	w.start(a) // whoever next starts on that host cleans up
	waitFor(t, 60*time.Second, "the restarted runner to remove the dead one's container", func() bool {
		return len(w.containers(a)) == 0
	})
	if w.pushesFrom(a) != 0 {
		t.Errorf("the dead runner's host published %d times", w.pushesFrom(a))
	}
	return w
}

// Runner A is cut off from Trakkar but not from Docker while its agent works.
// The lease lapses and B takes attempt 2. When A's side heals, A learns the
// lease is lost, stops its container, keeps its workspace, publishes nothing.
func fleetPartitionRun(t *testing.T) *fleetWorld {
	w := newFleetWorld(t, "p", fleetOpts{})
	w.startAll()
	w.task("PR-1", 2*time.Second)
	a := w.claimOf("PR-1", 1, 60*time.Second)
	waitFor(t, 60*time.Second, "the agent running on A", func() bool { return w.running(a) == 1 })
	w.cut(a)
	b := w.claimOf("PR-1", 2, 60*time.Second)
	if b == a {
		t.Fatalf("attempt 2 went to the cut-off runner %s", a.runnerID)
	}
	if w.running(a) != 1 {
		t.Fatal("A's agent did not keep working while A was cut off")
	}
	w.heal(a)
	waitFor(t, 60*time.Second, "A to stop its container once it learns the lease is lost", func() bool {
		return w.running(a) == 0
	})
	if !strings.Contains(a.p.output(), "lease lost") {
		t.Error("A does not say it lost the lease")
	}
	if !w.kept(a) {
		t.Error("A did not keep its workspace")
	}
	rv := w.waitCompleted("PR-1", 120*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeSucceeded || rv.Completion.PullRequest == nil {
		t.Fatalf("after the partition: %+v", rv.Completion)
	}
	if w.pushesFrom(a) != 0 {
		t.Errorf("the cut-off runner published %d times", w.pushesFrom(a))
	}
	return w
}

// A finishes while cut off from Trakkar but can still reach the forge. It
// must not publish without a lease Trakkar confirmed within lease/3: it waits
// and keeps asking; B takes attempt 2 and publishes; when A hears the run is
// gone it keeps its workspace and reports nothing. A verify command keeps the
// run busy after the agent's output is delivered, so the cut lands between
// the agent and the push.
func fleetPartitionPublish(t *testing.T) *fleetWorld {
	verify := "sleep 5"
	w := newFleetWorld(t, "s", fleetOpts{agent: trakkar.Agent{VerifyCommand: &verify}})
	w.startAll()
	w.task("SB-1", 200*time.Millisecond)
	a := w.claimOf("SB-1", 1, 60*time.Second)
	waitFor(t, 90*time.Second, "A verifying", func() bool {
		rv, ok := w.lastRun("SB-1")
		return ok && rv.RunnerID == a.runnerID && rv.LastState == trakkar.StateVerifying
	})
	w.cut(a)
	t.Logf("A cut off from trakkar at %s", time.Now().UTC().Format(time.RFC3339Nano))
	// The verify container, the commit and the first unanswered heartbeat
	// lie between the cut and the hold: on a busy engine that can take long.
	waitFor(t, killWait, "A holding the push for a fresh lease", func() bool {
		if w.pushesFrom(a) != 0 {
			// Not the runner's fault: its verify ended before the cut.
			t.Fatal("A published before the cut took effect; the case needs a longer verify")
		}
		return strings.Contains(a.p.output(), "holding the push")
	})
	b := w.claimOf("SB-1", 2, 60*time.Second)
	if b == a {
		t.Fatalf("attempt 2 went to the cut-off runner %s", a.runnerID)
	}
	rv := w.waitCompleted("SB-1", 120*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeSucceeded || rv.Completion.PullRequest == nil {
		t.Fatalf("B's run: %+v", rv.Completion)
	}
	if w.pushesFrom(a) != 0 {
		t.Fatalf("A published %d times while cut off from Trakkar", w.pushesFrom(a))
	}
	w.heal(a)
	waitFor(t, killWait, "A to learn the lease is lost", func() bool {
		return strings.Contains(a.p.output(), "lease lost before publishing")
	})
	time.Sleep(2 * time.Second) // anything A would still do after hearing it
	if w.pushesFrom(a) != 0 {
		t.Errorf("A published %d times after losing the lease", w.pushesFrom(a))
	}
	if !w.kept(a) {
		t.Error("A did not keep its workspace")
	}
	if rv2, _ := w.lastRun("SB-1"); rv2.Completion == nil || rv2.Completion.PullRequest == nil ||
		rv2.Completion.PullRequest.URL != rv.Completion.PullRequest.URL {
		t.Errorf("the completion changed after A healed: %+v", rv2.Completion)
	}
	return w
}

// All three runners lose Trakkar for longer than a lease, then get it back.
// Every run completes once, one PR per task, gapless events.
func fleetFlap(t *testing.T) *fleetWorld {
	w := newFleetWorld(t, "l", fleetOpts{maxConc: 1})
	w.startAll()
	keys := []string{"FL-1", "FL-2", "FL-3"}
	for _, k := range keys {
		w.task(k, 1500*time.Millisecond)
	}
	waitFor(t, 90*time.Second, "an agent running on every host", func() bool {
		for _, h := range w.hosts {
			if w.running(h) != 1 {
				return false
			}
		}
		return true
	})
	for _, h := range w.hosts {
		w.cut(h)
	}
	time.Sleep((fleetLease + 2) * time.Second)
	for _, h := range w.hosts {
		w.heal(h)
	}
	for _, k := range keys {
		rv := w.waitCompleted(k, 150*time.Second)
		if rv.Completion.Outcome != trakkar.OutcomeSucceeded || rv.Completion.PullRequest == nil {
			t.Errorf("%s after the flap: %+v", k, rv.Completion)
		}
		if len(rv.Claims) < 2 {
			t.Errorf("%s: %d attempts; a lease should have lapsed during the outage", k, len(rv.Claims))
		}
	}
	waitFor(t, 60*time.Second, "no agent left running", func() bool {
		for _, h := range w.hosts {
			if w.running(h) != 0 {
				return false
			}
		}
		return true
	})
	return w
}

// The three runners are restarted one at a time (SIGTERM drain, start again)
// while 9 tasks are queued: every task ends with an outcome, none twice.
// A drain reports the runs it interrupts as stopped (by design, README
// "Signals"); those are counted apart from lost ones.
func fleetRollingRestart(t *testing.T) *fleetWorld {
	w := newFleetWorld(t, "r", fleetOpts{maxConc: 1})
	w.startAll()
	var keys []string
	for i := 1; i <= 9; i++ {
		keys = append(keys, fmt.Sprintf("RR-%d", i))
		w.task(keys[i-1], 800*time.Millisecond)
	}
	allDone := func() bool {
		for _, k := range keys {
			if rv, ok := w.lastRun(k); !ok || rv.Completion == nil {
				return false
			}
		}
		return true
	}
	for _, h := range w.hosts {
		// Restarted while it works, unless the queue ran dry first.
		waitFor(t, 90*time.Second, fmt.Sprintf("host %d working", h.i), func() bool { return w.running(h) == 1 || allDone() })
		old := h.p
		old.stop(60 * time.Second)
		if !old.exited() {
			t.Fatalf("runner %d did not drain", h.i)
		}
		w.start(h)
	}
	for _, k := range keys {
		w.waitCompleted(k, 180*time.Second)
	}
	return w
}
