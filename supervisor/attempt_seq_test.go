package supervisor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// A run re-queued after another runner lost it continues the run's seqs:
// Trakkar keeps attempt 1's events and drops a seq given again as a
// duplicate, so attempt 2 numbering from 1 would lose its first events.
func TestRequeuedRunContinuesTheRunsSeqs(t *testing.T) {
	parallel(t)
	e := newFakeEnv(t, trakkar.Agent{})
	const key = "SEQ-1"
	e.task(key)
	runID := e.runOf(key).Run.ID

	// Another runner claims attempt 1, reports three events and vanishes.
	ctx, cancel := context.WithTimeout(context.Background(), slowHost*fakeWait)
	defer cancel()
	if _, err := e.api.Claim(ctx, runID, trakkar.Runner{ID: "rnr_elsewhere", Hostname: "elsewhere", Version: "test"}); err != nil {
		t.Fatal(err)
	}
	var first []trakkar.Event
	for i, text := range []string{"attempt one claimed", "attempt one working", "attempt one still working"} {
		first = append(first, trakkar.Event{Seq: int64(i + 1), At: time.Now().UTC(), Type: trakkar.EventStatus, Text: text})
	}
	if acked, err := e.api.PostEvents(ctx, runID, first); err != nil || acked != 3 {
		t.Fatalf("attempt one's events: acked %d, %v", acked, err)
	}
	e.clock.Add(int64(time.Hour))
	e.stand.ExpireLeases()

	rv := e.attempt2Succeeded(e.start(e.config(nil)), key, 0)
	assertSeqContiguous(t, rv.Events)
	texts := eventTexts(rv.Events)
	if !strings.HasPrefix(texts, "status: attempt one claimed\nstatus: attempt one working\nstatus: attempt one still working\n") {
		t.Errorf("attempt one's events are not the run's first three:\n%s", texts)
	}
	if !strings.Contains(texts, "(attempt 2)") {
		t.Errorf("attempt 2's claim status is missing (a reused seq, dropped as a duplicate):\n%s", texts)
	}
}
