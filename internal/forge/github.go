package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
)

const (
	userAgent  = "trakkar-agent"
	apiVersion = "2022-11-28"

	maxAttempts    = 4                // per request: 1 + 3 retries on 5xx/network errors
	maxRetryWait   = 60 * time.Second // a longer Retry-After / rate-limit reset is not waited for
	maxBody        = 8 << 20
	defaultTimeout = 30 * time.Second
)

// GitHub is a minimal REST client for pull requests.
type GitHub struct {
	// BaseURL is the API base (https://api.github.com, https://ghe/api/v3, a test
	// server). Empty means APIBaseFor(repo).
	BaseURL string
	Token   string
	HTTP    *http.Client // nil: a client with a 30 s timeout
	Logger  *zap.Logger

	backoff time.Duration                              // first retry delay; 0 means 500ms (tests shorten it)
	sleep   func(context.Context, time.Duration) error // nil means backoff.Sleep (tests record waits)
}

// PR is a pull request as the supervisor needs it.
type PR struct {
	Number int
	URL    string // html_url
	Draft  bool
	Head   string
	Base   string
	State  string
}

// NewPR describes a pull request to open. Head is the branch name in the same repo.
type NewPR struct {
	Title, Body, Head, Base string
	Draft                   bool
}

// APIError is a non-2xx answer from GitHub.
type APIError struct {
	Method, Path string
	Status       int
	Message      string   // GitHub's "message"
	Details      []string // messages/codes from GitHub's "errors" array
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("github %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if len(e.Details) > 0 {
		s += " (" + strings.Join(e.Details, "; ") + ")"
	}
	return s
}

