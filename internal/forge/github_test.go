package forge

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/trakkar/trakkar-agent/internal/fakegithub"
)

const token = "ghp_forgeTestToken0123456789"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// sleeps records requested waits instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// setup starts a fake GitHub with acme/app whose bare repo also has branch "feature".
func setup(t *testing.T) (*fakegithub.Server, *GitHub, *sleeps, Repo) {
	t.Helper()
	fg := fakegithub.New(t, token)
	fg.AddRepo(t, "acme", "app", map[string]string{"README.md": "hi\n"})
	for _, b := range []string{"feature", "other"} {
		cmd := exec.Command("git", "--git-dir="+fg.BareDir("acme", "app"), "branch", b, "main")
		cmd.Env = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/nonexistent"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("create branch: %v\n%s", err, out)
		}
	}
	sl := &sleeps{}
	g := &GitHub{BaseURL: fg.URL(), Token: token, Logger: zaptest.NewLogger(t), sleep: sl.sleep}
	return fg, g, sl, Repo{Owner: "acme", Name: "app", Host: "127.0.0.1"}
}

func TestCreateFindUpdate(t *testing.T) {
	t.Parallel()
	fg, g, _, r := setup(t)
	c := testCtx(t)

	if pr, err := g.FindOpenPR(c, r, "feature"); err != nil || pr != nil {
		t.Fatalf("FindOpenPR before create = %+v, %v; want nil", pr, err)
	}
	pr, err := g.CreatePR(c, r, NewPR{Title: "Fix it", Body: "body", Head: "feature", Base: "main", Draft: true})
	if err != nil {
		t.Fatal(err)
	}
	want := PR{Number: 1, URL: fg.URL() + "/acme/app/pull/1", Draft: true, Head: "feature", Base: "main", State: "open"}
	if *pr != want {
		t.Fatalf("CreatePR = %+v, want %+v", *pr, want)
	}
	found, err := g.FindOpenPR(c, r, "feature")
	if err != nil || found == nil || *found != want {
		t.Fatalf("FindOpenPR = %+v, %v; want %+v", found, err, want)
	}
	if other, err := g.FindOpenPR(c, r, "other"); err != nil || other != nil {
		t.Fatalf("FindOpenPR(other) = %+v, %v; want nil", other, err)
	}

	// A second create for the same head returns the existing PR.
	again, err := g.CreatePR(c, r, NewPR{Title: "Fix it again", Head: "feature", Base: "main"})
	if err != nil || *again != want {
		t.Fatalf("duplicate CreatePR = %+v, %v; want the existing %+v", again, err, want)
	}
	if n := len(fg.PRs("acme", "app")); n != 1 {
		t.Fatalf("fake recorded %d PRs, want 1", n)
	}

	upd, err := g.UpdatePR(c, r, 1, "New title", "New body")
	if err != nil || upd.Number != 1 {
		t.Fatalf("UpdatePR = %+v, %v", upd, err)
	}
	rec := fg.PRs("acme", "app")[0]
	if rec.Title != "New title" || rec.Body != "New body" || !rec.Draft || rec.Head != "feature" {
		t.Fatalf("recorded PR after update = %+v", rec)
	}
	if _, err := g.UpdatePR(c, r, 99, "t", "b"); err == nil {
		t.Fatal("UpdatePR(99) succeeded")
	}
}

