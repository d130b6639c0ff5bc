package trakkar

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// OnResend counts exactly the events put in a request again: here the server
// keeps 7 of each batch, so every batch after the first repeats the rest of
// the one before it.
func TestShipperCountsResentEvents(t *testing.T) {
	f := newFakeEvents(t)
	f.storeLimit = 7
	var resent atomic.Int64
	s := NewShipper(f.client(t), runID, ShipperOptions{Interval: time.Hour, OnResend: func(n int) { resent.Add(int64(n)) }})
	for i := 1; i <= 40; i++ {
		s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
	}
	flush(t, s)
	_, batches, _, _, _ := f.snapshot(runID)
	var want, posted int64
	for _, b := range batches {
		for _, seq := range b {
			if seq <= posted {
				want++
			}
		}
		posted = max(posted, b[len(b)-1])
	}
	if want == 0 {
		t.Fatal("no batch repeated an event; the test proves nothing")
	}
	if got := resent.Load(); got != want {
		t.Errorf("OnResend counted %d events, want %d (batches %v)", got, want, batches)
	}
}

// A first request that is answered at once resends nothing.
func TestShipperCountsNoResendWhenAllAcked(t *testing.T) {
	f := newFakeEvents(t)
	var resent atomic.Int64
	s := NewShipper(f.client(t), runID, ShipperOptions{Interval: time.Hour, OnResend: func(n int) { resent.Add(int64(n)) }})
	for i := 1; i <= 5; i++ {
		s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
	}
	flush(t, s)
	if got := resent.Load(); got != 0 {
		t.Errorf("OnResend counted %d events, want 0", got)
	}
}

// Spooled counts the events waiting on disk, Pending those in memory too.
func TestShipperSpooledCount(t *testing.T) {
	f := newFakeEvents(t)
	s := NewShipper(f.client(t), runID, ShipperOptions{Interval: time.Hour, MaxMemory: 10, SpoolDir: t.TempDir()})
	for i := 1; i <= 25; i++ {
		s.Add(Event{Type: EventLog, Text: fmt.Sprint(i)})
	}
	if got, pend := s.Spooled(), s.Pending(); got != 15 || pend != 25 {
		t.Errorf("Spooled = %d, Pending = %d; want 15 and 25", got, pend)
	}
	flush(t, s)
	if got := s.Spooled(); got != 0 {
		t.Errorf("Spooled after flush = %d, want 0", got)
	}
	_ = s.Close()
}
