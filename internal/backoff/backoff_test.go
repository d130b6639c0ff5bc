package backoff

import (
	"context"
	"errors"
	"math"
	"net/http"
	"testing"
	"time"
)

func TestDelayWithoutJitter(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		attempt int
		want    time.Duration
	}{
		{"first", Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second}, 1, 500 * time.Millisecond},
		{"second doubles", Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second}, 2, time.Second},
		{"third", Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second}, 3, 2 * time.Second},
		{"capped", Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second}, 7, 30 * time.Second},
		{"capped far out", Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second}, 1000, 30 * time.Second},
		{"cap below base", Policy{Base: time.Second, Max: 40 * time.Millisecond}, 1, 40 * time.Millisecond},
		{"attempt 0 is the first", Policy{Base: time.Second, Max: time.Minute}, 0, time.Second},
		{"no base", Policy{Max: time.Minute}, 5, 0},
		{"no cap saturates", Policy{Base: time.Second}, 1000, time.Duration(math.MaxInt64)},
		{"startup schedule", Policy{Base: 2 * time.Second, Max: 15 * time.Second}, 4, 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Delay(tt.attempt); got != tt.want {
				t.Errorf("Delay(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestDelayJitterBounds(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		attempt int
		lo, hi  time.Duration
	}{
		{"full", Policy{Base: time.Second, Max: 8 * time.Second, Jitter: Full}, 3, 0, 4 * time.Second},
		{"full capped", Policy{Base: time.Second, Max: 8 * time.Second, Jitter: Full}, 40, 0, 8 * time.Second},
		{"equal", Policy{Base: time.Second, Max: 8 * time.Second, Jitter: Equal}, 3, 2 * time.Second, 4 * time.Second},
		{"equal capped", Policy{Base: time.Second, Max: 8 * time.Second, Jitter: Equal}, 40, 4 * time.Second, 8 * time.Second},
		{"zero stays zero", Policy{Jitter: Full}, 3, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var least, most time.Duration = math.MaxInt64, 0
			for range 2000 {
				d := tt.p.Delay(tt.attempt)
				if d < tt.lo || d > tt.hi {
					t.Fatalf("Delay(%d) = %v, outside [%v, %v]", tt.attempt, d, tt.lo, tt.hi)
				}
				least, most = min(least, d), max(most, d)
			}
			// Jitter must actually spread: over 2000 draws the range is well used.
			if span := tt.hi - tt.lo; span > 0 && most-least < span/2 {
				t.Errorf("draws within [%v, %v], want a spread over [%v, %v]", least, most, tt.lo, tt.hi)
			}
		})
	}
}

func TestSleep(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		d       time.Duration
		wantErr error
		atLeast time.Duration
	}{
		{"waits", context.Background(), 20 * time.Millisecond, nil, 20 * time.Millisecond},
		{"zero", context.Background(), 0, nil, 0},
		{"negative", context.Background(), -time.Second, nil, 0},
		{"cancelled", cancelled, time.Hour, context.Canceled, 0},
		{"cancelled zero", cancelled, 0, context.Canceled, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := Sleep(tt.ctx, tt.d)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Sleep = %v, want %v", err, tt.wantErr)
			}
			if el := time.Since(start); el < tt.atLeast || el > tt.atLeast+5*time.Second {
				t.Fatalf("Sleep took %v, want about %v", el, tt.atLeast)
			}
		})
	}
}

func TestSleepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sleep = %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Sleep returned after %v, want soon after the cancel", el)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		in     []string // header values; nil means no header
		want   time.Duration
		wantOK bool
	}{
		{"missing", nil, 0, false},
		{"empty", []string{""}, 0, false},
		{"blank", []string{"  "}, 0, false},
		{"seconds", []string{"1"}, time.Second, true},
		{"seconds with spaces", []string{" 17 "}, 17 * time.Second, true},
		{"zero", []string{"0"}, 0, true},
		{"an hour is not capped here", []string{"3600"}, time.Hour, true},
		{"negative", []string{"-3"}, 0, false},
		{"word", []string{"abc"}, 0, false},
		{"fraction", []string{"1.5"}, 0, false},
		{"beyond int64", []string{"99999999999999999999"}, 0, false},
		{"beyond Duration saturates", []string{"10000000000"}, time.Duration(math.MaxInt64), true},
		{"date ahead", []string{now.Add(10 * time.Second).Format(http.TimeFormat)}, 10 * time.Second, true},
		{"date with spaces", []string{" " + now.Add(10*time.Second).Format(http.TimeFormat) + " "}, 10 * time.Second, true},
		{"date past", []string{now.Add(-time.Hour).Format(http.TimeFormat)}, 0, true},
		{"date far ahead", []string{now.Add(time.Hour).Format(http.TimeFormat)}, time.Hour, true},
		{"RFC 850 date", []string{now.Add(time.Minute).Format(time.RFC850)}, time.Minute, true},
		{"bad date", []string{"Thu, 32 Dec 2025 00:00:00 GMT"}, 0, false},
		{"first value counts", []string{"5", "9"}, 5 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.in {
				h.Add("Retry-After", v)
			}
			got, ok := RetryAfter(h, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
