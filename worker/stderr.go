package worker

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// What of the CLI's stderr reaches the container's log. A flood there would
// make the engine rotate the log faster than the supervisor reads it, and the
// event lines written meanwhile would be lost with it; the worker forwards a
// burst and then a steady trickle, and says how much it dropped.
const (
	stderrRate  = 64 << 10 // bytes a second
	stderrBurst = 1 << 20  // bytes
)

// stderrLimit passes writes to w while its byte budget (a token bucket of
// burst bytes refilled at rate a second) lasts, drops whole writes beyond it,
// and reports each run of dropped bytes on a line of its own once writes pass
// again or on Flush.
type stderrLimit struct {
	mu      sync.Mutex
	w       io.Writer
	rate    float64
	burst   float64
	tokens  float64
	last    time.Time
	now     func() time.Time
	dropped int64
	midLine bool // the last forwarded byte did not end a line
}

func newStderrLimit(w io.Writer, rate, burst int, now func() time.Time) *stderrLimit {
	return &stderrLimit{w: w, rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

func (l *stderrLimit) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if float64(len(p)) > l.tokens {
		l.dropped += int64(len(p))
		return len(p), nil
	}
	l.tokens -= float64(len(p))
	l.reportLocked()
	l.forward(p)
	return len(p), nil
}

// Flush reports bytes dropped since the last report.
func (l *stderrLimit) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reportLocked()
}

func (l *stderrLimit) reportLocked() {
	if l.dropped == 0 {
		return
	}
	msg := fmt.Sprintf("trakkar-worker: dropped %d bytes of the agent's stderr (over %d KiB/s)\n", l.dropped, int(l.rate)>>10)
	if l.midLine {
		msg = "\n" + msg
	}
	l.dropped = 0
	l.forward([]byte(msg))
}

func (l *stderrLimit) forward(p []byte) {
	if len(p) == 0 || l.w == nil {
		return
	}
	_, _ = l.w.Write(p) // a failing log sink must not kill the CLI with EPIPE
	l.midLine = p[len(p)-1] != '\n'
}
