package standin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

const testToken = "trk_agent_test"

// fakeClock is a controllable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	s     *Server
	ts    *httptest.Server
	clock *fakeClock
}

// newEnv serves a stand-in with the test token and a fake clock.
func newEnv(t *testing.T) *env {
	t.Helper()
	clock := newFakeClock()
	s := New(Options{Token: testToken, Now: clock.Now, PublicURL: "http://trakkar.test/"})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close() // release long polls first, or ts.Close waits for them
		ts.Close()
	})
	return &env{s: s, ts: ts, clock: clock}
}

// request sends an agent-authenticated request. body: nil, string (raw) or a
// value to encode as JSON. hdr overrides headers; an empty value removes one.
func (e *env) request(t *testing.T, method, path string, body any, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Trakkar-Agent-Protocol", "1")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{Timeout: 20 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res.StatusCode, res.Header, raw
}

func (e *env) do(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	status, _, raw := e.request(t, method, path, body, nil)
	return status, raw
}

func decode[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// wantError asserts an error answer with the contract's envelope.
func wantError(t *testing.T, status int, raw []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d (body %s)", status, wantStatus, raw)
	}
	body := decode[trakkar.ErrorBody](t, raw)
	if body.Error.Code != wantCode || body.Error.Message == "" {
		t.Fatalf("error %+v, want code %q with a message", body.Error, wantCode)
	}
}

func wantOK(t *testing.T, status int, raw []byte) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d, want 200 (body %s)", status, raw)
	}
}

// createTask creates a task with key and returns its task and start run.
func (e *env) createTask(t *testing.T, key string) (trakkar.Task, trakkar.Run) {
	t.Helper()
	task, run, err := e.s.CreateTask(NewTask{Key: key, Title: "Title of " + key, Description: "do it"})
	if err != nil {
		t.Fatalf("create task %s: %v", key, err)
	}
	return task, run
}

func (e *env) claim(t *testing.T, runID, runner string) (int, []byte) {
	t.Helper()
	return e.do(t, "POST", "/v1/agent/runs/"+runID+"/claim",
		map[string]any{"runner": map[string]string{"id": runner, "hostname": "host", "version": "test"}})
}

// claimed creates a task and claims its start run with runner "r1".
func (e *env) claimed(t *testing.T, key string) (trakkar.Task, trakkar.Run) {
	t.Helper()
	task, run := e.createTask(t, key)
	status, raw := e.claim(t, run.ID, "r1")
	wantOK(t, status, raw)
	return task, run
}

func (e *env) heartbeat(t *testing.T, runID, state string) (int, []byte) {
	t.Helper()
	return e.do(t, "POST", "/v1/agent/runs/"+runID+"/heartbeat", map[string]string{"state": state})
}

func (e *env) events(t *testing.T, runID string, events ...trakkar.Event) (int, []byte) {
	t.Helper()
	return e.do(t, "POST", "/v1/agent/runs/"+runID+"/events", map[string]any{"events": events})
}

func (e *env) complete(t *testing.T, runID string, c any) (int, []byte) {
	t.Helper()
	return e.do(t, "POST", "/v1/agent/runs/"+runID+"/complete", c)
}

func ev(seq int64, text string) trakkar.Event {
	return trakkar.Event{Seq: seq, At: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Type: trakkar.EventLog, Text: text}
}

func (e *env) runView(t *testing.T, runID string) RunView {
	t.Helper()
	v, ok := e.s.Run(runID)
	if !ok {
		t.Fatalf("run %s not found", runID)
	}
	return v
}

func ackedSeq(t *testing.T, status int, raw []byte) int64 {
	t.Helper()
	wantOK(t, status, raw)
	v := decode[map[string]int64](t, raw)
	acked, ok := v["acked_seq"]
	if !ok {
		t.Fatalf("no acked_seq in %s", raw)
	}
	return acked
}

func seqs(events []trakkar.Event) string {
	return fmt.Sprint(func() []int64 {
		out := []int64{}
		for _, e := range events {
			out = append(out, e.Seq)
		}
		return out
	}())
}

// newServer serves h on loopback for the test's lifetime. For a *Server, Close
// runs first so that waiting long polls do not hold up the shutdown.
func newServer(t *testing.T, h any) *httptest.Server {
	t.Helper()
	var ts *httptest.Server
	switch v := h.(type) {
	case *Server:
		ts = httptest.NewServer(v.Handler())
		t.Cleanup(func() {
			v.Close()
			ts.Close()
		})
	case http.Handler:
		ts = httptest.NewServer(v)
		t.Cleanup(ts.Close)
	default:
		t.Fatalf("newServer: unsupported %T", h)
	}
	return ts
}

// mustRequest is an authenticated agent request without a body.
func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Trakkar-Agent-Protocol", "1")
	return req
}

func decodeReader(res *http.Response, v any) error {
	return json.NewDecoder(res.Body).Decode(v)
}

// mustOK and acked take a call's (status, body) directly: mustOK(t)(e.claim(…)).
func mustOK(t *testing.T) func(int, []byte) {
	t.Helper()
	return func(status int, raw []byte) {
		t.Helper()
		wantOK(t, status, raw)
	}
}

func acked(t *testing.T) func(int, []byte) int64 {
	t.Helper()
	return func(status int, raw []byte) int64 {
		t.Helper()
		return ackedSeq(t, status, raw)
	}
}
