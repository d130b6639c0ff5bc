package trakkar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

const runID = "run_ship"

func runShipper(t *testing.T, s *Shipper) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // bounds a failure only
			t.Fatal("Run did not return after cancel")
		}
	}
}

func flush(t *testing.T, s *Shipper) {
	t.Helper()
	// The bound only decides how long a failing test takes; 300 events of
	// 12 KB under -race on a host running two suites take over 10 s.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestShipperBatchesWithinInterval(t *testing.T) {
	f := newFakeEvents(t)
	fixed := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	s := NewShipper(f.client(t), runID, ShipperOptions{Interval: 150 * time.Millisecond, Now: func() time.Time { return fixed }})
	const n = 50
	for i := 1; i <= n; i++ {
		s.Add(Event{Type: EventMessage, Text: fmt.Sprintf("ev-%d", i)})
	}
	stop := runShipper(t, s)
	defer stop()
	waitFor(t, 5*time.Second, "all events acked", func() bool { return s.Acked() == n })

	stored, batches, requests, _, _ := f.snapshot(runID)
	if requests != 1 || len(batches) != 1 || len(batches[0]) != n {
		t.Fatalf("requests = %d, batches = %v; want one batch of %d", requests, batches, n)
	}
	assertContiguous(t, stored, 1)
	for i, ev := range stored {
		if want := fmt.Sprintf("ev-%d", i+1); ev.Text != want || ev.Type != EventMessage || !ev.At.Equal(fixed) {
			t.Errorf("stored[%d] = %+v, want text %q at %v", i, ev, want, fixed)
		}
	}
}

// A running shipper sends each event on its own, one at a time, with no Flush
// and no more events behind it. How soon is BenchmarkShipperLatency's figure.
func TestShipperSendsEachEventOnItsOwn(t *testing.T) {
	f := newFakeEvents(t)
	s := NewShipper(f.client(t), runID, ShipperOptions{Interval: 50 * time.Millisecond})
	stop := runShipper(t, s)
	defer stop()
	for i := range 3 {
		s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
		waitFor(t, 5*time.Second, "event delivered", func() bool { return s.Acked() == int64(i+1) })
	}
	if _, batches, _, _, _ := f.snapshot(runID); len(batches) != 3 {
		t.Fatalf("batches %v, want one per event", batches)
	}
}

