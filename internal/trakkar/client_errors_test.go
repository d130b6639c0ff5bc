package trakkar

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClientErrorStatuses(t *testing.T) {
	tests := []struct {
		status      int
		code        string
		unauth      bool
		gone        bool
		leaseLost   bool
		claimed     bool
		notFound    bool
		wantErrText string
	}{
		{status: 400, code: "bad_request", wantErrText: "trakkar: 400 bad_request: boom"},
		{status: 401, code: "invalid_token", unauth: true, wantErrText: "trakkar: 401 invalid_token: boom"},
		{status: 403, code: "forbidden", wantErrText: "trakkar: 403 forbidden: boom"},
		{status: 404, code: "not_found", notFound: true, wantErrText: "trakkar: 404 not_found: boom"},
		{status: 409, code: "lease_lost", leaseLost: true, wantErrText: "trakkar: 409 lease_lost: boom"},
		{status: 409, code: "already_claimed", claimed: true, wantErrText: "trakkar: 409 already_claimed: boom"},
		{status: 410, code: "gone", gone: true, wantErrText: "trakkar: 410 gone: boom"},
		{status: 422, code: "", wantErrText: "trakkar: 422: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.wantErrText, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				writeAPIError(w, tt.status, tt.code, "boom")
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL, nil)
			_, err := c.Heartbeat(context.Background(), "run_1", StateRunning)
			if err == nil {
				t.Fatal("no error")
			}
			if n.Load() != 1 {
				t.Errorf("attempts = %d, want 1 (no retry)", n.Load())
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tt.status || ae.Code != tt.code {
				t.Fatalf("err = %#v, want APIError %d %s", err, tt.status, tt.code)
			}
			if ae.Error() != tt.wantErrText {
				t.Errorf("Error() = %q, want %q", ae.Error(), tt.wantErrText)
			}
			checks := []struct {
				name      string
				got, want bool
			}{
				{"ErrUnauthorized", errors.Is(err, ErrUnauthorized), tt.unauth},
				{"IsGone", IsGone(err), tt.gone},
				{"IsLeaseLost", IsLeaseLost(err), tt.leaseLost},
				{"IsAlreadyClaimed", IsAlreadyClaimed(err), tt.claimed},
				{"IsNotFound", IsNotFound(err), tt.notFound},
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
				}
			}
			assertNoToken(t, err)
		})
	}
}

func TestClientRedirectNotFollowed(t *testing.T) {
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
		writeJSON(w, 200, map[string]any{"agent": map[string]any{"id": "agt_evil"}})
	}))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL+"/v1/agent/me", http.StatusFound))
	defer srv.Close()
	c := newTestClient(t, srv.URL, nil)
	_, err := c.Me(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusFound {
		t.Fatalf("err = %v, want an APIError 302", err)
	}
	if leaked.Load() {
		t.Error("redirect was followed with the token")
	}
}
func TestClientMalformedBodies(t *testing.T) {
	huge := func(w http.ResponseWriter) {
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"runs": [], "pad": "`)
		chunk := strings.Repeat("x", 1<<20)
		for range 20 {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `"}`)
	}
	tests := []struct {
		name  string
		write func(w http.ResponseWriter)
	}{
		{"wrong type", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"runs": "nope"}`) }},
		{"wrong element type", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"runs": [{"id": 5}]}`) }},
		{"bad time", func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, `{"runs": [{"id": "r", "created_at": "yesterday"}]}`)
		}},
		{"truncated", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"runs": [{"id": "r"`) }},
		{"empty", func(w http.ResponseWriter) {}},
		{"null", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `null`) }},
		{"array", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `[]`) }},
		{"missing runs", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"items": []}`) }},
		{"run without id", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"runs": [{"task_id": "t"}]}`) }},
		{"html", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `<html>proxy login</html>`) }},
		{"trailing garbage", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"runs": []} {"runs": []}`) }},
		{"20 MiB", huge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				tt.write(w)
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL, nil)
			runs, err := c.Queued(context.Background(), 0, 0)
			if err == nil {
				t.Fatalf("no error; runs = %+v", runs)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err)
			}
			if n.Load() != 1 {
				t.Errorf("attempts = %d, want 1", n.Load())
			}
			assertNoToken(t, err)
		})
	}
}

func TestClientMalformedBodiesPerEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/agent/me":
			_, _ = io.WriteString(w, `{"agent": {"id": "a", "max_concurrency": "six"}}`)
		case strings.HasSuffix(r.URL.Path, "/claim"):
			_, _ = io.WriteString(w, `{"run": {"id": "r"}, "lease_seconds": 60}`) // no task
		case strings.HasSuffix(r.URL.Path, "/heartbeat"):
			_, _ = io.WriteString(w, `{"stop_requested": "yes"}`)
		case strings.HasSuffix(r.URL.Path, "/events"):
			_, _ = io.WriteString(w, `{"acked_seq": -1}`)
		case strings.HasSuffix(r.URL.Path, "/complete"):
			_, _ = io.WriteString(w, `{"run": null}`)
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, nil)
	ctx := context.Background()
	calls := map[string]func() error{
		"me":        func() error { _, err := c.Me(ctx); return err },
		"claim":     func() error { _, err := c.Claim(ctx, "r", Runner{}); return err },
		"heartbeat": func() error { _, err := c.Heartbeat(ctx, "r", StateRunning); return err },
		"events":    func() error { _, err := c.PostEvents(ctx, "r", nil); return err },
		"complete":  func() error { _, err := c.Complete(ctx, "r", Completion{}); return err },
	}
	for name, call := range calls {
		if err := call(); err == nil {
			t.Errorf("%s: no error for a malformed body", name)
		} else {
			assertNoToken(t, err)
		}
	}
}

func TestClientDefaultsLease(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"stop_requested": false}`)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, nil)
	hb, err := c.Heartbeat(context.Background(), "r", StateRunning)
	if err != nil || hb.LeaseSeconds != DefaultLeaseSeconds {
		t.Fatalf("Heartbeat = %+v, %v", hb, err)
	}
}

func TestClientMaxElapsed(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		writeAPIError(w, 500, "internal", "down")
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, func(o *Options) {
		o.MaxBackoff = 20 * time.Millisecond
		o.MaxElapsed = 300 * time.Millisecond
	})
	start := time.Now()
	_, err := c.Me(context.Background())
	el := time.Since(start)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 500 {
		t.Fatalf("err = %v, want the last 500", err)
	}
	if !strings.Contains(err.Error(), "giving up after") {
		t.Errorf("err = %q", err)
	}
	// Bounds a failure only (retrying past MaxElapsed); slack for a loaded host.
	if el > 10*time.Second {
		t.Errorf("took %v with MaxElapsed 300ms", el)
	}
	if n.Load() < 3 {
		t.Errorf("attempts = %d, want several", n.Load())
	}
}

func TestClientContextCancelWins(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, 503, "unavailable", "down")
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, func(o *Options) { o.MaxElapsed = time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Me(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's error", err)
	}
	// Far below MaxElapsed, with slack for a loaded host.
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %v after the context ended", el)
	}
}

func TestClientNeverLeaksToken(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"echoed in 400", func(w http.ResponseWriter, r *http.Request) {
			writeAPIError(w, 400, "bad_request", "you sent "+r.Header.Get("Authorization"))
		}},
		{"echoed in 401 code", func(w http.ResponseWriter, r *http.Request) {
			writeAPIError(w, 401, r.Header.Get("Authorization"), "no")
		}},
		{"echoed in 500", func(w http.ResponseWriter, r *http.Request) {
			writeAPIError(w, 500, "x", r.Header.Get("Authorization"))
		}},
		{"echoed in plain body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(403)
			_, _ = io.WriteString(w, r.Header.Get("Authorization"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := newTestClient(t, srv.URL, func(o *Options) { o.MaxElapsed = 50 * time.Millisecond })
			_, err := c.Me(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			assertNoToken(t, err)
			if ae, ok := asAPIError(err); ok {
				if strings.Contains(ae.Code+ae.Message, testToken) {
					t.Errorf("APIError fields leak the token: %+v", ae)
				}
			}
		})
	}
	// Network errors: nothing listens on the port.
	srv := httptest.NewServer(http.NotFoundHandler())
	deadURL := srv.URL
	srv.Close()
	c := newTestClient(t, deadURL, func(o *Options) { o.MaxElapsed = 50 * time.Millisecond })
	_, err := c.Claim(context.Background(), "run_1", Runner{})
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	assertNoToken(t, err)
}

func TestRedactErr(t *testing.T) {
	inner := errors.New("bad header Bearer " + testToken)
	err := redactErr(inner, testToken)
	if strings.Contains(err.Error(), testToken) || !strings.Contains(err.Error(), redacted) {
		t.Errorf("redactErr = %q", err)
	}
	if !errors.Is(err, inner) {
		t.Error("redactErr broke the error chain")
	}
	if redactErr(nil, testToken) != nil {
		t.Error("redactErr(nil) != nil")
	}
}