func TestCreatePRValidationErrors(t *testing.T) {
	t.Parallel()
	_, g, _, r := setup(t)
	c := testCtx(t)
	_, err := g.CreatePR(c, r, NewPR{Title: "t", Head: "no-such-branch", Base: "main"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "head invalid") {
		t.Fatalf("CreatePR(missing head) err = %v; want 422 with the field", err)
	}
	if _, err := g.CreatePR(c, r, NewPR{Head: "feature", Base: "main"}); err == nil {
		t.Fatal("CreatePR without title succeeded")
	}
	if _, err := g.FindOpenPR(c, Repo{Owner: "acme", Name: "nope"}, "feature"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("FindOpenPR(unknown repo) err = %v; want 404", err)
	}
	if _, err := g.FindOpenPR(c, Repo{Owner: "../x", Name: "app"}, "feature"); err == nil {
		t.Fatal("FindOpenPR accepted an invalid owner")
	}
}

func TestBadTokenIs401WithoutLeak(t *testing.T) {
	t.Parallel()
	fg, g, _, r := setup(t)
	bad := "ghp_wrongToken_987654321"
	g.Token = bad
	_, err := g.CreatePR(testCtx(t), r, NewPR{Title: "t", Head: "feature", Base: "main"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Message != "Bad credentials" {
		t.Fatalf("err = %v; want 401 Bad credentials", err)
	}
	if strings.Contains(err.Error(), bad) {
		t.Fatalf("error leaks the token: %v", err)
	}
	if n := fg.Requests(); n != 1 {
		t.Fatalf("a 401 was retried: %d requests", n)
	}
	g.Token = ""
	if _, err := g.FindOpenPR(testCtx(t), r, "feature"); err == nil {
		t.Fatal("request without a token was sent")
	}
}

func TestRetriesServerErrors(t *testing.T) {
	t.Parallel()
	fg, g, sl, r := setup(t)
	g.backoff = time.Millisecond
	fg.FailNext(2, http.StatusBadGateway)
	pr, err := g.CreatePR(testCtx(t), r, NewPR{Title: "t", Head: "feature", Base: "main"})
	if err != nil || pr.Number != 1 {
		t.Fatalf("CreatePR after two 502s = %+v, %v", pr, err)
	}
	if n := fg.Requests(); n != 3 {
		t.Fatalf("requests = %d, want 3", n)
	}
	if got := sl.all(); len(got) != 2 || got[1] != 2*got[0] {
		t.Fatalf("backoff waits = %v, want two doubling waits", got)
	}

	// Persistent failure gives up after maxAttempts with GitHub's status.
	fg.FailNext(maxAttempts, http.StatusServiceUnavailable)
	_, err = g.FindOpenPR(testCtx(t), r, "feature")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Message != "injected failure" {
		t.Fatalf("err = %v; want 503 with GitHub's message", err)
	}
	if n := fg.Requests(); n != 3+maxAttempts {
		t.Fatalf("requests = %d, want %d", n, 3+maxAttempts)
	}
}

func TestRateLimitRetryAfter(t *testing.T) {
	t.Parallel()
	fg, g, sl, r := setup(t)
	fg.FailNext(1, http.StatusTooManyRequests)
	if _, err := g.FindOpenPR(testCtx(t), r, "feature"); err != nil {
		t.Fatal(err)
	}
	if got := sl.all(); len(got) != 1 || got[0] != time.Second {
		t.Fatalf("waits = %v, want [1s] from Retry-After", got)
	}
}

func TestRateLimitWait(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		name    string
		status  int
		hdr     http.Header
		wait    time.Duration
		limited bool
	}{
		{"429 retry-after", 429, h("Retry-After", "7"), 7 * time.Second, true},
		{"403 retry-after", 403, h("Retry-After", "3"), 3 * time.Second, true},
		{"403 primary limit", 403, h("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1700000030"), 31 * time.Second, true},
		{"403 permission", 403, h(), 0, false},
		{"429 bare", 429, h(), time.Minute, true},
		{"500", 500, h("Retry-After", "1"), 0, false},
		{"429 retry-after date", 429, h("Retry-After", now.Add(9*time.Second).UTC().Format(http.TimeFormat)), 9 * time.Second, true},
		{"403 negative retry-after, primary limit", 403, h("Retry-After", "-1", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1700000030"), 31 * time.Second, true},
		// Beyond what a Duration holds: a wrapped, negative wait would be retried at once.
		{"429 huge retry-after", 429, h("Retry-After", "10000000000"), time.Duration(math.MaxInt64), true},
	}
	for _, tc := range cases {
		wait, limited := rateLimitWait(tc.status, tc.hdr, now)
		if wait != tc.wait || limited != tc.limited {
			t.Errorf("%s: = %v, %v; want %v, %v", tc.name, wait, limited, tc.wait, tc.limited)
		}
	}
}

// A long rate limit is reported, not waited for: a primary-limit reset far
// ahead, or a Retry-After too large for a Duration (wrapped, it would be a
// negative wait, retried at once).
func TestLongRateLimitNotWaited(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		hdr    map[string]string
	}{
		{"primary limit resets in 2100", http.StatusForbidden,
			map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4102444800"}},
		{"huge Retry-After", http.StatusTooManyRequests, map[string]string{"Retry-After": "10000000000"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				for k, v := range tc.hdr {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(`{"message":"API rate limit exceeded"}`))
			}))
			defer srv.Close()
			sl := &sleeps{}
			g := &GitHub{BaseURL: srv.URL, Token: token, sleep: sl.sleep}
			_, err := g.FindOpenPR(testCtx(t), Repo{Owner: "o", Name: "r"}, "b")
			if err == nil || !strings.Contains(err.Error(), "rate limited for") || calls.Load() != 1 || len(sl.all()) != 0 {
				t.Fatalf("err = %v, calls = %d, waits = %v; want one call, no wait", err, calls.Load(), sl.all())
			}
		})
	}
}

// Failures wait 500ms doubling to 5s; a rate-limit wait neither counts as a
// failure's wait nor advances the doubling.
func TestRetryWaits(t *testing.T) {
	t.Parallel()
	type answer struct {
		status     int
		retryAfter string
	}
	cases := []struct {
		name    string
		first   time.Duration // GitHub.backoff
		answers []answer
		want    []time.Duration
	}{
		{"doubling", 0, []answer{{500, ""}, {502, ""}, {503, ""}, {500, ""}},
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}},
		{"rate limit between failures", 0, []answer{{500, ""}, {429, "3"}, {500, ""}, {200, ""}},
			[]time.Duration{500 * time.Millisecond, 3 * time.Second, time.Second}},
		{"capped at 5s", 2 * time.Second, []answer{{500, ""}, {500, ""}, {500, ""}, {500, ""}},
			[]time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				a := tc.answers[min(int(calls.Add(1))-1, len(tc.answers)-1)]
				if a.retryAfter != "" {
					w.Header().Set("Retry-After", a.retryAfter)
				}
				w.WriteHeader(a.status)
				_, _ = w.Write([]byte(`[]`))
			}))
			defer srv.Close()
			sl := &sleeps{}
			g := &GitHub{BaseURL: srv.URL, Token: token, sleep: sl.sleep, backoff: tc.first}
			_, _ = g.FindOpenPR(testCtx(t), Repo{Owner: "o", Name: "r"}, "b")
			got := sl.all()
			if len(got) != len(tc.want) {
				t.Fatalf("waits = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("waits = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		if r.URL.Path != "/api/v3/repos/o/r/pulls" || r.URL.Query().Get("head") != "o:b" || r.URL.Query().Get("state") != "open" {
			t.Errorf("unexpected request %s", r.URL)
		}
		_, _ = w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	g := &GitHub{BaseURL: srv.URL + "/api/v3/", Token: token}
	if pr, err := g.FindOpenPR(testCtx(t), Repo{Owner: "o", Name: "r"}, "b"); err != nil || pr != nil {
		t.Fatalf("FindOpenPR = %+v, %v", pr, err)
	}
	h := <-got
	want := map[string]string{
		"Authorization":        "Bearer " + token,
		"Accept":               "application/vnd.github+json",
		"X-Github-Api-Version": "2022-11-28",
		"User-Agent":           "trakkar-agent",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
		}
	}
}

func TestNetworkErrorRetriedThenReported(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // connection refused from now on
	sl := &sleeps{}
	g := &GitHub{BaseURL: base, Token: token, sleep: sl.sleep, backoff: time.Millisecond}
	_, err := g.FindOpenPR(testCtx(t), Repo{Owner: "o", Name: "r"}, "b")
	if err == nil || strings.Contains(err.Error(), token) {
		t.Fatalf("err = %v", err)
	}
	if n := len(sl.all()); n != maxAttempts-1 {
		t.Fatalf("waits = %d, want %d retries", n, maxAttempts-1)
	}
}
