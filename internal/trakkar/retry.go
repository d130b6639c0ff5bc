package trakkar

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	initialBackoff    = 500 * time.Millisecond
	defaultMaxBackoff = 30 * time.Second
	defaultMaxElapsed = 2 * time.Minute
	maxRetryAfter     = 5 * time.Minute
)

// expBackoff is base doubled per earlier attempt (attempt 1 → base), capped.
func expBackoff(base, maxD time.Duration, attempt int) time.Duration {
	if base <= 0 {
		return 0
	}
	d := base
	for i := 1; i < attempt && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}

// fullJitter picks uniformly in [0, d]: spreads retries of many runners so a
// recovering server is not hit in lockstep.
func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// parseRetryAfter reads a Retry-After header in either form (delta seconds or
// HTTP date). ok is false when it is missing or invalid. The wait is capped so a
// hostile or broken server cannot park the runner for long.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// sleepCtx waits d or until ctx is done; it reports whether the full wait passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
