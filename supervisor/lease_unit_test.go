package supervisor

import (
	"testing"
	"time"
)

func TestLeaseFresh(t *testing.T) {
	t.Parallel()
	sent := time.Unix(1000, 0)
	tests := []struct {
		name     string
		confirm  bool
		lease    int
		after    time.Duration
		wantFrsh bool
	}{
		{"never confirmed", false, 60, 0, false},
		{"just confirmed", true, 60, 0, true},
		{"inside lease/3", true, 60, 19 * time.Second, true},
		{"at lease/3", true, 60, 20 * time.Second, false},
		{"short lease, stale", true, 3, 1500 * time.Millisecond, false},
		{"unknown lease counts as 60 s", true, 0, 19 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l leaseState
			l.seconds.Store(int64(tc.lease))
			if tc.confirm {
				l.confirm(sent, 0)
			}
			if got := l.fresh(sent.Add(tc.after)); got != tc.wantFrsh {
				t.Fatalf("fresh after %s = %v, want %v", tc.after, got, tc.wantFrsh)
			}
		})
	}
}

// An older confirmation answered late never moves the lease back.
func TestLeaseConfirmKeepsTheNewest(t *testing.T) {
	t.Parallel()
	var l leaseState
	now := time.Unix(1000, 0)
	l.confirm(now, 30)
	l.confirm(now.Add(-15*time.Second), 0)
	if !l.fresh(now.Add(9 * time.Second)) {
		t.Fatal("a late answer to an older heartbeat made the lease stale")
	}
	if l.seconds.Load() != 30 {
		t.Fatalf("lease seconds = %d, want 30 (0 keeps the last)", l.seconds.Load())
	}
}
