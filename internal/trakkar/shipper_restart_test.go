package trakkar

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// seqServer stores each seq once, wherever it falls (like Trakkar: a later seq
// may be held while an earlier one is missing), and acks the highest
// contiguous one. It counts every seq sent again with other content.
type seqServer struct {
	mu        sync.Mutex
	bySeq     map[int64]Event
	failEmpty int // answer 503 to this many empty batches
	failAll   int // answer 503 to this many requests of any kind
	// refuseEmpty answers 400 to empty batches, as a Trakkar older than the
	// contract's empty-batch read would.
	refuseEmpty bool
	probes      int // empty batches received
	differs     []int64
	onPost      func(evs []Event) // called before storing, outside nothing
}

func newSeqServer(held ...int64) *seqServer {
	s := &seqServer{bySeq: map[int64]Event{}}
	for _, q := range held {
		s.bySeq[q] = Event{Seq: q, Type: EventLog, Text: fmt.Sprintf("earlier %d", q)}
	}
	return s
}

func (s *seqServer) PostEvents(_ context.Context, _ string, evs []Event) (int64, error) {
	if s.onPost != nil {
		s.onPost(evs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAll > 0 {
		s.failAll--
		return 0, &APIError{Status: 503, Code: "unavailable", Message: "down"}
	}
	if len(evs) == 0 {
		s.probes++
		if s.refuseEmpty {
			return 0, &APIError{Status: 400, Code: "bad_request", Message: "no events"}
		}
		if s.failEmpty > 0 {
			s.failEmpty--
			return 0, &APIError{Status: 500, Code: "internal", Message: "cannot read"}
		}
	}
	for _, ev := range evs {
		if old, ok := s.bySeq[ev.Seq]; ok {
			if old.Text != ev.Text || old.Type != ev.Type {
				s.differs = append(s.differs, ev.Seq)
			}
			continue
		}
		s.bySeq[ev.Seq] = ev
	}
	return s.ackedLocked(), nil
}

func (s *seqServer) ackedLocked() int64 {
	var n int64
	for {
		if _, ok := s.bySeq[n+1]; !ok {
			return n
		}
		n++
	}
}

// texts returns the stored texts in seq order up to the acked seq.
func (s *seqServer) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.ackedLocked()
	out := make([]string, 0, n)
	for q := int64(1); q <= n; q++ {
		out = append(out, s.bySeq[q].Text)
	}
	return out
}

// A restarted shipper never gives a seq that Trakkar may hold to other
// content: whether or not it could read acked_seq, it continues after the
// highest seq the earlier process recorded as sent, and fills the seqs
// Trakkar lacks below it with a notice, one at a time, so that no seq the
// server already holds is sent with other content.
func TestShipperRestartNeverReusesASeq(t *testing.T) {
	tests := []struct {
		name       string
		held       []int64 // seqs Trakkar stored from the earlier process
		start      int64   // acked_seq read at restart
		unknown    bool    // the read failed
		sent       int64   // the earlier process's durable record
		failEmpty  int
		refuse     bool
		wantFilled []int64 // seqs that get a notice
		wantFirst  int64   // seq of the first new event
	}{
		{name: "read ok, all acked", held: seqs(1, 10), start: 10, sent: 10, wantFirst: 11},
		{name: "read failed, all stored", held: seqs(1, 10), unknown: true, sent: 10, wantFirst: 11},
		{name: "read failed, tail lost", held: seqs(1, 7), unknown: true, sent: 10, wantFilled: []int64{8, 9, 10}, wantFirst: 11},
		{name: "read failed, hole below a held seq", held: append(seqs(1, 7), 9), unknown: true, sent: 10,
			wantFilled: []int64{8, 10}, wantFirst: 11},
		{name: "read ok, record ahead", held: seqs(1, 7), start: 7, sent: 10, wantFilled: []int64{8, 9, 10}, wantFirst: 11},
		{name: "read failed, no record", unknown: true, wantFirst: 1},
		{name: "read keeps failing for a while", held: seqs(1, 10), unknown: true, sent: 10, failEmpty: 3, wantFirst: 11},
		// Without the read, the record is the best knowledge there is.
		{name: "read refused for good", held: seqs(1, 10), unknown: true, sent: 10, refuse: true, wantFirst: 11},
		{name: "read refused, tail lost", held: seqs(1, 7), unknown: true, sent: 10, refuse: true,
			wantFilled: []int64{8, 9, 10}, wantFirst: 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSeqServer(tt.held...)
			srv.failEmpty, srv.refuseEmpty = tt.failEmpty, tt.refuse
			s := NewShipper(srv, runID, ShipperOptions{
				Interval: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
				StartSeq: tt.start, AckUnknown: tt.unknown, SentSeq: tt.sent,
			})
			first := s.Add(Event{Type: EventStatus, Text: "Runner restarted"})
			s.Add(Event{Type: EventMessage, Text: "after"})
			if first != tt.wantFirst {
				t.Errorf("first new event got seq %d, want %d", first, tt.wantFirst)
			}
			flush(t, s)
			if len(srv.differs) > 0 {
				t.Fatalf("seqs sent again with other content: %v", srv.differs)
			}
			texts := srv.texts()
			if got, want := int64(len(texts)), tt.wantFirst+1; got != want {
				t.Fatalf("Trakkar acked %d events, want %d: %q", got, want, texts)
			}
			if texts[first-1] != "Runner restarted" || texts[first] != "after" {
				t.Errorf("new events at %d: %q", first, texts[first-1:])
			}
			var filled []int64
			for i, txt := range texts {
				if txt == fmt.Sprintf("Event %d was lost when the runner restarted", i+1) {
					filled = append(filled, int64(i+1))
				}
			}
			if fmt.Sprint(filled) != fmt.Sprint(tt.wantFilled) {
				t.Errorf("filled %v, want %v", filled, tt.wantFilled)
			}
			if s.Acked() != tt.wantFirst+1 {
				t.Errorf("Acked = %d", s.Acked())
			}
		})
	}
}

