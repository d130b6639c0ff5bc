package supervisor

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// leaseState is what the run knows about its lease: when Trakkar last
// confirmed it and for how long a confirmation holds. A confirmation counts
// from when its request was sent, never from when the answer came, so a slow
// answer cannot make the lease look fresher than it is.
type leaseState struct {
	confirmedAt atomic.Int64 // unix ns of the request Trakkar last answered 200; 0: never
	seconds     atomic.Int64 // lease_seconds Trakkar last gave
}

func (l *leaseState) confirm(sent time.Time, leaseSeconds int) {
	if leaseSeconds > 0 {
		l.seconds.Store(int64(leaseSeconds))
	}
	for {
		old := l.confirmedAt.Load()
		if sent.UnixNano() <= old || l.confirmedAt.CompareAndSwap(old, sent.UnixNano()) {
			return
		}
	}
}

// fresh reports whether Trakkar confirmed the lease within the last
// lease_seconds/3: the contract's condition for pushing or opening a PR.
func (l *leaseState) fresh(now time.Time) bool {
	at := l.confirmedAt.Load()
	if at == 0 {
		return false
	}
	return now.Sub(time.Unix(0, at)) < freshWindow(int(l.seconds.Load()))
}

func freshWindow(leaseSeconds int) time.Duration {
	if leaseSeconds <= 0 {
		leaseSeconds = 60
	}
	return time.Duration(leaseSeconds) * time.Second / 3
}

// leaseRetry spaces the confirmations holdFreshLease asks for while Trakkar
// does not answer: soon at first, then at most every lease/3.
func leaseRetry(leaseSeconds int) backoff.Policy {
	return backoff.Policy{Base: 250 * time.Millisecond, Max: freshWindow(leaseSeconds), Jitter: backoff.Equal}
}

// holdFreshLease returns true once the run holds a lease Trakkar confirmed
// within the last lease_seconds/3, heartbeating now if the last confirmation
// is older. A runner cut off from Trakkar may have lost the run to another
// runner already and must not publish over that runner's work, so while
// Trakkar does not answer it waits and asks again, for as long as it takes.
// It returns false when the lease is lost (409/410: the run is no longer
// ours) or the supervisor aborts; then nothing may be published or reported.
func (s *Supervisor) holdFreshLease(ctx context.Context, r *run) bool {
	secs := int(r.lease.seconds.Load())
	retry := backoff.Retry{Policy: leaseRetry(secs),
		Notify: func(attempt int, _ time.Duration, err error) {
			if attempt == 1 {
				r.log.Warn("trakkar has not confirmed the lease recently; holding the push until it does", zap.Error(err))
			}
		}}
	err := retry.Do(ctx, func(ctx context.Context, attempt int) error {
		if r.isLost() {
			// Also when the heartbeats beside this learned it first.
			return backoff.Permanent(errLeaseLost)
		}
		if r.lease.fresh(time.Now()) {
			return nil
		}
		// One try per call: the next one follows the backoff, not the
		// client's own retries, so a healed link is noticed within lease/3.
		callCtx, cancel := context.WithTimeout(ctx, freshWindow(secs))
		sent := time.Now()
		reply, err := s.api.Heartbeat(callCtx, r.claim.Run.ID, r.getState())
		cancel()
		switch {
		case err == nil:
			r.lease.confirm(sent, reply.LeaseSeconds)
			if reply.StopRequested {
				r.requestStop()
			}
			if attempt > 1 {
				r.log.Info("trakkar confirmed the lease; publishing")
			}
			return nil
		case trakkar.IsLeaseLost(err) || trakkar.IsGone(err):
			r.log.Warn("trakkar says the run is no longer ours", zap.Error(err))
			r.markLost()
			return backoff.Permanent(err)
		case ctx.Err() != nil:
			return backoff.Permanent(ctx.Err())
		}
		return err
	})
	if r.isLost() {
		r.log.Warn("lease lost before publishing: publishing nothing, keeping the workspace")
		return false
	}
	return err == nil
}

// errLeaseLost: the run is no longer this runner's.
var errLeaseLost = errors.New("lease lost")
