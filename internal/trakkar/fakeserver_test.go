package trakkar

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// verdict tells the fake events endpoint how to treat one request.
type verdict int

const (
	accept        verdict = iota
	fail503               // store nothing, answer 503
	storeThenFail         // store, then answer 503: the client never sees the ack
	gone410
	leaseLost409 // the run is held by another runner
)

// fakeEvents is a tiny stand-in for Trakkar's events endpoint. Like the real
// contract it stores each (run, seq) once and acks the highest contiguous seq.
type fakeEvents struct {
	t   testing.TB
	srv *httptest.Server

	decide     func(req int) verdict // nil → accept
	storeLimit int                   // store at most this many new events per request (0 = all)
	delay      time.Duration         // handler latency, widens concurrency windows

	inflight, maxInflight atomic.Int32

	mu          sync.Mutex
	requests    int
	failures    int
	stored      map[string][]Event // per run; index = seq-1
	dupReceived int                // events received again (resends of unacked events are fine)
	batches     [][]int64
	violations  []string
}

func newFakeEvents(t testing.TB) *fakeEvents {
	f := &fakeEvents{t: t, stored: map[string][]Event{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEvents) handle(w http.ResponseWriter, r *http.Request) {
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxInflight.Load()
		if n <= m || f.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/agent/runs/")
	runID, ok2 := strings.CutSuffix(rest, "/events")
	if !ok || !ok2 || r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+testToken {
		writeAPIError(w, 404, "not_found", "unexpected request")
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body struct {
		Events []Event `json:"events"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		writeAPIError(w, 400, "bad_request", err.Error())
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if len(raw) > MaxEventsBytes {
		f.violations = append(f.violations, "body too large")
	}
	if len(body.Events) > MaxEventsPerRequest {
		f.violations = append(f.violations, "too many events")
	}
	v := accept
	if f.decide != nil {
		v = f.decide(f.requests)
	}
	switch v {
	case fail503:
		f.failures++
		writeAPIError(w, 503, "unavailable", "down")
		return
	case gone410:
		writeAPIError(w, 410, "gone", "run cancelled")
		return
	case leaseLost409:
		writeAPIError(w, 409, "lease_lost", "run held by another runner")
		return
	}
	seqs := make([]int64, 0, len(body.Events))
	added := 0
	for _, ev := range body.Events {
		seqs = append(seqs, ev.Seq)
		have := int64(len(f.stored[runID]))
		switch {
		case ev.Seq <= have:
			f.dupReceived++ // deduped: storage keeps the first copy
		case ev.Seq == have+1 && (f.storeLimit == 0 || added < f.storeLimit):
			f.stored[runID] = append(f.stored[runID], ev)
			added++
		}
	}
	f.batches = append(f.batches, seqs)
	acked := int64(len(f.stored[runID]))
	if v == storeThenFail {
		f.failures++
		writeAPIError(w, 503, "unavailable", "lost the answer")
		return
	}
	writeJSON(w, 200, map[string]any{"acked_seq": acked})
}

func (f *fakeEvents) snapshot(runID string) (stored []Event, batches [][]int64, requests, failures, dups int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.stored[runID]...), append([][]int64(nil), f.batches...), f.requests, f.failures, f.dupReceived
}

// ackChecker sits between the shipper and its poster and counts events sent
// again after an ack covering them was returned to the shipper: the shipper
// must only resend what is unacknowledged.
type ackChecker struct {
	p EventPoster

	mu             sync.Mutex
	acked          int64
	resentAfterAck int
}

func (a *ackChecker) PostEvents(ctx context.Context, runID string, evs []Event) (int64, error) {
	a.mu.Lock()
	for _, ev := range evs {
		if ev.Seq <= a.acked {
			a.resentAfterAck++
		}
	}
	a.mu.Unlock()
	acked, err := a.p.PostEvents(ctx, runID, evs)
	if err == nil {
		a.mu.Lock()
		a.acked = max(a.acked, acked)
		a.mu.Unlock()
	}
	return acked, err
}

func (a *ackChecker) resent() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.resentAfterAck
}

// client returns a Client for the fake with fast retries that give up soon,
// so the shipper's own retry path is exercised.
func (f *fakeEvents) client(t testing.TB) *Client {
	return newTestClient(t, f.srv.URL, func(o *Options) {
		o.MaxBackoff = 5 * time.Millisecond
		o.MaxElapsed = 30 * time.Millisecond
	})
}

// assertContiguous checks that storage holds seq first..first+len-1 in order.
func assertContiguous(t *testing.T, stored []Event, first int64) {
	t.Helper()
	for i, ev := range stored {
		if want := first + int64(i); ev.Seq != want {
			t.Fatalf("stored[%d].Seq = %d, want %d", i, ev.Seq, want)
		}
	}
}

// waitFor polls cond until it holds or four times the timeout passes: the bound
// only decides how long a failing test takes, and CI hosts are loaded.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(4 * timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
