package trakkar

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trakkar/trakkar-agent/internal/backoff"
)

const testToken = "trk_agent_s3cr3tT0ken"

// newTestClient returns a client with fast retries for srv.
func newTestClient(t testing.TB, baseURL string, mod func(*Options)) *Client {
	t.Helper()
	opts := Options{
		BaseURL:    baseURL,
		Token:      testToken,
		Version:    "1.2.3",
		MaxBackoff: 10 * time.Millisecond,
		MaxElapsed: 3 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := NewClient(opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// assertNoToken fails when err's text (or any error it wraps) leaks the token.
func assertNoToken(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), testToken) {
			t.Fatalf("error leaks the token: %q", e.Error())
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	var eb ErrorBody
	eb.Error.Code, eb.Error.Message = code, msg
	writeJSON(w, status, eb)
}

var (
	sampleRun  = map[string]any{"id": "run_1", "task_id": "tsk_1", "kind": "start", "status": "queued", "attempt": 1, "created_at": "2025-01-02T03:04:05Z", "future_field": 42}
	sampleTask = map[string]any{"id": "tsk_1", "key": "WEB-1", "title": "Fix", "messages": []any{}, "pull_request": nil}
)

func TestClientRequests(t *testing.T) {
	type seen struct {
		method, path, query string
		header              http.Header
		body                map[string]any
	}
	var (
		mu  sync.Mutex
		got seen
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		mu.Lock()
		got = seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body}
		mu.Unlock()
		switch {
		case r.URL.Path == "/v1/agent/me":
			writeJSON(w, 200, map[string]any{"agent": map[string]any{"id": "agt_1", "name": "Claude", "provider": "claude_code", "max_concurrency": 3, "unknown": true}})
		case r.URL.Path == "/v1/agent/runs/queued":
			writeJSON(w, 200, map[string]any{"runs": []any{sampleRun}})
		case strings.HasSuffix(r.URL.Path, "/claim"):
			writeJSON(w, 200, map[string]any{"run": sampleRun, "task": sampleTask, "lease_seconds": 45})
		case strings.HasSuffix(r.URL.Path, "/heartbeat"):
			writeJSON(w, 200, map[string]any{"stop_requested": true, "lease_seconds": 60})
		case strings.HasSuffix(r.URL.Path, "/events"):
			writeJSON(w, 200, map[string]any{"acked_seq": 2})
		case strings.HasSuffix(r.URL.Path, "/complete"):
			writeJSON(w, 200, map[string]any{"run": sampleRun})
		default:
			writeAPIError(w, 404, "not_found", "no route")
		}
	}))
	defer srv.Close()
	// A trailing slash on the base URL must not double the separator.
	c := newTestClient(t, srv.URL+"/", nil)
	ctx := context.Background()
	runID := "run/1 x"
	const escaped = "run%2F1%20x"

	tests := []struct {
		name     string
		call     func() (any, error)
		method   string
		path     string
		query    string
		wantBody func(t *testing.T, body map[string]any)
		check    func(t *testing.T, res any)
	}{
		{
			name: "me", method: "GET", path: "/v1/agent/me",
			call: func() (any, error) { return c.Me(ctx) },
			check: func(t *testing.T, res any) {
				a := res.(Agent)
				if a.ID != "agt_1" || a.Provider != "claude_code" || a.MaxConcurrency == nil || *a.MaxConcurrency != 3 || a.VerifyCommand != nil {
					t.Errorf("agent = %+v", a)
				}
			},
		},
		{
			name: "queued", method: "GET", path: "/v1/agent/runs/queued", query: "limit=4&wait=0",
			call: func() (any, error) { return c.Queued(ctx, 0, 4) },
			check: func(t *testing.T, res any) {
				runs := res.([]Run)
				if len(runs) != 1 || runs[0].ID != "run_1" || runs[0].Attempt != 1 || runs[0].CreatedAt.IsZero() {
					t.Errorf("runs = %+v", runs)
				}
			},
		},
		{
			name: "claim", method: "POST", path: "/v1/agent/runs/" + escaped + "/claim",
			call: func() (any, error) {
				return c.Claim(ctx, runID, Runner{ID: "rnr_1", Hostname: "box", Version: "1.2.3", Clone: "/srv/web"})
			},
			wantBody: func(t *testing.T, body map[string]any) {
				r, _ := body["runner"].(map[string]any)
				if r["id"] != "rnr_1" || r["hostname"] != "box" || r["version"] != "1.2.3" || r["clone"] != "/srv/web" {
					t.Errorf("claim body = %v", body)
				}
			},
			check: func(t *testing.T, res any) {
				cl := res.(Claim)
				if cl.Run.ID != "run_1" || cl.Task.Key != "WEB-1" || cl.LeaseSeconds != 45 {
					t.Errorf("claim = %+v", cl)
				}
			},
		},
		{
			name: "heartbeat", method: "POST", path: "/v1/agent/runs/" + escaped + "/heartbeat",
			call: func() (any, error) { return c.Heartbeat(ctx, runID, StateRunning) },
			wantBody: func(t *testing.T, body map[string]any) {
				if body["state"] != "running" {
					t.Errorf("heartbeat body = %v", body)
				}
			},
			check: func(t *testing.T, res any) {
				if hb := res.(HeartbeatReply); !hb.StopRequested || hb.LeaseSeconds != 60 {
					t.Errorf("heartbeat = %+v", hb)
				}
			},
		},
		{
			name: "events", method: "POST", path: "/v1/agent/runs/" + escaped + "/events",
			call: func() (any, error) {
				return c.PostEvents(ctx, runID, []Event{{Seq: 1, Type: EventLog, Text: "a"}, {Seq: 2, Type: EventTool, Text: "b", Data: map[string]any{"name": "Edit"}}})
			},
			wantBody: func(t *testing.T, body map[string]any) {
				evs, _ := body["events"].([]any)
				if len(evs) != 2 || evs[1].(map[string]any)["seq"] != float64(2) {
					t.Errorf("events body = %v", body)
				}
			},
			check: func(t *testing.T, res any) {
				if res.(int64) != 2 {
					t.Errorf("acked = %v", res)
				}
			},
		},
		{
			name: "complete", method: "POST", path: "/v1/agent/runs/" + escaped + "/complete",
			call: func() (any, error) {
				return c.Complete(ctx, runID, Completion{Outcome: OutcomeSucceeded, Summary: "done", PullRequest: &PullRequest{URL: "u", Number: 3, Branch: "b"}})
			},
			wantBody: func(t *testing.T, body map[string]any) {
				pr, _ := body["pull_request"].(map[string]any)
				if body["outcome"] != "succeeded" || pr["number"] != float64(3) || body["error"] != nil {
					t.Errorf("complete body = %v", body)
				}
				if _, ok := body["usage"]; !ok {
					t.Errorf("complete body lacks usage: %v", body)
				}
			},
			check: func(t *testing.T, res any) {
				if res.(Run).ID != "run_1" {
					t.Errorf("run = %+v", res)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.call()
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			tt.check(t, res)
			mu.Lock()
			g := got
			mu.Unlock()
			if g.method != tt.method || g.path != tt.path {
				t.Errorf("request = %s %s, want %s %s", g.method, g.path, tt.method, tt.path)
			}
			if tt.query != "" && g.query != tt.query {
				t.Errorf("query = %q, want %q", g.query, tt.query)
			}
			wantHdr := map[string]string{
				"Authorization":          "Bearer " + testToken,
				"User-Agent":             "trakkar-agent-go/1.2.3",
				"Trakkar-Agent-Protocol": "1",
				"Content-Type":           "application/json",
			}
			for k, v := range wantHdr {
				if g.header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, g.header.Get(k), v)
				}
			}
			if tt.wantBody != nil {
				tt.wantBody(t, g.body)
			}
		})
	}
}

