package trakkar

import (
	"context"
	"errors"
	"net"
	"net/http"
)

// RequestObserver hears how each request attempt went, retries included; the
// runner's metrics and /healthz are built on it.
type RequestObserver interface {
	// Reached: Trakkar answered (any answer but a 5xx or a 408, which a proxy
	// in front of it may give as well).
	Reached()
	// RequestFailed: the attempt failed; kind is one of the Kind* below.
	RequestFailed(kind string)
}

// Kinds of failed requests, as RequestFailed names them.
const (
	KindNetwork      = "network"      // no answer: refused, reset, DNS…
	KindTimeout      = "timeout"      // no answer in time
	KindServer       = "server"       // 5xx or 408
	KindRateLimited  = "rate_limited" // 429
	KindUnauthorized = "unauthorized" // 401 or 403: the token is refused
	KindNotFound     = "not_found"    // 404
	KindConflict     = "conflict"     // 409: already claimed, lease lost
	KindGone         = "gone"         // 410: the run ended
	KindRejected     = "rejected"     // any other 4xx
	KindBadResponse  = "bad_response" // an answer too large to read
)

// observe tells the observer how one attempt went. An attempt cut short by
// the caller (shutdown, a drained long poll) is no failure of Trakkar's.
func (c *Client) observe(ctx context.Context, status int, err error) {
	if c.obs == nil || ctx.Err() != nil {
		return
	}
	if err != nil {
		c.obs.RequestFailed(errorKind(err))
		return
	}
	if status < 500 && status != http.StatusRequestTimeout {
		c.obs.Reached()
	}
	if k := statusKind(status); k != "" {
		c.obs.RequestFailed(k)
	}
}

func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errBodyTooLarge):
		return KindBadResponse
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	}
	return KindNetwork
}

// statusKind is the kind of a failed answer; "" for a 2xx. A 3xx (redirects
// are not followed) counts as rejected.
func statusKind(status int) string {
	switch {
	case status >= 200 && status <= 299:
		return ""
	case status >= 500, status == http.StatusRequestTimeout:
		return KindServer
	case status == http.StatusTooManyRequests:
		return KindRateLimited
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return KindUnauthorized
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusConflict:
		return KindConflict
	case status == http.StatusGone:
		return KindGone
	}
	return KindRejected
}
