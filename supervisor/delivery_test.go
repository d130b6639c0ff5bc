package supervisor

import (
	"context"
	"testing"
	"time"
)

// The wait for a run's events has no timer of its own: only a lost lease or
// an abort ends it, and an abort that already happened leaves a short chance.
func TestDeliveryContextEndsOnlyOnLossOrAbort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		aborted  bool
		lose     bool
		wantDone bool
		within   time.Duration
	}{
		{name: "waits while the lease holds", within: 300 * time.Millisecond},
		// A bound where it must end only fails a wait that never ends; the
		// slack is for a loaded host.
		{name: "lost lease ends it", lose: true, wantDone: true, within: 10 * time.Second},
		{name: "aborting gives a short chance", aborted: true, wantDone: true, within: 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, abort := context.WithCancel(context.Background())
			defer abort()
			if tt.aborted {
				abort()
			}
			r := &run{lost: make(chan struct{})}
			dctx, cancel := deliveryContext(ctx, r)
			defer cancel()
			if tt.aborted {
				select {
				case <-dctx.Done():
					t.Fatal("an abort gave the events no chance at all")
				default:
				}
			}
			if tt.lose {
				r.markLost()
			}
			select {
			case <-dctx.Done():
				if !tt.wantDone {
					t.Fatalf("ended: %v", dctx.Err())
				}
			case <-time.After(tt.within):
				if tt.wantDone {
					t.Fatalf("still waiting after %s", tt.within)
				}
			}
		})
	}
}