func TestNewClientValidation(t *testing.T) {
	tests := []struct {
		name, url, token string
		ok               bool
	}{
		{"ok", "https://api.trakkar.in", testToken, true},
		{"ok with path", "http://127.0.0.1:8080/prefix/", testToken, true},
		{"empty url", "", testToken, false},
		{"relative", "/v1", testToken, false},
		{"no scheme", "api.trakkar.in", testToken, false},
		{"ftp", "ftp://api.trakkar.in", testToken, false},
		{"no host", "https://", testToken, false},
		{"credentials", "https://user:" + testToken + "@api.trakkar.in", testToken, false},
		{"query", "https://api.trakkar.in?x=1", testToken, false},
		{"empty token", "https://api.trakkar.in", "", false},
		{"token with newline", "https://api.trakkar.in", testToken + "\nX-Evil: 1", false},
		{"token with space", "https://api.trakkar.in", "trk_agent_a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(Options{BaseURL: tt.url, Token: tt.token})
			if tt.ok != (err == nil) {
				t.Fatalf("NewClient err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				assertNoToken(t, err)
				if c != nil {
					t.Error("client returned with an error")
				}
			}
		})
	}
}

func TestClientRejectsBadRunIDs(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := newTestClient(t, srv.URL, nil)
	for _, id := range []string{"", ".", ".."} {
		if _, err := c.Heartbeat(context.Background(), id, StateRunning); err == nil {
			t.Errorf("run id %q accepted", id)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("server was called %d times", hits.Load())
	}
}

func TestClientRetries5xxThenSucceeds(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			writeAPIError(w, 503, "unavailable", "try later")
		case 2:
			w.WriteHeader(502) // no JSON body at all
		default:
			writeJSON(w, 200, map[string]any{"acked_seq": 7})
		}
	}))
	defer srv.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	c := newTestClient(t, srv.URL, func(o *Options) { o.Logger = zap.New(core) })
	acked, err := c.PostEvents(context.Background(), "run_1", []Event{{Seq: 7, Type: EventLog}})
	if err != nil || acked != 7 {
		t.Fatalf("PostEvents = %d, %v", acked, err)
	}
	if n.Load() != 3 {
		t.Errorf("attempts = %d, want 3", n.Load())
	}
	entries := logs.FilterMessage("retrying trakkar request").All()
	if len(entries) != 2 {
		t.Fatalf("retry logs = %d, want 2", len(entries))
	}
	f := entries[0].ContextMap()
	if entries[0].Level != zapcore.DebugLevel || f["method"] != "POST" || f["path"] != "/v1/agent/runs/run_1/events" ||
		f["status"] != int64(503) || f["attempt"] != int64(1) {
		t.Errorf("retry log fields = %v (level %v)", f, entries[0].Level)
	}
	if _, ok := f["backoff"]; !ok {
		t.Error("retry log lacks backoff")
	}
	if entries[0].LoggerName != "trakkar" {
		t.Errorf("logger name = %q", entries[0].LoggerName)
	}
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, testToken) {
				t.Errorf("log field %s leaks the token", k)
			}
		}
	}
}