type prJSON struct {
	Number  int    `json:"number"`
	HTMLURL string `json:"html_url"`
	State   string `json:"state"`
	Draft   bool   `json:"draft"`
	Head    struct {
		Ref string `json:"ref"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

func (p prJSON) pr() *PR {
	return &PR{Number: p.Number, URL: p.HTMLURL, Draft: p.Draft, Head: p.Head.Ref, Base: p.Base.Ref, State: p.State}
}

// FindOpenPR returns the open pull request whose head is branch head of r, or nil.
func (g *GitHub) FindOpenPR(ctx context.Context, r Repo, head string) (*PR, error) {
	if head == "" {
		return nil, errors.New("find pr: empty head branch")
	}
	q := url.Values{"state": {"open"}, "head": {r.Owner + ":" + head}, "per_page": {"100"}}
	var list []prJSON
	if err := g.do(ctx, r, http.MethodGet, "/pulls?"+q.Encode(), nil, &list); err != nil {
		return nil, fmt.Errorf("find pr: %w", err)
	}
	for _, p := range list {
		if p.Head.Ref == head && p.State == "open" {
			return p.pr(), nil
		}
	}
	return nil, nil
}

// CreatePR opens a pull request. If one already exists for the head branch (GitHub's
// 422 "A pull request already exists"), the existing open one is returned.
func (g *GitHub) CreatePR(ctx context.Context, r Repo, p NewPR) (*PR, error) {
	if p.Title == "" || p.Head == "" || p.Base == "" {
		return nil, errors.New("create pr: title, head and base are required")
	}
	body := map[string]any{"title": p.Title, "body": p.Body, "head": p.Head, "base": p.Base, "draft": p.Draft}
	var out prJSON
	err := g.do(ctx, r, http.MethodPost, "/pulls", body, &out)
	if err == nil {
		g.logger().Info("pull request created", zap.String("repo", r.String()), zap.Int("number", out.Number))
		return out.pr(), nil
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity && ae.alreadyExists() {
		existing, ferr := g.FindOpenPR(ctx, r, p.Head)
		if ferr != nil {
			return nil, fmt.Errorf("create pr: %w (then %w)", err, ferr)
		}
		if existing != nil {
			g.logger().Info("pull request already open", zap.String("repo", r.String()), zap.Int("number", existing.Number))
			return existing, nil
		}
	}
	return nil, fmt.Errorf("create pr: %w", err)
}

// UpdatePR sets the title and body of pull request number.
func (g *GitHub) UpdatePR(ctx context.Context, r Repo, number int, title, body string) (*PR, error) {
	if number <= 0 {
		return nil, fmt.Errorf("update pr: invalid number %d", number)
	}
	var out prJSON
	if err := g.do(ctx, r, http.MethodPatch, "/pulls/"+strconv.Itoa(number),
		map[string]any{"title": title, "body": body}, &out); err != nil {
		return nil, fmt.Errorf("update pr: %w", err)
	}
	return out.pr(), nil
}

func (e *APIError) alreadyExists() bool {
	if strings.Contains(e.Message, "already exists") {
		return true
	}
	for _, d := range e.Details {
		if strings.Contains(d, "A pull request already exists") {
			return true
		}
	}
	return false
}

// do sends one API request under /repos/{owner}/{name}, retrying network errors and
// 5xx answers a few times and waiting out short rate limits.
func (g *GitHub) do(ctx context.Context, r Repo, method, suffix string, in, out any) error {
	if g.Token == "" {
		return errors.New("no GitHub token")
	}
	if !validOwner(r.Owner) || !validName(r.Name) {
		return fmt.Errorf("invalid repository %q/%q", r.Owner, r.Name)
	}
	base := strings.TrimRight(g.BaseURL, "/")
	if base == "" {
		if r.Host == "" {
			return errors.New("no API base URL and no host")
		}
		base = APIBaseFor(r)
	}
	path := "/repos/" + url.PathEscape(r.Owner) + "/" + url.PathEscape(r.Name) + suffix
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	logPath, _, _ := strings.Cut(path, "?")
	// Failures wait 500ms doubling to 5s, exactly; rate-limit waits do not count.
	policy := backoff.Policy{Base: g.backoff, Max: 5 * time.Second}
	if policy.Base <= 0 {
		policy.Base = 500 * time.Millisecond
	}
	limited := false // the last attempt was rate limited
	retry := backoff.Retry{Policy: policy, MaxAttempts: maxAttempts, Sleep: g.wait,
		Notify: func(attempt int, wait time.Duration, err error) {
			if limited {
				g.logger().Warn("github rate limited; waiting", zap.String("path", logPath), zap.Duration("wait", wait))
				return
			}
			g.logger().Warn("github request failed; retrying", zap.String("path", logPath),
				zap.Int("attempt", attempt), zap.Error(err))
		}}
	err := retry.Do(ctx, func(ctx context.Context, _ int) error {
		limited = false
		status, hdr, body, err := g.once(ctx, method, base+path, payload)
		if err != nil {
			if ctx.Err() != nil {
				return backoff.Permanent(fmt.Errorf("github %s %s: %w", method, logPath, ctx.Err()))
			}
			return fmt.Errorf("github %s %s: %w", method, logPath, err)
		}
		if status >= 200 && status < 300 {
			if out == nil || len(bytes.TrimSpace(body)) == 0 {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				return backoff.Permanent(fmt.Errorf("github %s %s: decode response: %w", method, logPath, err))
			}
			return nil
		}
		apiErr := newAPIError(method, logPath, status, body)
		wait, isLimit := rateLimitWait(status, hdr, time.Now())
		switch {
		case isLimit && wait <= maxRetryWait:
			limited = true
			return backoff.After(wait, apiErr)
		case isLimit:
			return backoff.Permanent(fmt.Errorf("%w: rate limited for %s", apiErr, wait.Round(time.Second)))
		case status >= 500:
			return apiErr
		default:
			return backoff.Permanent(apiErr)
		}
	})
	var ex *backoff.ExhaustedError
	if errors.As(err, &ex) {
		return ex.Err // the caller's message is GitHub's answer, not the loop's
	}
	return err
}

// once performs a single HTTP exchange.
func (g *GitHub) once(ctx context.Context, method, u string, payload []byte) (int, http.Header, []byte, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.Token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	req.Header.Set("User-Agent", userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := g.HTTP
	if client == nil {
		client = &http.Client{Timeout: defaultTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		// url.Error carries the URL only; the token is in a header, never in it.
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

func newAPIError(method, path string, status int, body []byte) *APIError {
	e := &APIError{Method: method, Path: path, Status: status}
	var parsed struct {
		Message string `json:"message"`
		Errors  []struct {
			Message  string `json:"message"`
			Code     string `json:"code"`
			Field    string `json:"field"`
			Resource string `json:"resource"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &parsed) == nil {
		e.Message = parsed.Message
		for _, d := range parsed.Errors {
			switch {
			case d.Message != "":
				e.Details = append(e.Details, d.Message)
			case d.Field != "":
				e.Details = append(e.Details, d.Field+" "+d.Code)
			case d.Code != "":
				e.Details = append(e.Details, d.Code)
			}
		}
	} else if s := strings.TrimSpace(string(body)); s != "" {
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		e.Message = s
	}
	return e
}

// rateLimitWait reports whether the answer is a rate limit and how long to wait:
// 429, or 403 with Retry-After or x-ratelimit-remaining: 0 (a plain 403 is a
// permission problem and is not retried).
func rateLimitWait(status int, h http.Header, now time.Time) (time.Duration, bool) {
	if status != http.StatusTooManyRequests && status != http.StatusForbidden {
		return 0, false
	}
	if d, ok := backoff.RetryAfter(h, now); ok {
		return d, true
	}
	if h.Get("X-Ratelimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			return max(time.Unix(reset, 0).Sub(now), 0) + time.Second, true
		}
		return time.Minute, true
	}
	if status == http.StatusTooManyRequests {
		return time.Minute, true
	}
	return 0, false
}

func (g *GitHub) wait(ctx context.Context, d time.Duration) error {
	if g.sleep != nil {
		return g.sleep(ctx, d)
	}
	return backoff.Sleep(ctx, d)
}

func (g *GitHub) logger() *zap.Logger {
	if g.Logger == nil {
		return zap.NewNop()
	}
	return g.Logger.Named("forge")
}
