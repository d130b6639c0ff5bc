package supervisor_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// recMetrics records what the supervisor tells its Metrics.
type recMetrics struct {
	mu       sync.Mutex
	outcomes []string
	phases   map[string]int
	starts   int
	resent   int
}

func (m *recMetrics) RunEnded(o string) {
	m.mu.Lock()
	m.outcomes = append(m.outcomes, o)
	m.mu.Unlock()
}
func (m *recMetrics) PhaseDone(p string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d < 0 {
		panic("negative phase duration")
	}
	m.phases[p]++
}
func (m *recMetrics) ContainerStarted(time.Duration) { m.mu.Lock(); m.starts++; m.mu.Unlock() }
func (m *recMetrics) EventsResent(n int)             { m.mu.Lock(); m.resent += n; m.mu.Unlock() }

// One run through every stage is heard once per stage, its container start
// once and its outcome once; the snapshot is idle again afterwards.
func TestMetricsHearEachStage(t *testing.T) {
	parallel(t)
	verify := "make test"
	e := newFakeEnv(t, trakkar.Agent{VerifyCommand: &verify})
	m := &recMetrics{phases: map[string]int{}}
	e.metrics = m
	e.task("WEB-1")
	p := e.start(e.config(nil))
	p.wait(t)
	if rv := e.runOf("WEB-1"); rv.Completion == nil || rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("run did not succeed: %+v", rv.Completion)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Equal(m.outcomes, []string{trakkar.OutcomeSucceeded}) {
		t.Errorf("outcomes %v, want one succeeded", m.outcomes)
	}
	for _, ph := range []string{supervisor.PhaseClaim, supervisor.PhaseWorkspace, supervisor.PhaseAgent,
		supervisor.PhaseVerify, supervisor.PhasePublish, supervisor.PhaseComplete} {
		if m.phases[ph] != 1 {
			t.Errorf("phase %s heard %d times, want 1 (all: %v)", ph, m.phases[ph], m.phases)
		}
	}
	if m.starts != 1 {
		t.Errorf("container starts heard %d, want 1", m.starts)
	}
	snap := p.sup.Snapshot()
	if snap.Polling || snap.Active != 0 || snap.EventsPending != 0 || snap.HeartbeatAge != 0 || snap.Slots < 1 {
		t.Errorf("snapshot after the run: %+v", snap)
	}
	if snap.Patience < 3*time.Second {
		t.Errorf("patience %s is below three leases of the stand-in's 1s", snap.Patience)
	}
}
