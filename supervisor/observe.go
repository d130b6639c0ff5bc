package supervisor

import (
	"time"
)

// Metrics hears what the runs do, for --metrics-addr; internal/metrics
// implements it. Deps.Metrics nil measures nothing.
type Metrics interface {
	RunEnded(outcome string)
	// PhaseDone: a run spent d in one stage of its pipeline (Phase*).
	PhaseDone(phase string, d time.Duration)
	// ContainerStarted: an agent container took d from create to running.
	ContainerStarted(d time.Duration)
	// EventsResent: n events were put in a request to Trakkar again.
	EventsResent(n int)
}

// The pipeline stages timed for PhaseDone, as pipeline.go names them.
const (
	PhaseClaim     = "claim"     // the claim request
	PhaseWorkspace = "workspace" // worktree and host folders ready
	PhaseAgent     = "agent"     // the agent's container, created to removed
	PhaseVerify    = "verify"    // the verify command with its fix rounds
	PhasePublish   = "publish"   // commit, push, pull request
	PhaseComplete  = "complete"  // the events delivered, then the completion
)

type nopMetrics struct{}

func (nopMetrics) RunEnded(string)                 {}
func (nopMetrics) PhaseDone(string, time.Duration) {}
func (nopMetrics) ContainerStarted(time.Duration)  {}
func (nopMetrics) EventsResent(int)                {}

// timed reports the time since start as phase.
func (s *Supervisor) timed(phase string, start time.Time) {
	s.metrics.PhaseDone(phase, time.Since(start))
}

// Snapshot is the supervisor's state now, for metrics and the health check.
type Snapshot struct {
	Polling       bool      // the poll loop is running
	LastPoll      time.Time // when it last went round
	Slots, Active int
	EventsPending int // events of working runs not yet acknowledged
	EventsSpooled int // of those, the ones waiting on disk
	// HeartbeatAge is the longest any working run has gone without an
	// acknowledged heartbeat (since its claim before the first); 0 with no run.
	HeartbeatAge time.Duration
	// Patience is how long the poll loop and Trakkar may stay silent before
	// the runner counts as unhealthy: three leases, and never less than three
	// long polls with their pause.
	Patience time.Duration
}

// defaultLease is assumed until a claim says how long leases are.
const defaultLease = 60 * time.Second

// Snapshot reads the supervisor's state; safe to call at any time from any
// goroutine.
func (s *Supervisor) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	snap := Snapshot{Polling: s.polling, LastPoll: s.lastPoll, Slots: s.slots, Active: s.active}
	for r := range s.live {
		snap.EventsPending += r.ship.Pending()
		snap.EventsSpooled += r.ship.Spooled()
		snap.HeartbeatAge = max(snap.HeartbeatAge, now.Sub(time.Unix(0, r.lastBeat.Load())))
	}
	lease := s.lease
	if lease <= 0 {
		lease = defaultLease
	}
	snap.Patience = max(3*lease, 3*(s.cfg.PollWait+s.cfg.Interval)+10*time.Second)
	return snap
}

// pollRound notes that the poll loop went round.
func (s *Supervisor) pollRound() {
	s.mu.Lock()
	s.lastPoll = time.Now()
	s.mu.Unlock()
}

func (s *Supervisor) setPolling(on bool) {
	s.mu.Lock()
	s.polling = on
	s.lastPoll = time.Now()
	s.mu.Unlock()
}

// noteLease keeps the lease length Trakkar last gave.
func (s *Supervisor) noteLease(seconds int) {
	if seconds <= 0 {
		return
	}
	s.mu.Lock()
	s.lease = time.Duration(seconds) * time.Second
	s.mu.Unlock()
}

// track adds r to the runs the snapshot reads; the returned func drops it.
func (s *Supervisor) observeRun(r *run) func() {
	r.lastBeat.Store(time.Now().UnixNano())
	s.mu.Lock()
	s.live[r] = struct{}{}
	s.mu.Unlock()
	s.noteLease(r.claim.LeaseSeconds)
	return func() {
		s.mu.Lock()
		delete(s.live, r)
		s.mu.Unlock()
	}
}
