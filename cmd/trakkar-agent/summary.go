package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/logkey"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// results collects how each run of a --once pass ended, for its summary and
// exit status.
type results struct {
	mu   sync.Mutex
	runs []supervisor.RunResult
	log  *zap.Logger
}

// add is the supervisor's OnRunEnd hook; runs end on their own goroutines.
func (rs *results) add(r supervisor.RunResult) {
	rs.log.Info("run ended", zap.String(logkey.TaskKey, r.TaskKey), zap.String(logkey.RunID, r.RunID),
		zap.String(logkey.Outcome, r.Outcome), zap.String("pr_url", r.PRURL), zap.String("reason", r.Reason),
		zap.Duration("duration", r.Duration))
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.runs = append(rs.runs, r)
}

// summarize writes one plain line per run (task key, outcome, PR or reason,
// duration) and returns an error, for exit status 1, when any run did not
// succeed or end without changes.
func (rs *results) summarize(w io.Writer) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	bad := 0
	for _, r := range rs.runs {
		if !r.OK() {
			bad++
		}
	}
	fmt.Fprintf(w, "trakkar-agent: --once worked %d run(s), %d not successful\n", len(rs.runs), bad)
	for _, r := range rs.runs {
		detail := r.PRURL
		if r.Reason != "" {
			detail = oneLine(fmt.Errorf("%s", r.Reason))
		}
		if detail == "" {
			detail = "-"
		}
		fmt.Fprintf(w, "  %s  %s  %s  %s\n", r.TaskKey, r.Outcome, detail, r.Duration.Round(100*time.Millisecond))
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d run(s) did not succeed: %s", bad, len(rs.runs), rs.badKeys())
	}
	return nil
}

func (rs *results) badKeys() string {
	var keys []string
	for _, r := range rs.runs {
		if !r.OK() {
			keys = append(keys, r.TaskKey+" "+r.Outcome)
		}
	}
	return strings.Join(keys, ", ")
}