func TestClientRetriesNetworkErrors(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // no response at all
			}
			return
		}
		writeJSON(w, 200, map[string]any{"run": sampleRun, "task": sampleTask, "lease_seconds": 60})
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, nil)
	cl, err := c.Claim(context.Background(), "run_1", Runner{ID: "r"})
	if err != nil || cl.Run.ID != "run_1" {
		t.Fatalf("Claim = %+v, %v", cl, err)
	}
	if n.Load() != 3 {
		t.Errorf("attempts = %d, want 3", n.Load())
	}
}

func TestClientRetriesTimeouts(t *testing.T) {
	var n atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			select { // hang past the client timeout
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		writeJSON(w, 200, map[string]any{"stop_requested": false, "lease_seconds": 60})
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, srv.URL, func(o *Options) { o.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond} })
	if _, err := c.Heartbeat(context.Background(), "run_1", StateRunning); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	if n.Load() != 2 {
		t.Errorf("attempts = %d, want 2", n.Load())
	}
}

func TestClientHonoursRetryAfter(t *testing.T) {
	var (
		n     atomic.Int32
		mu    sync.Mutex
		times []time.Time
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			writeAPIError(w, 429, "rate_limited", "slow down")
			return
		}
		writeJSON(w, 200, map[string]any{"runs": []any{}})
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, nil)
	runs, err := c.Queued(context.Background(), 0, 0)
	if err != nil || len(runs) != 0 || runs == nil {
		t.Fatalf("Queued = %v, %v", runs, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("attempts = %d, want 2", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("retried after %v, want ≥ 1s", gap)
	}
}

func TestClientRetryAfterBeyondMaxElapsedGivesUp(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "120")
		writeAPIError(w, 429, "rate_limited", "slow down")
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, func(o *Options) { o.MaxElapsed = time.Minute })
	start := time.Now()
	_, err := c.Me(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 429 {
		t.Fatalf("err = %v, want a 429 APIError", err)
	}
	// Far below MaxElapsed, which waiting would reach; slack for a loaded host.
	if time.Since(start) > 10*time.Second || n.Load() != 1 {
		t.Errorf("took %v with %d attempts; want an immediate give-up", time.Since(start), n.Load())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{" 17 ", 17 * time.Second, true},
		{"0", 0, true},
		{"-3", 0, false},
		{"abc", 0, false},
		{"1.5", 0, false},
		{"99999999999999999999", 0, false},
		{"3600", 5 * time.Minute, true},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(time.Hour).Format(http.TimeFormat), 5 * time.Minute, true},
	}
	for _, tt := range tests {
		got, ok := retryAfter(http.Header{"Retry-After": {tt.in}}, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// The delays themselves are tested in internal/backoff; this is the client's
// schedule: 500ms doubling to MaxBackoff (default 30s), full jitter.
func TestClientRetryPolicy(t *testing.T) {
	tests := []struct {
		maxBackoff time.Duration
		want       backoff.Policy
	}{
		{0, backoff.Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: backoff.Full}},
		{5 * time.Second, backoff.Policy{Base: 500 * time.Millisecond, Max: 5 * time.Second, Jitter: backoff.Full}},
		{100 * time.Millisecond, backoff.Policy{Base: 100 * time.Millisecond, Max: 100 * time.Millisecond, Jitter: backoff.Full}},
	}
	for _, tt := range tests {
		c, err := NewClient(Options{BaseURL: "http://127.0.0.1:1", Token: testToken, MaxBackoff: tt.maxBackoff})
		if err != nil {
			t.Fatal(err)
		}
		if c.retry != tt.want {
			t.Errorf("MaxBackoff %s: policy %+v, want %+v", tt.maxBackoff, c.retry, tt.want)
		}
	}
}

func TestClientLongPoll(t *testing.T) {
	var query atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query.Store(r.URL.Query())
		select { // hold the poll like a server waiting for a delegation
		case <-time.After(time.Second):
		case <-r.Context().Done():
			return
		}
		writeJSON(w, 200, map[string]any{"runs": []any{sampleRun}})
	}))
	defer srv.Close()
	// The caller's client timeout is shorter than the hold: Queued must widen it.
	c := newTestClient(t, srv.URL, func(o *Options) { o.HTTPClient = &http.Client{Timeout: 300 * time.Millisecond} })
	start := time.Now()
	runs, err := c.Queued(context.Background(), 5*time.Second, 2)
	if err != nil {
		t.Fatalf("Queued: %v", err)
	}
	if len(runs) != 1 || runs[0].ID != "run_1" {
		t.Errorf("runs = %+v", runs)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("answered after %v; the server held it 1s", el)
	}
	q := query.Load().(url.Values)
	if q["wait"][0] != "5" || q["limit"][0] != "2" {
		t.Errorf("query = %v", q)
	}
}

