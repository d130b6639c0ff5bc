package trakkar

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
	// MaxPollWait is the longest long-poll wait the contract allows.
	MaxPollWait = 30 * time.Second

	defaultRequestTimeout = 60 * time.Second
	// pollTimeoutMargin is added to MaxPollWait for the long-poll request
	// timeout, so a server that answers at the end of the wait is not cut off.
	pollTimeoutMargin = 30 * time.Second

	maxResponseBody = 8 << 20
	maxErrorBody    = 64 << 10
)

// errBodyTooLarge is not retried: the same request would get the same answer.
var errBodyTooLarge = fmt.Errorf("response body larger than %d MiB", maxResponseBody>>20)

// Options configures a Client.
type Options struct {
	BaseURL    string        // e.g. https://api.trakkar.in (no trailing slash needed)
	Token      string        // bearer token trk_agent_…
	Version    string        // used in User-Agent: trakkar-agent-go/<Version>
	HTTPClient *http.Client  // nil → a client with sane timeouts (request timeout exceeds the long-poll wait)
	Logger     *zap.Logger   // nil → zap.NewNop()
	MaxBackoff time.Duration // cap of exponential backoff, default 30s (start 500ms, doubling, full jitter)
	MaxElapsed time.Duration // stop retrying a call after this long, default 2m; ctx cancellation always wins
}

// Client calls the Trakkar agent API. It is safe for concurrent use. Every call
// is idempotent per the contract, so every call is retried on 5xx, 408, 429 and
// network errors; other non-2xx answers are returned at once as *APIError.
type Client struct {
	base       string
	token      string
	userAgent  string
	hc         *http.Client
	pollHC     *http.Client
	log        *zap.Logger
	retry      backoff.Policy
	maxElapsed time.Duration
}

// NewClient validates opts and returns a client.
func NewClient(opts Options) (*Client, error) {
	base, err := validateBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := validateToken(opts.Token); err != nil {
		return nil, err
	}
	version := strings.TrimSpace(opts.Version)
	if version == "" {
		version = "dev"
	}
	c := &Client{
		base:       base,
		token:      opts.Token,
		userAgent:  "trakkar-agent-go/" + version,
		hc:         opts.HTTPClient,
		log:        opts.Logger,
		maxElapsed: opts.MaxElapsed,
	}
	if c.hc == nil {
		c.hc = defaultHTTPClient()
	}
	c.pollHC = c.hc
	if t := c.hc.Timeout; t != 0 && t <= MaxPollWait+time.Second {
		// A shorter overall timeout would cut every long poll; widen it for
		// Queued only, sharing the caller's transport.
		pc := *c.hc
		pc.Timeout = MaxPollWait + pollTimeoutMargin
		c.pollHC = &pc
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.Named("trakkar")
	maxBackoff := opts.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = defaultMaxBackoff
	}
	if c.maxElapsed <= 0 {
		c.maxElapsed = defaultMaxElapsed
	}
	c.retry = backoff.Policy{Base: min(initialBackoff, maxBackoff), Max: maxBackoff, Jitter: backoff.Full}
	return c, nil
}

func validateBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("trakkar base URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("trakkar base URL %q is invalid", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("trakkar base URL %q must be an absolute http or https URL", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("trakkar base URL %q has no host", raw)
	}
	if u.User != nil {
		return "", errors.New("trakkar base URL must not contain credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("trakkar base URL %q must not have a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// validateToken never puts the token into its error.
func validateToken(tok string) error {
	if tok == "" {
		return errors.New("trakkar agent token is empty")
	}
	for _, r := range tok {
		if r <= ' ' || r == 0x7f {
			return errors.New("trakkar agent token contains whitespace or control characters")
		}
	}
	return nil
}

func defaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{
		Transport: tr,
		Timeout:   defaultRequestTimeout,
		// Redirects are not part of the contract; following one could send
		// the bearer token, or a POST turned GET, somewhere unexpected.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Me returns the agent's settings (GET /v1/agent/me).
func (c *Client) Me(ctx context.Context) (Agent, error) {
	body, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/agent/me"})
	if err != nil {
		return Agent{}, fmt.Errorf("get agent: %w", err)
	}
	a, err := decodeAgent(body)
	if err != nil {
		return Agent{}, fmt.Errorf("get agent: %w", err)
	}
	return a, nil
}

// Queued lists queued runs, oldest first. wait > 0 makes it a long poll; it is
// sent in whole seconds (rounded up) clamped to 0..30. limit ≤ 0 lets the server
// choose.
func (c *Client) Queued(ctx context.Context, wait time.Duration, limit int) ([]Run, error) {
	q := url.Values{}
	q.Set("wait", strconv.Itoa(waitSeconds(wait)))
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	body, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/agent/runs/queued", query: q.Encode(), poll: true})
	if err != nil {
		return nil, fmt.Errorf("poll queued runs: %w", err)
	}
	runs, err := decodeRuns(body)
	if err != nil {
		return nil, fmt.Errorf("poll queued runs: %w", err)
	}
	return runs, nil
}

func waitSeconds(wait time.Duration) int {
	if wait <= 0 {
		return 0
	}
	if wait >= MaxPollWait {
		return int(MaxPollWait / time.Second)
	}
	return int((wait + time.Second - 1) / time.Second)
}

// Claim claims a queued run for runner r. See IsAlreadyClaimed and IsGone.
func (c *Client) Claim(ctx context.Context, runID string, r Runner) (Claim, error) {
	body, err := c.runCall(ctx, runID, "claim", map[string]Runner{"runner": r})
	if err != nil {
		return Claim{}, fmt.Errorf("claim run %q: %w", runID, err)
	}
	cl, err := decodeClaim(body)
	if err != nil {
		return Claim{}, fmt.Errorf("claim run %q: %w", runID, err)
	}
	return cl, nil
}

// Heartbeat renews the lease. See IsLeaseLost and IsGone.
func (c *Client) Heartbeat(ctx context.Context, runID, state string) (HeartbeatReply, error) {
	body, err := c.runCall(ctx, runID, "heartbeat", map[string]string{"state": state})
	if err != nil {
		return HeartbeatReply{}, fmt.Errorf("heartbeat run %q: %w", runID, err)
	}
	hb, err := decodeHeartbeat(body)
	if err != nil {
		return HeartbeatReply{}, fmt.Errorf("heartbeat run %q: %w", runID, err)
	}
	return hb, nil
}

// PostEvents sends one batch (at most MaxEventsPerRequest events) and returns
// the highest contiguous seq Trakkar has stored for the run.
func (c *Client) PostEvents(ctx context.Context, runID string, evs []Event) (int64, error) {
	if len(evs) > MaxEventsPerRequest {
		return 0, fmt.Errorf("post events for run %q: %d events exceed the limit of %d", runID, len(evs), MaxEventsPerRequest)
	}
	if evs == nil {
		evs = []Event{}
	}
	body, err := c.runCall(ctx, runID, "events", map[string][]Event{"events": evs})
	if err != nil {
		return 0, fmt.Errorf("post events for run %q: %w", runID, err)
	}
	acked, err := decodeAcked(body)
	if err != nil {
		return 0, fmt.Errorf("post events for run %q: %w", runID, err)
	}
	return acked, nil
}

// Complete reports the final outcome. See IsGone.
func (c *Client) Complete(ctx context.Context, runID string, comp Completion) (Run, error) {
	body, err := c.runCall(ctx, runID, "complete", comp)
	if err != nil {
		return Run{}, fmt.Errorf("complete run %q: %w", runID, err)
	}
	run, err := decodeRun(body)
	if err != nil {
		return Run{}, fmt.Errorf("complete run %q: %w", runID, err)
	}
	return run, nil
}

func (c *Client) runCall(ctx context.Context, runID, action string, in any) ([]byte, error) {
	switch runID {
	case "":
		return nil, errors.New("empty run id")
	case ".", "..":
		// PathEscape keeps dots, and a dot segment would address another path.
		return nil, errors.New("invalid run id")
	}
	payload, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	if len(payload) > MaxEventsBytes && action == "events" {
		return nil, fmt.Errorf("request body of %d bytes exceeds the limit of %d", len(payload), MaxEventsBytes)
	}
	return c.call(ctx, request{
		method: http.MethodPost,
		path:   "/v1/agent/runs/" + url.PathEscape(runID) + "/" + action,
		body:   payload,
	})
}

type request struct {
	method string
	path   string // already escaped
	query  string // already encoded
	body   []byte // nil for GET
	poll   bool
}

// call performs r with retries and returns the body of a 2xx answer.
func (c *Client) call(ctx context.Context, r request) ([]byte, error) {
	var out []byte
	lastStatus := 0 // 0: a network error
	retry := backoff.Retry{Policy: c.retry, MaxElapsed: c.maxElapsed,
		Notify: func(attempt int, wait time.Duration, err error) {
			c.log.Debug("retrying trakkar request", zap.String("method", r.method), zap.String("path", r.path),
				zap.Int("status", lastStatus), zap.Int("attempt", attempt), zap.Duration("backoff", wait), zap.Error(err))
		}}
	err := retry.Do(ctx, func(ctx context.Context, _ int) error {
		status, hdr, body, err := c.once(ctx, r)
		lastStatus = status
		if err == nil && status >= 200 && status <= 299 {
			out = body
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return backoff.Permanent(ctxErr)
		}
		switch {
		case errors.Is(err, errBodyTooLarge):
			return backoff.Permanent(err)
		case err != nil:
			return redactErr(err, c.token)
		case status == http.StatusTooManyRequests:
			if ra, ok := retryAfter(hdr, time.Now()); ok {
				return backoff.After(ra, decodeAPIError(status, body, c.token))
			}
			return decodeAPIError(status, body, c.token)
		case status >= 500 || status == http.StatusRequestTimeout:
			return decodeAPIError(status, body, c.token)
		default:
			return backoff.Permanent(decodeAPIError(status, body, c.token))
		}
	})
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, err
}

// once performs a single HTTP exchange. status is 0 on a network error.
func (c *Client) once(ctx context.Context, r request) (int, http.Header, []byte, error) {
	u := c.base + r.path
	if r.query != "" {
		u += "?" + r.query
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Trakkar-Agent-Protocol", Protocol)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	hc := c.hc
	if r.poll {
		hc = c.pollHC
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()

	limit := int64(maxResponseBody)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		limit = maxErrorBody
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(data)) > limit {
		if limit == maxErrorBody {
			// Only the start of an error body is needed for its code and message.
			return resp.StatusCode, resp.Header, data[:limit], nil
		}
		return 0, nil, nil, errBodyTooLarge
	}
	return resp.StatusCode, resp.Header, data, nil
}
