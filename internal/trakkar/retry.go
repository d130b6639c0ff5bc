package trakkar

import (
	"net/http"
	"time"

	"github.com/trakkar/trakkar-agent/internal/backoff"
)

const (
	initialBackoff    = 500 * time.Millisecond
	defaultMaxBackoff = 30 * time.Second
	defaultMaxElapsed = 2 * time.Minute
	maxRetryAfter     = 5 * time.Minute
)

// retryAfter is the server's Retry-After, capped so a hostile or broken server
// cannot park the runner for long.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	d, ok := backoff.RetryAfter(h, now)
	return min(d, maxRetryAfter), ok
}