func TestWaitSeconds(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want int
	}{{-time.Second, 0}, {0, 0}, {time.Millisecond, 1}, {time.Second, 1}, {1500 * time.Millisecond, 2}, {30 * time.Second, 30}, {time.Hour, 30}}
	for _, tt := range tests {
		if got := waitSeconds(tt.in); got != tt.want {
			t.Errorf("waitSeconds(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestDefaultClientOutlastsLongPoll(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1", nil)
	if c.pollHC.Timeout <= MaxPollWait {
		t.Errorf("poll timeout %v does not exceed the max wait %v", c.pollHC.Timeout, MaxPollWait)
	}
}

// The runner id goes with every call, so Trakkar can tell a runner whose run
// was taken over from the runner that holds it now.
func TestClientSendsRunnerID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id, want string
	}{
		{"set", "rnr_host_3", "rnr_host_3"},
		{"unset", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- r.Header.Get(RunnerIDHeader)
				_, _ = w.Write([]byte(`{"stop_requested": false, "lease_seconds": 60}`))
			}))
			defer srv.Close()
			c, err := NewClient(Options{BaseURL: srv.URL, Token: "trk_agent_x", Version: "test", RunnerID: tc.id})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Heartbeat(context.Background(), "run_1", StateRunning); err != nil {
				t.Fatal(err)
			}
			if h := <-got; h != tc.want {
				t.Fatalf("%s = %q, want %q", RunnerIDHeader, h, tc.want)
			}
		})
	}
}
