package trakkar_test

import (
	"context"
	"net/http/httptest"
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
