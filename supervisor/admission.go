package supervisor

import (
	"context"
	"runtime"
	"sync"
)

// Admission: a runner claims a run only when it can set it up now. Setting
// up (worktree, shares, network, container create and start) is bounded by
// the engine and the disk, not by --max-concurrency: twenty claims at once
// would each wait for all twenty containers to start. Runs past the limit
// stay queued in Trakkar, where this runner takes them as soon as a setup
// ends, or another runner with room takes them first.

// DefaultMaxStarting is the number of runs set up at once when the flag is
// 0: one per CPU, at least 2. On 2 cores a burst of 20 small tasks then
// started each container within 2.4 s of its claim, against 14–18 s with
// all 20 at once on the same busy engine (README, Performance, has the
// figures); the whole burst took up to a fifth longer than with all 20.
func DefaultMaxStarting() int { return max(2, runtime.NumCPU()) }

// MaxStartingLimit bounds --max-starting like --max-concurrency.
const MaxStartingLimit = MaxConcurrencyLimit

func (s *Supervisor) maxStarting() int {
	if s.cfg.MaxStarting > 0 {
		return s.cfg.MaxStarting
	}
	return DefaultMaxStarting()
}

// claimable is how many runs may be claimed now: free slots, bounded by the
// setups that may start.
func (s *Supervisor) claimable(slots int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return min(slots-s.active, s.maxStarting()-s.starting)
}

// beginSetup counts a claimed run as setting up; the returned func ends that
// (when its container started, or the run ended first) and may be called
// more than once.
func (s *Supervisor) beginSetup() func() {
	s.mu.Lock()
	s.starting++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.starting--
			s.mu.Unlock()
			s.signalSlot()
		})
	}
}

// waitClaimable waits until a run may be claimed, or ctx ends (false).
func (s *Supervisor) waitClaimable(ctx context.Context, slots int) bool {
	for s.claimable(slots) <= 0 {
		select {
		case <-s.slotCh:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// signalSlot wakes the poll loop: a slot or a setup place freed.
func (s *Supervisor) signalSlot() {
	select {
	case s.slotCh <- struct{}{}:
	default:
	}
}
