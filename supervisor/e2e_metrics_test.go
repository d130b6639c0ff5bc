package supervisor_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/metrics"
	"github.com/trakkar/trakkar-agent/internal/standin"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// scrape reads one endpoint of the metrics server.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sample is the value of the series named exactly series (name plus labels as
// exposed), and whether it is there.
func sample(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// A real run on the Docker engine, scraped while it works and after: the
// gauges show it working, and the counters and histograms move.
func TestMetricsScrapedDuringARealRun(t *testing.T) {
	parallel(t)
	// The default 10 s lease: a 3 s one lapsed again and again when two
	// suites rebuilt their images side by side.
	e := newEnv(t, envOpts{})
	m := metrics.New()
	e.metrics = m
	api, err := trakkar.NewClient(trakkar.Options{BaseURL: e.url, Token: agentToken, Version: "test", Logger: e.log.Named("client"), Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	e.api = api
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	_, before := scrape(t, srv.URL+"/metrics")
	if v, _ := sample(before, `trakkar_agent_runs_total{outcome="succeeded"}`); v != 0 {
		t.Fatalf("succeeded runs before any run: %v", v)
	}
	if code, body := scrape(t, srv.URL+"/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz before the supervisor runs: %d %q, want 503", code, body)
	}

	if _, _, err := e.stand.CreateTask(standin.NewTask{Key: "MET-1", Title: "Write a note",
		Description: "fake:scenario=edit\nfake:delay=1500ms\nfake:write=notes/met.md=measured\n"}); err != nil {
		t.Fatal(err)
	}
	s := e.start(e.config(nil))
	m.Watch(func() metrics.State {
		sn := s.sup.Snapshot()
		return metrics.State{Polling: sn.Polling, LastPoll: sn.LastPoll, Slots: sn.Slots, Active: sn.Active,
			EventsPending: sn.EventsPending, EventsSpooled: sn.EventsSpooled, HeartbeatAge: sn.HeartbeatAge, Patience: sn.Patience}
	})

	// While the agent works: one slot taken, heartbeats acknowledged lately.
	var during string
	waitFor(t, 90*time.Second, "the run to be active in /metrics", func() bool {
		_, during = scrape(t, srv.URL+"/metrics")
		v, _ := sample(during, "trakkar_agent_slots_active")
		return v == 1
	})
	if v, ok := sample(during, "trakkar_agent_heartbeat_age_seconds"); !ok || v > 10 {
		t.Errorf("heartbeat age during the run = %v (present %v); want at most the 10s lease", v, ok)
	}
	if code, body := scrape(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during the run: %d %q, want 200", code, body)
	}

	rv := e.waitCompleted("MET-1", 120*time.Second)
	if rv.Completion.Outcome != trakkar.OutcomeSucceeded {
		t.Fatalf("outcome %q: %s", rv.Completion.Outcome, deref(rv.Completion.Error))
	}
	var after string
	waitFor(t, 30*time.Second, "the run counted as succeeded", func() bool {
		_, after = scrape(t, srv.URL+"/metrics")
		v, _ := sample(after, `trakkar_agent_runs_total{outcome="succeeded"}`)
		return v == 1
	})
	for _, series := range []string{
		`trakkar_agent_phase_duration_seconds_count{phase="claim"}`,
		`trakkar_agent_phase_duration_seconds_count{phase="workspace"}`,
		`trakkar_agent_phase_duration_seconds_count{phase="agent"}`,
		`trakkar_agent_phase_duration_seconds_count{phase="publish"}`,
		`trakkar_agent_phase_duration_seconds_count{phase="complete"}`,
		`trakkar_agent_container_start_seconds_count`,
	} {
		if v, _ := sample(after, series); v < 1 {
			t.Errorf("%s = %v after the run, want ≥ 1", series, v)
		}
	}
	// The agent's stage lasted at least the fake's pauses.
	if v, _ := sample(after, `trakkar_agent_phase_duration_seconds_sum{phase="agent"}`); v < 1 {
		t.Errorf("agent phase took %vs in total, want ≥ 1s", v)
	}
	if v, _ := sample(after, "trakkar_agent_container_start_seconds_sum"); v <= 0 {
		t.Errorf("container start latency sum %v, want > 0", v)
	}
	// The slot is freed once the workspace is cleaned up, which comes after
	// the completion (TestCompleteBeforeRemovingTheWorktree): on a busy
	// machine a scrape can fall in between.
	waitFor(t, 30*time.Second, "the slot freed after the run", func() bool {
		_, after = scrape(t, srv.URL+"/metrics")
		v, _ := sample(after, "trakkar_agent_slots_active")
		return v == 0
	})
	if _, ok := sample(after, "trakkar_agent_trakkar_last_reached_seconds"); !ok {
		t.Error("no trakkar_agent_trakkar_last_reached_seconds after talking to Trakkar")
	}
}
