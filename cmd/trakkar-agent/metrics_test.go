package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/testimage"
)

// A bad or taken --metrics-addr is bad input: one line, exit 2.
func TestMetricsAddrBadInput(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	repo := gitInit(t, "https://github.com/acme/web.git")
	for _, addr := range []string{"no-port-here", taken.Addr().String()} {
		code, stderr := runBinary(t, repo, []string{"--metrics-addr", addr}, []string{"TRAKKAR_TOKEN=t"})
		if code != 2 || !strings.Contains(stderr, "--metrics-addr "+addr) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("--metrics-addr %s: exit %d, stderr %q; want 2 and one line naming it", addr, code, stderr)
		}
	}
}

// The binary serves /healthz and /metrics: 503 until its poll loop runs
// against a reachable Trakkar, then 200, with the loop's gauge at 1.
func TestMetricsEndpointOfTheBinary(t *testing.T) {
	url := standIn(t)
	repo := gitInit(t, "https://github.com/acme/web.git")
	env := []string{"TRAKKAR_TOKEN=trk_agent_locktest", "TRAKKAR_API_URL=" + url, "TRAKKAR_LOG_FORMAT=console",
		"TRAKKAR_RUNNER_ID=rnr_metrics_" + testimage.RunID()}
	r := startRunner(t, repo, []string{"--dry-run", "--provider", "claude_code", "--interval", "1", "--poll-wait", "1",
		"--metrics-addr", "127.0.0.1:0"}, env)
	r.waitOutput(t, "serving metrics and health", 20*time.Second)
	// Console lines end in the fields as JSON.
	m := regexp.MustCompile(`"addr": ?"([^"]+)"`).FindStringSubmatch(r.out.String())
	if m == nil {
		t.Fatalf("no address in the log:\n%s", r.out.String())
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := get("/healthz")
		if code == http.StatusOK && strings.TrimSpace(body) == "ok" {
			break
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("/healthz answered %d %q; want 503 while starting, then 200", code, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still %d %q after 20s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, text := get("/metrics")
	for _, want := range []string{"trakkar_agent_poll_loop_running 1", "trakkar_agent_slots_free ", "trakkar_agent_trakkar_last_reached_seconds "} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// healthz exits 0 with the reason on a 200, 1 with it on a 503, 1 when
// nothing answers.
func TestHealthzCommand(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("the poll loop is not running\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	addr := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	if code, _ := runBinary(t, dir, []string{"healthz", "--addr", addr}, nil); code != 0 {
		t.Errorf("healthy: exit %d, want 0", code)
	}
	healthy.Store(false)
	if code, stderr := runBinary(t, dir, []string{"healthz", "--addr", addr}, nil); code != 1 || !strings.Contains(stderr, "poll loop is not running") {
		t.Errorf("unhealthy: exit %d stderr %q, want 1 with the reason", code, stderr)
	}
	srv.Close()
	if code, _ := runBinary(t, dir, []string{"healthz", "--addr", addr}, nil); code != 1 {
		t.Errorf("nothing listening: exit %d, want 1", code)
	}
}
