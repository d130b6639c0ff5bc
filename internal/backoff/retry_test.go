package backoff

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestRetryDo(t *testing.T) {
	errFail := errors.New("boom")
	errFatal := errors.New("fatal")
	sec := time.Second
	tests := []struct {
		name      string
		retry     Retry
		outcomes  []error // op's answer per attempt; past the end: nil
		wantErr   error   // errors.Is target; nil: success
		exhausted bool
		wantCalls int
		wantWaits []time.Duration
	}{
		{"success first", Retry{Policy: Policy{Base: sec}}, nil, nil, false, 1, nil},
		{"doubling waits", Retry{Policy: Policy{Base: sec, Max: 3 * sec}},
			[]error{errFail, errFail, errFail}, nil, false, 4, []time.Duration{sec, 2 * sec, 3 * sec}},
		{"permanent stops at once", Retry{Policy: Policy{Base: sec}},
			[]error{errFail, Permanent(errFatal)}, errFatal, false, 2, []time.Duration{sec}},
		{"max attempts", Retry{Policy: Policy{Base: sec}, MaxAttempts: 2},
			[]error{errFail, errFail, errFail}, errFail, true, 2, []time.Duration{sec}},
		{"after waits what was asked and keeps the schedule", Retry{Policy: Policy{Base: sec}},
			[]error{errFail, After(7*sec, errFail), errFail}, nil, false, 4, []time.Duration{sec, 7 * sec, 2 * sec}},
		{"progress restarts the schedule", Retry{Policy: Policy{Base: sec}},
			[]error{errFail, errFail, Progressed(errFail), errFail}, nil, false, 5, []time.Duration{sec, 2 * sec, sec, 2 * sec}},
		{"max elapsed refuses a wait past it", Retry{Policy: Policy{Base: time.Hour}, MaxElapsed: time.Minute},
			[]error{errFail}, errFail, true, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var waits []time.Duration
			tt.retry.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			calls := 0
			err := tt.retry.Do(context.Background(), func(_ context.Context, attempt int) error {
				calls++
				if attempt != calls {
					t.Errorf("attempt = %d on call %d", attempt, calls)
				}
				if attempt <= len(tt.outcomes) {
					return tt.outcomes[attempt-1]
				}
				return nil
			})
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Do = %v, want success", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Do = %v, want %v", err, tt.wantErr)
			}
			var ex *ExhaustedError
			if got := errors.As(err, &ex); got != tt.exhausted {
				t.Errorf("exhausted = %v (%v), want %v", got, err, tt.exhausted)
			}
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if !reflect.DeepEqual(waits, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", waits, tt.wantWaits)
			}
		})
	}
}

func TestRetryNotifyAndCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	errFail := errors.New("boom")
	var notified []int
	r := Retry{
		Policy: Policy{Base: time.Hour},
		Notify: func(attempt int, wait time.Duration, err error) {
			notified = append(notified, attempt)
			if wait != time.Hour || !errors.Is(err, errFail) {
				t.Errorf("notify(%d, %v, %v)", attempt, wait, err)
			}
			cancel()
		},
	}
	err := r.Do(ctx, func(context.Context, int) error { return errFail })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errFail) {
		t.Fatalf("Do = %v, want both the last error and context.Canceled", err)
	}
	if !reflect.DeepEqual(notified, []int{1}) {
		t.Errorf("notified = %v, want [1]", notified)
	}
}

func TestRetryPacedCountsFromAttemptStart(t *testing.T) {
	var waits []time.Duration
	r := Retry{Policy: Policy{Base: time.Second}, Paced: true,
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	calls := 0
	_ = r.Do(context.Background(), func(context.Context, int) error {
		calls++
		if calls == 1 {
			time.Sleep(300 * time.Millisecond)
			return errors.New("slow failure")
		}
		return nil
	})
	if len(waits) != 1 || waits[0] > 700*time.Millisecond || waits[0] < 0 {
		t.Fatalf("waits = %v, want one wait of at most 1s minus the attempt's 300ms", waits)
	}
}