// BenchmarkShipperLatency: time from Add to Trakkar's ack for one event at a
// time, with a 50 ms Interval (the default is 1 s). The promise is about one
// Interval.
func BenchmarkShipperLatency(b *testing.B) {
	f := newFakeEvents(b)
	s := NewShipper(f.client(b), runID, ShipperOptions{Interval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var n int64
	for b.Loop() {
		n++
		s.Add(Event{Type: EventLog, Text: "x"})
		for s.Acked() < n {
			time.Sleep(time.Millisecond)
		}
	}
}

func TestShipperRespectsRequestLimits(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		text  string
		check func(t *testing.T, batches [][]int64)
	}{
		{"count", 1201, "small", func(t *testing.T, batches [][]int64) {
			if len(batches) != 3 || len(batches[0]) != MaxEventsPerRequest {
				t.Errorf("batch sizes = %v", lens(batches))
			}
		}},
		// 3-byte runes: each event is about 12 KB of JSON, so ~85 fit 1 MiB.
		{"bytes", 300, strings.Repeat("€", MaxEventText), func(t *testing.T, batches [][]int64) {
			if len(batches) < 4 {
				t.Errorf("batch sizes = %v; want splits by size", lens(batches))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEvents(t)
			s := NewShipper(f.client(t), runID, ShipperOptions{Interval: time.Hour})
			for range tt.n {
				s.Add(Event{Type: EventLog, Text: tt.text})
			}
			flush(t, s)
			stored, batches, _, _, _ := f.snapshot(runID)
			if len(stored) != tt.n {
				t.Fatalf("stored %d, want %d", len(stored), tt.n)
			}
			assertContiguous(t, stored, 1)
			tt.check(t, batches)
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.violations) > 0 {
				t.Errorf("limit violations: %v", f.violations)
			}
		})
	}
}

func lens(b [][]int64) []int {
	out := make([]int, len(b))
	for i := range b {
		out[i] = len(b[i])
	}
	return out
}

func TestShipperSurvivesOutage(t *testing.T) {
	f := newFakeEvents(t)
	var down atomic.Bool
	f.decide = func(req int) verdict {
		if !down.Load() {
			return accept
		}
		if req%3 == 0 {
			return storeThenFail // the answer is lost, the events are stored
		}
		return fail503
	}
	checker := &ackChecker{p: f.client(t)}
	s := NewShipper(checker, runID, ShipperOptions{Interval: 10 * time.Millisecond})
	stop := runShipper(t, s)

	const n = 300
	for i := 1; i <= n; i++ {
		switch i {
		case 50:
			down.Store(true)
		case 200:
			down.Store(false)
		}
		s.Add(Event{Type: EventLog, Text: fmt.Sprintf("line %d", i)})
		time.Sleep(time.Millisecond)
	}
	stop()
	flush(t, s) // after Run returned

	stored, _, _, failures, received := f.snapshot(runID)
	if failures == 0 {
		t.Fatal("the outage never hit a request; the test proves nothing")
	}
	if len(stored) != n {
		t.Fatalf("stored %d events, want %d", len(stored), n)
	}
	assertContiguous(t, stored, 1)
	for i, ev := range stored {
		if want := fmt.Sprintf("line %d", i+1); ev.Text != want {
			t.Fatalf("stored[%d].Text = %q, want %q", i, ev.Text, want)
		}
	}
	if r := checker.resent(); r != 0 {
		t.Errorf("%d events were resent after their ack reached the shipper", r)
	}
	t.Logf("%d requests failed; %d resent events were deduped by the server", failures, received)
	if s.Acked() != n || s.Dropped() != 0 {
		t.Errorf("Acked = %d, Dropped = %d", s.Acked(), s.Dropped())
	}
}

func TestShipperResendsWhenAckIsLower(t *testing.T) {
	f := newFakeEvents(t)
	f.storeLimit = 7 // the server keeps only part of each batch
	checker := &ackChecker{p: f.client(t)}
	s := NewShipper(checker, runID, ShipperOptions{Interval: time.Hour})
	const n = 40
	for i := 1; i <= n; i++ {
		s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
	}
	flush(t, s)
	stored, batches, _, _, _ := f.snapshot(runID)
	if len(stored) != n {
		t.Fatalf("stored %d, want %d", len(stored), n)
	}
	assertContiguous(t, stored, 1)
	if len(batches) != 6 {
		t.Errorf("requests = %d, want 6 (7 stored per request)", len(batches))
	}
	for i, b := range batches {
		if want := int64(i*7 + 1); b[0] != want {
			t.Errorf("batch %d starts at %d, want %d (acked+1)", i, b[0], want)
		}
	}
	if r := checker.resent(); r != 0 {
		t.Errorf("%d events resent after their ack", r)
	}
}

// stuckPoster acks at most upTo, whatever it is sent.
type stuckPoster struct {
	upTo  int64
	calls atomic.Int32
}

func (p *stuckPoster) PostEvents(_ context.Context, _ string, evs []Event) (int64, error) {
	p.calls.Add(1)
	return min(p.upTo, evs[len(evs)-1].Seq+100), nil // also claims more than sent
}

func TestShipperDistrustsAcks(t *testing.T) {
	p := &stuckPoster{upTo: 3}
	s := NewShipper(p, runID, ShipperOptions{Interval: 10 * time.Millisecond})
	for range 5 {
		s.Add(Event{Type: EventLog, Text: "x"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.Flush(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush = %v, want a deadline error", err)
	}
	if s.Acked() != 3 {
		t.Errorf("Acked = %d, want 3", s.Acked())
	}
	// No progress must back off, not spin.
	if c := p.calls.Load(); c > 40 {
		t.Errorf("%d requests in 300ms without progress", c)
	}

	// An ack beyond what was sent must not drop unsent events.
	p2 := &stuckPoster{upTo: 1000}
	s2 := NewShipper(p2, runID, ShipperOptions{Interval: time.Hour})
	s2.Add(Event{Type: EventLog, Text: "a"})
	flush(t, s2)
	if s2.Acked() != 1 {
		t.Errorf("Acked = %d after a bogus ack, want 1", s2.Acked())
	}
}

func TestTruncateText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"short", "hello", "hello"},
		{"empty", "", ""},
		{"exact", strings.Repeat("a", MaxEventText), strings.Repeat("a", MaxEventText)},
		{"one over", strings.Repeat("a", MaxEventText+1), strings.Repeat("a", MaxEventText-1) + "…"},
		{"multibyte", strings.Repeat("é", 5000), strings.Repeat("é", MaxEventText-1) + "…"},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncateText(tt.in)
			if got != tt.want {
				t.Errorf("truncateText = %q (%d runes), want %d runes", got[:min(len(got), 20)], utf8.RuneCountInString(got), utf8.RuneCountInString(tt.want))
			}
			if !utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxEventText {
				t.Errorf("result invalid or too long")
			}
		})
	}
}

