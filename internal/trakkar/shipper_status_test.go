package trakkar_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// TestShipperSendsStatusAtOnce: with an hour between batches, a status event
// reaches the stand-in Trakkar at once, after the events added before it and
// in seq order, while prose and logs alone wait for the batch.
func TestShipperSendsStatusAtOnce(t *testing.T) {
	cases := []struct {
		name       string
		types      []string
		wantSentBy int // events expected at Trakkar without a tick; 0: none
	}{
		{"status alone", []string{trakkar.EventStatus}, 1},
		{"status after a flood", []string{trakkar.EventLog, trakkar.EventMessage, trakkar.EventTool, trakkar.EventStatus}, 4},
		{"flood alone waits for the batch", []string{trakkar.EventLog, trakkar.EventMessage, trakkar.EventTool}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ti := standin.New(standin.Options{})
			ts := httptest.NewServer(ti.Handler())
			defer ts.Close()
			defer ti.Close()
			_, run, err := ti.CreateTask(standin.NewTask{Key: "ENG-1", Title: "t"})
			if err != nil {
				t.Fatal(err)
			}
			cl, err := trakkar.NewClient(trakkar.Options{BaseURL: ts.URL, Token: standin.DefaultToken, MaxElapsed: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := cl.Claim(ctx, run.ID, trakkar.Runner{ID: "r1", Hostname: "h"}); err != nil {
				t.Fatal(err)
			}
			s := trakkar.NewShipper(cl, run.ID, trakkar.ShipperOptions{Interval: time.Hour})
			done := make(chan struct{})
			go func() { defer close(done); s.Run(ctx) }()
			defer func() { cancel(); <-done }()

			for i, typ := range c.types {
				s.Add(trakkar.Event{Type: typ, Text: typ + string(rune('a'+i))})
			}
			stored := func() []trakkar.Event { v, _ := ti.Run(run.ID); return v.Events }
			if c.wantSentBy == 0 {
				// Negative check: nothing may trigger a send; the hour-long tick is far away.
				time.Sleep(500 * time.Millisecond)
				if n := len(stored()); n != 0 {
					t.Fatalf("%d events sent without a status event or a tick", n)
				}
				return
			}
			deadline := time.Now().Add(5 * time.Second) // generous for a loaded machine, far below the hour
			for (len(stored()) < c.wantSentBy || s.Pending() > 0) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			got := stored()
			if len(got) != c.wantSentBy {
				t.Fatalf("trakkar holds %d events, want %d before the next batch", len(got), c.wantSentBy)
			}
			for i, ev := range got {
				if ev.Seq != int64(i+1) || ev.Type != c.types[i] {
					t.Fatalf("event %d is seq %d type %s, want seq %d type %s", i, ev.Seq, ev.Type, i+1, c.types[i])
				}
			}
			if s.Pending() != 0 {
				t.Fatalf("%d events still pending", s.Pending())
			}
		})
	}
}

// slowPoster holds its first request with events until release is closed,
// and counts the requests that carry events.
type slowPoster struct {
	mu       sync.Mutex
	acked    int64
	requests int
	holding  chan struct{} // closed when the first request arrived
	release  chan struct{}
}

func (p *slowPoster) PostEvents(_ context.Context, _ string, evs []trakkar.Event) (int64, error) {
	if len(evs) == 0 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.acked, nil
	}
	p.mu.Lock()
	p.requests++
	first := p.requests == 1
	p.mu.Unlock()
	if first {
		close(p.holding)
		<-p.release
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acked = evs[len(evs)-1].Seq
	return p.acked, nil
}

func (p *slowPoster) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// TestShipperSendsOnlyTheBacklogItFound: events added while a request is out
// wait for the next batch, so an agent printing faster than a request takes
// still costs one request per interval. A status event still goes at once.
func TestShipperSendsOnlyTheBacklogItFound(t *testing.T) {
	p := &slowPoster{holding: make(chan struct{}), release: make(chan struct{})}
	s := trakkar.NewShipper(p, "run_slow", trakkar.ShipperOptions{Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	s.Add(trakkar.Event{Type: trakkar.EventStatus, Text: "Container started"})
	select {
	case <-p.holding:
	case <-time.After(30 * time.Second): // far below the hour-long tick
		t.Fatal("the status event was not sent at once")
	}
	s.Add(trakkar.Event{Type: trakkar.EventMessage, Text: "a line while the request is out"})
	close(p.release)
	// Negative check: the hour-long tick is far away, so nothing may follow.
	time.Sleep(500 * time.Millisecond)
	if n := p.count(); n != 1 {
		t.Fatalf("%d requests with events, want 1: the line must wait for the next batch", n)
	}
	if s.Pending() != 1 {
		t.Fatalf("%d events pending, want the 1 added during the request", s.Pending())
	}
	s.Add(trakkar.Event{Type: trakkar.EventStatus, Text: "Agent started"})
	deadline := time.Now().Add(5 * time.Second)
	for s.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.Pending() != 0 || p.count() != 2 {
		t.Fatalf("after a second status event: %d pending, %d requests; want 0 and 2", s.Pending(), p.count())
	}
}

// TestShipperGathersALifecycleStep: status events that follow each other
// within StatusDelay (container started, running, agent started) go out in
// one request, well before the next batch.
func TestShipperGathersALifecycleStep(t *testing.T) {
	p := &slowPoster{holding: make(chan struct{}), release: make(chan struct{})}
	close(p.release) // nothing held
	s := trakkar.NewShipper(p, "run_gather", trakkar.ShipperOptions{Interval: time.Hour, StatusDelay: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	start := time.Now()
	for _, text := range []string{"Container started", "Running claude", "Agent started"} {
		s.Add(trakkar.Event{Type: trakkar.EventStatus, Text: text})
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.Pending() != 0 {
		t.Fatalf("%d status events still pending after 5 s", s.Pending())
	}
	if n := p.count(); n != 1 {
		t.Fatalf("%d requests for one lifecycle step, want 1", n)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("sent after %s, before the status delay of 300ms", el)
	}
}
