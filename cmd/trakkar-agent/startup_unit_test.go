package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trakkar/trakkar-agent/internal/backoff"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// scriptedMe answers /me from a script, then keeps repeating the last answer.
type scriptedMe struct {
	answers []error
	calls   int
}

func (s *scriptedMe) Me(context.Context) (trakkar.Agent, error) {
	err := s.answers[min(s.calls, len(s.answers)-1)]
	s.calls++
	if err != nil {
		return trakkar.Agent{}, err
	}
	return trakkar.Agent{Name: "ok"}, nil
}

func TestReachTrakkar(t *testing.T) {
	oldT, oldR := attemptTimeouts, startupRetry
	attemptTimeouts, startupRetry = []time.Duration{time.Second}, backoff.Policy{Base: 10 * time.Millisecond, Max: 10 * time.Millisecond}
	t.Cleanup(func() { attemptTimeouts, startupRetry = oldT, oldR })
	refused := fmt.Errorf("get agent: %w", errors.New("connect: connection refused"))
	cases := []struct {
		name      string
		answers   []error
		giveUp    time.Duration
		wantErr   string // "" for success
		wantCalls int
		wantWarns int
	}{
		{"answers at once", []error{nil}, 0, "", 1, 0},
		{"reached after outages", []error{refused, &trakkar.APIError{Status: 503}, nil}, 0, "", 3, 2},
		{"bad token is final", []error{&trakkar.APIError{Status: 401}}, 0, "rejected the token", 1, 0},
		{"not found is final", []error{&trakkar.APIError{Status: 404, Message: "no such route"}}, 0, "refused the runner", 1, 0},
		{"rate limit is retried", []error{&trakkar.APIError{Status: 429}, nil}, 0, "", 2, 1},
		{"--once gives up", []error{refused}, 50 * time.Millisecond, "gave up after", -1, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			probe := &scriptedMe{answers: c.answers}
			_, err := reachTrakkar(context.Background(), probe, "http://trakkar.test", c.giveUp, zap.New(core))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("err %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("err %v, want %q", err, c.wantErr)
			}
			if c.wantCalls >= 0 && probe.calls != c.wantCalls {
				t.Errorf("%d attempts, want %d", probe.calls, c.wantCalls)
			}
			if c.wantWarns >= 0 && logs.Len() != c.wantWarns {
				t.Errorf("%d warnings, want %d", logs.Len(), c.wantWarns)
			}
			for _, e := range logs.All() {
				if !strings.HasPrefix(e.Message, "cannot reach Trakkar at http://trakkar.test: ") {
					t.Errorf("warning %q", e.Message)
				}
			}
		})
	}
}

// A signal (ctx) ends the wait at once, even in the middle of a pause.
func TestReachTrakkarStopsOnSignal(t *testing.T) {
	// A pause far longer than the bound below, so a wait that ignored the
	// signal shows even with slack for a loaded host.
	oldR := startupRetry
	startupRetry = backoff.Policy{Base: time.Minute, Max: time.Minute}
	t.Cleanup(func() { startupRetry = oldR })
	ctx, cancel := context.WithCancel(context.Background())
	probe := &scriptedMe{answers: []error{errors.New("refused")}}
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := reachTrakkar(ctx, probe, "http://trakkar.test", 0, zap.NewNop())
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Fatalf("err %v after %s, want context.Canceled at once", err, time.Since(start))
	}
}

// Retries at startup come 2 s, 4 s, 8 s, then every 15 s after an attempt began.
func TestReachTrakkarSchedule(t *testing.T) {
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second, 15 * time.Second}
	for attempt, w := range want {
		if got := startupRetry.Delay(attempt + 1); got != w {
			t.Errorf("pause after attempt %d = %s, want %s", attempt+1, got, w)
		}
	}
}
