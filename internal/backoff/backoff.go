// Package backoff is the one way this runner waits between retries: capped
// exponential delays with optional jitter, a context-aware sleep, and the
// Retry-After header parser shared by the Trakkar client and the forge.
package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Jitter says how a delay is randomised.
type Jitter int

const (
	// None waits the delay exactly: a fixed, predictable schedule.
	None Jitter = iota
	// Full waits uniformly in [0, d], which spreads the retries of many
	// runners best so a recovering server is not hit in lockstep.
	Full
	// Equal waits uniformly in [d/2, d]: spread, but never much shorter than d.
	Equal
)

// Policy is a capped exponential backoff. The zero value waits nothing.
type Policy struct {
	Base   time.Duration // delay before the first retry
	Max    time.Duration // cap on the delay before jitter, even below Base; <= 0: no cap
	Jitter Jitter
}

// Delay is the wait before retry number attempt (1-based; 0 counts as 1):
// Base doubled attempt-1 times, capped at Max, then jittered.
func (p Policy) Delay(attempt int) time.Duration {
	d := p.exp(attempt)
	switch p.Jitter {
	case Full:
		return uniform(d)
	case Equal:
		return d/2 + uniform(d/2)
	default:
		return d
	}
}

func (p Policy) exp(attempt int) time.Duration {
	if p.Base <= 0 {
		return 0
	}
	limit := p.Max
	if limit <= 0 {
		limit = math.MaxInt64
	}
	d := p.Base
	for i := 1; i < attempt && d < limit; i++ {
		if d > math.MaxInt64/2 {
			return limit // the next doubling would wrap: saturate
		}
		d *= 2
	}
	return min(d, limit)
}

// uniform picks in [0, d].
func uniform(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if d == math.MaxInt64 {
		return time.Duration(rand.Int64())
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// Sleep waits d or until ctx is done, whichever comes first. It returns
// ctx.Err() when ctx ended first (or already had), nil after the full wait.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RetryAfter reads the first Retry-After header of h in either form: delta
// seconds or an HTTP date (a past date means now). ok is false when it is
// missing or invalid. The wait is not capped here — each caller has its own
// limit — but a value beyond what a Duration holds saturates rather than wraps.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64, true
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