func TestShipperTruncatesAndCopiesData(t *testing.T) {
	f := newFakeEvents(t)
	s := NewShipper(f.client(t), runID, ShipperOptions{Interval: time.Hour})
	data := map[string]any{"name": "Edit", "n": 12345678901234}
	s.Add(Event{Type: EventTool, Text: strings.Repeat("ü", 4100) + "\xff", Data: data})
	data["name"] = "mutated after Add"
	s.Add(Event{Type: EventTool, Text: "bad data", Data: map[string]any{"ch": make(chan int)}})
	s.Add(Event{Text: "no type"})
	flush(t, s)

	stored, _, _, _, _ := f.snapshot(runID)
	if len(stored) != 3 {
		t.Fatalf("stored %d, want 3", len(stored))
	}
	if txt := stored[0].Text; utf8.RuneCountInString(txt) != MaxEventText || !strings.HasSuffix(txt, "…") || !utf8.ValidString(txt) {
		t.Errorf("text not truncated: %d runes", utf8.RuneCountInString(txt))
	}
	if stored[0].Data["name"] != "Edit" || stored[0].Data["n"] != float64(12345678901234) {
		t.Errorf("data = %v", stored[0].Data)
	}
	if stored[1].Text != "bad data" || stored[1].Data != nil {
		t.Errorf("unencodable data event = %+v", stored[1])
	}
	if stored[2].Type != EventLog {
		t.Errorf("empty type became %q", stored[2].Type)
	}
}

func TestShipperBufferFullDropsAndReports(t *testing.T) {
	f := newFakeEvents(t)
	var down atomic.Bool
	down.Store(true)
	f.decide = func(int) verdict {
		if down.Load() {
			return fail503
		}
		return accept
	}
	s := NewShipper(f.client(t), runID, ShipperOptions{Interval: 5 * time.Millisecond, MaxBuffer: 5})
	stop := runShipper(t, s)
	defer stop()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 8; i++ {
			s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second): // bounds a failure only
		t.Fatal("Add blocked on a full buffer")
	}
	if s.Dropped() != 3 {
		t.Fatalf("Dropped = %d, want 3", s.Dropped())
	}
	waitFor(t, 5*time.Second, "a failed send", func() bool { _, _, _, fl, _ := f.snapshot(runID); return fl > 0 })
	down.Store(false)
	flush(t, s)
	// The notice goes out once there is room, without waiting for another Add.
	if stored, _, _, _, _ := f.snapshot(runID); len(stored) != 6 {
		t.Fatalf("stored %d events after the outage, want 5 and the drop notice", len(stored))
	}
	s.Add(Event{Type: EventLog, Text: "after"})
	flush(t, s)

	stored, _, _, _, _ := f.snapshot(runID)
	assertContiguous(t, stored, 1)
	var texts []string
	for _, ev := range stored {
		texts = append(texts, ev.Text)
	}
	want := []string{"1", "2", "3", "4", "5", "3 events were dropped while Trakkar was unreachable", "after"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Fatalf("stored texts = %q, want %q", texts, want)
	}
	if stored[5].Type != EventError {
		t.Errorf("notice type = %q", stored[5].Type)
	}
	if s.Dropped() != 3 {
		t.Errorf("Dropped = %d, want 3", s.Dropped())
	}
}