func seqs(from, to int64) []int64 {
	var out []int64
	for q := from; q <= to; q++ {
		out = append(out, q)
	}
	return out
}

// With the ack unknown and nothing to send, Flush still reads acked_seq, so
// a completion never goes out before the gap left by the earlier process is
// filled.
func TestShipperFlushConfirmsAnUnknownAck(t *testing.T) {
	srv := newSeqServer(seqs(1, 4)...)
	srv.failEmpty = 2
	s := NewShipper(srv, runID, ShipperOptions{Interval: time.Hour, MaxBackoff: 10 * time.Millisecond, AckUnknown: true, SentSeq: 6})
	flush(t, s)
	if got := srv.texts(); len(got) != 6 {
		t.Fatalf("Trakkar holds %d contiguous events, want 6 (two notices): %q", len(got), got)
	}
	if srv.probes != 3 {
		t.Errorf("%d reads, want 3 (two failed)", srv.probes)
	}
}

// The shipper records the highest seq it is about to send before sending it,
// so a restarted process, or the run's next attempt, knows what Trakkar may
// hold even when it cannot ask.
func TestShipperRecordsSentSeqBeforeSending(t *testing.T) {
	dir := t.TempDir()
	srv := newSeqServer()
	var bad []string
	srv.onPost = func(evs []Event) {
		if len(evs) == 0 {
			return
		}
		got, err := ReadSentSeq(dir, runID)
		if last := evs[len(evs)-1].Seq; err != nil || got < last {
			bad = append(bad, fmt.Sprintf("record %d (%v) while sending up to %d", got, err, last))
		}
	}
	s := NewShipper(srv, runID, ShipperOptions{Interval: time.Hour, SpoolDir: dir, Attempt: 2})
	for i := range 3 {
		s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
		flush(t, s)
	}
	if len(bad) > 0 {
		t.Fatal(bad)
	}
	if got, err := ReadSentSeq(dir, runID); err != nil || got != 3 {
		t.Errorf("ReadSentSeq = %d, %v; want 3", got, err)
	}
	// Delivered and closed: the record goes with the spool.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadSentSeq(dir, runID); err != nil || got != 0 {
		t.Errorf("after Close: %d, %v", got, err)
	}
}

