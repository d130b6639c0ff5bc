package supervisor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFetchGroup: claims close together share a fetch; a claim made while an
// older fetch runs gets the next one (one for all such claims); a failed
// fetch is not handed to later claims.
func TestFetchGroup(t *testing.T) {
	cases := []struct {
		name  string
		share time.Duration
		fail  bool
		// release: let the fetches finish between the two bursts
		release bool
		wantTot int32
	}{
		{name: "one burst, running fetch shared", share: time.Hour, wantTot: 1},
		{name: "second burst while an old fetch runs", share: 0, wantTot: 2},
		{name: "recent fetch reused", share: time.Hour, release: true, wantTot: 1},
		{name: "failed fetch not reused", share: time.Hour, release: true, fail: true, wantTot: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			gate := make(chan struct{})
			g := &fetchGroup{share: tc.share, fetch: func(ctx context.Context) error {
				k := n.Add(1)
				<-gate
				if tc.fail && k == 1 {
					return errors.New("boom")
				}
				return nil
			}}
			ctx := context.Background()
			burst := func(k int) *sync.WaitGroup {
				var wg sync.WaitGroup
				for range k {
					wg.Add(1)
					go func() { defer wg.Done(); _ = g.do(ctx, time.Minute) }()
				}
				return &wg
			}
			first := burst(10)
			waitUntil(t, func() bool { return n.Load() == 1 })
			if tc.release {
				close(gate)
				first.Wait()
			}
			second := burst(10)
			if !tc.release {
				time.Sleep(50 * time.Millisecond) // the second burst queues
				close(gate)
			}
			first.Wait()
			second.Wait()
			if got := n.Load(); got != tc.wantTot {
				t.Fatalf("%d fetches, want %d", got, tc.wantTot)
			}
		})
	}
}

// A caller whose context ends stops waiting; the fetch goes on for the others.
func TestFetchGroupCallerGivesUp(t *testing.T) {
	gate := make(chan struct{})
	var n atomic.Int32
	g := &fetchGroup{share: time.Hour, fetch: func(ctx context.Context) error { n.Add(1); <-gate; return ctx.Err() }}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- g.do(ctx, time.Minute) }()
	waitUntil(t, func() bool { return n.Load() == 1 })
	done := make(chan error, 1)
	go func() { done <- g.do(context.Background(), time.Minute) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("the other caller's fetch was cancelled with the first: %v", err)
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(end) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