// A run Trakkar calls gone (410) or another runner's (409 lease_lost) gets
// no resend and no further event; only the lease loss is told, to stop the run.
func TestShipperStopsWhenGoneOrLost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer verdict
		is     func(error) bool
		told   int64 // OnLeaseLost calls
	}{
		{"gone", gone410, IsGone, 0},
		{"lease lost", leaseLost409, IsLeaseLost, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeEvents(t)
			f.decide = func(int) verdict { return tc.answer }
			var told atomic.Int64
			s := NewShipper(f.client(t), runID, ShipperOptions{Interval: 5 * time.Millisecond, OnLeaseLost: func() { told.Add(1) }})
			s.Add(Event{Type: EventLog, Text: "a"})
			s.Add(Event{Type: EventLog, Text: "b"})
			// A Flush that resent would run into this bound.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := s.Flush(ctx)
			if !tc.is(err) || !s.Gone() {
				t.Fatalf("Flush = %v, Gone = %v; want a %s error", err, s.Gone(), tc.name)
			}
			_, _, before, _, _ := f.snapshot(runID)
			if before != 1 {
				t.Errorf("requests = %d, want 1 (not retried)", before)
			}

			stop := runShipper(t, s)
			for range 10 {
				s.Add(Event{Type: EventLog, Text: "more"})
			}
			time.Sleep(60 * time.Millisecond) // a dozen ticks
			stop()
			if err := s.Flush(ctx); !tc.is(err) {
				t.Errorf("second Flush = %v", err)
			}
			_, _, after, _, _ := f.snapshot(runID)
			if after != before {
				t.Errorf("requests after the answer = %d, want %d", after, before)
			}
			if s.Dropped() != 0 {
				t.Errorf("Dropped = %d; events after the answer are dropped silently", s.Dropped())
			}
			if n := told.Load(); n != tc.told {
				t.Errorf("OnLeaseLost called %d times, want %d", n, tc.told)
			}
		})
	}
}

func TestShipperConcurrentAdds(t *testing.T) {
	f := newFakeEvents(t)
	f.delay = 2 * time.Millisecond
	checker := &ackChecker{p: f.client(t)}
	s := NewShipper(checker, runID, ShipperOptions{Interval: 3 * time.Millisecond})
	stop := runShipper(t, s)

	const goroutines, per = 8, 250
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				s.Add(Event{Type: EventLog, Text: fmt.Sprintf("%d/%d", g, i)})
				if i%50 == 0 {
					// Flushes race with Run's ticks: still one request at a time.
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					if err := s.Flush(ctx); err != nil {
						t.Errorf("Flush: %v", err)
					}
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	flush(t, s)
	stop()

	stored, _, _, _, _ := f.snapshot(runID)
	if len(stored) != goroutines*per {
		t.Fatalf("stored %d, want %d", len(stored), goroutines*per)
	}
	assertContiguous(t, stored, 1)
	next := make([]int, goroutines)
	for _, ev := range stored {
		var g, i int
		if _, err := fmt.Sscanf(ev.Text, "%d/%d", &g, &i); err != nil {
			t.Fatalf("bad text %q", ev.Text)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: got event %d, want %d (lost, duplicated or reordered)", g, i, next[g])
		}
		next[g]++
	}
	if m := f.maxInflight.Load(); m != 1 {
		t.Errorf("max requests in flight = %d, want 1", m)
	}
	if r := checker.resent(); r != 0 {
		t.Errorf("%d events resent after their ack", r)
	}
}

func TestShipperStartSeq(t *testing.T) {
	f := newFakeEvents(t)
	f.mu.Lock()
	for i := int64(1); i <= 10; i++ {
		f.stored[runID] = append(f.stored[runID], Event{Seq: i, Type: EventLog, Text: "earlier"})
	}
	f.mu.Unlock()
	s := NewShipper(f.client(t), runID, ShipperOptions{Interval: time.Hour, StartSeq: 10})
	if s.Acked() != 10 {
		t.Errorf("Acked = %d before sending, want 10", s.Acked())
	}
	s.Add(Event{Type: EventLog, Text: "resumed"})
	flush(t, s)
	stored, _, _, _, _ := f.snapshot(runID)
	if len(stored) != 11 || stored[10].Text != "resumed" || stored[10].Seq != 11 {
		t.Fatalf("stored = %+v", stored[len(stored)-1])
	}
}

func TestShipperFlushHonoursContext(t *testing.T) {
	f := newFakeEvents(t)
	f.decide = func(int) verdict { return fail503 }
	s := NewShipper(f.client(t), runID, ShipperOptions{Interval: 10 * time.Millisecond})
	s.Add(Event{Type: EventLog, Text: "x"})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Flush(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || IsGone(err) {
		t.Fatalf("Flush = %v", err)
	}
	// Trakkar fails for good, so a Flush that ignored its context would not return.
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("Flush returned %v after its deadline", el)
	}
	if s.Acked() != 0 {
		t.Errorf("Acked = %d", s.Acked())
	}
}
