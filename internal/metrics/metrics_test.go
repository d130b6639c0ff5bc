package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const patience = 3 * time.Minute
	healthy := State{Polling: true, LastPoll: now.Add(-10 * time.Second), Patience: patience}
	tests := []struct {
		name    string
		state   *State // nil: no supervisor yet
		reached time.Time
		ok      bool
		reason  string
	}{
		{"healthy", &healthy, now.Add(-time.Minute), true, "ok"},
		{"starting", nil, now, false, "not running yet"},
		{"loop ended", &State{Polling: false, LastPoll: now, Patience: patience}, now, false, "poll loop is not running"},
		{"loop stuck", &State{Polling: true, LastPoll: now.Add(-4 * time.Minute), Patience: patience}, now, false, "has not gone round for 4m0s"},
		{"never reached", &healthy, time.Time{}, false, "not been reached"},
		{"trakkar silent", &healthy, now.Add(-5 * time.Minute), false, "last answered 5m0s ago (allowed 3m0s)"},
		// The loop waits in its retries while Trakkar is away: Trakkar is named.
		{"trakkar silent, loop waiting", &State{Polling: true, LastPoll: now.Add(-4 * time.Minute), Patience: patience},
			now.Add(-5 * time.Minute), false, "trakkar last answered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			m.now = func() time.Time { return now }
			if tt.state != nil {
				st := *tt.state
				m.Watch(func() State { return st })
			}
			if !tt.reached.IsZero() {
				m.reached.Store(tt.reached.UnixNano())
			}
			srv := httptest.NewServer(m.Handler())
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := http.StatusOK
			if !tt.ok {
				want = http.StatusServiceUnavailable
			}
			if resp.StatusCode != want || !strings.Contains(string(body), tt.reason) {
				t.Errorf("status %d body %q; want %d containing %q", resp.StatusCode, body, want, tt.reason)
			}
			if strings.Count(strings.TrimSpace(string(body)), "\n") != 0 {
				t.Errorf("reason is not one line: %q", body)
			}
		})
	}
}

func TestMetricsExposition(t *testing.T) {
	m := New()
	m.Watch(func() State {
		return State{Polling: true, Slots: 3, Active: 1, EventsPending: 7, EventsSpooled: 2, HeartbeatAge: 4 * time.Second}
	})
	m.RunEnded("succeeded")
	m.RunEnded("succeeded")
	m.RunEnded("failed")
	m.PhaseDone("agent", 2*time.Second)
	m.ContainerStarted(300 * time.Millisecond)
	m.EventsResent(5)
	m.RequestFailed("timeout")
	m.Reached()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		`trakkar_agent_runs_total{outcome="succeeded"} 2`,
		`trakkar_agent_runs_total{outcome="failed"} 1`,
		`trakkar_agent_slots_active 1`,
		`trakkar_agent_slots_free 2`,
		`trakkar_agent_events_pending 7`,
		`trakkar_agent_events_spooled 2`,
		`trakkar_agent_events_resent_total 5`,
		`trakkar_agent_heartbeat_age_seconds 4`,
		`trakkar_agent_poll_loop_running 1`,
		`trakkar_agent_phase_duration_seconds_count{phase="agent"} 1`,
		`trakkar_agent_container_start_seconds_count 1`,
		`trakkar_agent_trakkar_request_errors_total{kind="timeout"} 1`,
		`trakkar_agent_trakkar_last_reached_seconds `,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