func TestReadSentSeqRefusesGarbage(t *testing.T) {
	dir := t.TempDir()
	path, err := SentPath(dir, runID)
	if err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"x", "1", "1 -4", "1 2 3", ""} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadSentSeq(dir, runID); err == nil {
			t.Errorf("%q read as %d", content, got)
		}
	}
}

// The backoff cap is an option; its default stays 30s.
func TestShipperBackoffCap(t *testing.T) {
	tests := []struct {
		interval, maxBackoff, want time.Duration
	}{
		{time.Second, 0, 30 * time.Second},
		{10 * time.Millisecond, 0, 300 * time.Millisecond}, // 30 intervals
		{10 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond},
		{time.Second, 2 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		s := NewShipper(newSeqServer(), runID, ShipperOptions{Interval: tt.interval, MaxBackoff: tt.maxBackoff})
		var most time.Duration
		for range 50 {
			most = max(most, s.backoff(40))
		}
		if most > tt.want || most < tt.want/2 {
			t.Errorf("interval %s cap %s: backoff up to %s, want in [%s, %s]", tt.interval, tt.maxBackoff, most, tt.want/2, tt.want)
		}
	}
}

// Flush has no limit of its own: it waits out an outage however long it
// lasts, and only its context ends it early.
func TestShipperFlushOutlastsAnOutage(t *testing.T) {
	srv := newSeqServer()
	srv.failAll = 200
	s := NewShipper(srv, runID, ShipperOptions{Interval: time.Millisecond, MaxBackoff: time.Millisecond})
	s.Add(Event{Type: EventLog, Text: "x"})
	flush(t, s)
	if s.Acked() != 1 {
		t.Fatalf("Acked = %d", s.Acked())
	}
	srv.failAll = 1 << 30
	s.Add(Event{Type: EventLog, Text: "y"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush = %v, want the context's error", err)
	}
}

// refusingPoster answers every batch with one API error.
type refusingPoster struct{ err error }

func (p refusingPoster) PostEvents(context.Context, string, []Event) (int64, error) { return 0, p.err }

// Waiting has no limit for an outage, but a refusal that no resend can change
// (400, 401, 403, 404, 422…) ends Flush at once with that error, and so does
// 409 lease_lost: the run is another runner's. An outage keeps it waiting.
func TestShipperFlushStopsOnARefusal(t *testing.T) {
	const (
		refused = "refused" // ends at once, IsRefused
		lost    = "lost"    // ends at once, IsLeaseLost: the run is another runner's
		waits   = "waits"   // resent until the context ends
	)
	tests := []struct {
		status int
		code   string
		want   string
	}{
		{400, "bad_request", refused},
		{401, "invalid_token", refused},
		{403, "forbidden", refused},
		{404, "not_found", refused},
		{422, "unprocessable", refused},
		{409, "lease_lost", lost},
		{409, "conflict", waits},
		{408, "timeout", waits},
		{429, "slow_down", waits},
		{500, "internal", waits},
		{503, "unavailable", waits},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, "_", tt.code), func(t *testing.T) {
			s := NewShipper(refusingPoster{&APIError{Status: tt.status, Code: tt.code, Message: "no"}}, runID,
				ShipperOptions{Interval: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
			s.Add(Event{Type: EventLog, Text: "x"})
			// An answer that ends the Flush does so by itself: its bound only
			// fails a Flush that keeps resending, with slack for a loaded host.
			wait := 30 * time.Second
			if tt.want == waits {
				wait = 300 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			err := s.Flush(ctx)
			if got := IsRefused(err); got != (tt.want == refused) {
				t.Fatalf("Flush = %v; IsRefused %v, want %v", err, got, tt.want == refused)
			}
			if got := IsLeaseLost(err); got != (tt.want == lost) {
				t.Fatalf("Flush = %v; IsLeaseLost %v, want %v", err, got, tt.want == lost)
			}
			if got := errors.Is(err, context.DeadlineExceeded); got != (tt.want == waits) {
				t.Fatalf("Flush = %v; context's error %v, want %v", err, got, tt.want == waits)
			}
		})
	}
}
