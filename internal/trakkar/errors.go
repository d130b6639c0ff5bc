package trakkar

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
)

// ErrUnauthorized matches (errors.Is) every 401 answer: the token is wrong or
// revoked, which is fatal for the whole runner.
var ErrUnauthorized = errors.New("trakkar: unauthorized (invalid agent token)")

// APIError is a non-2xx answer of the Trakkar API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("trakkar: %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("trakkar: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is makes errors.Is(err, ErrUnauthorized) true for every 401.
func (e *APIError) Is(target error) bool {
	return target == ErrUnauthorized && e.Status == http.StatusUnauthorized
}

func asAPIError(err error) (*APIError, bool) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae, true
	}
	return nil, false
}

// IsGone reports a 410: the run was cancelled or ended; stop reporting for it.
func IsGone(err error) bool {
	ae, ok := asAPIError(err)
	return ok && ae.Status == http.StatusGone
}

// IsLeaseLost reports a 409 lease_lost: this runner no longer owns the run.
func IsLeaseLost(err error) bool {
	ae, ok := asAPIError(err)
	return ok && ae.Status == http.StatusConflict && ae.Code == "lease_lost"
}

// IsAlreadyClaimed reports a 409 already_claimed: another runner has the run.
func IsAlreadyClaimed(err error) bool {
	ae, ok := asAPIError(err)
	return ok && ae.Status == http.StatusConflict && ae.Code == "already_claimed"
}

// IsRefused reports a 4xx answer that no resend of the same request can
// change: not 408 (timeout), 409 (lease or claim outcomes), 410 (gone) or 429
// (slow down).
func IsRefused(err error) bool {
	ae, ok := asAPIError(err)
	if !ok || ae.Status < 400 || ae.Status > 499 {
		return false
	}
	switch ae.Status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusGone, http.StatusTooManyRequests:
		return false
	}
	return true
}

// IsNotFound reports a 404.
func IsNotFound(err error) bool {
	ae, ok := asAPIError(err)
	return ok && ae.Status == http.StatusNotFound
}

// maxErrorMessage bounds what a server message may add to an error string.
const maxErrorMessage = 300

// decodeAPIError builds the error of a non-2xx answer from its (possibly
// malformed) body. token is redacted from the server's text, in case a proxy or
// a buggy server echoes the request headers.
func decodeAPIError(status int, body []byte, token string) *APIError {
	ae := &APIError{Status: status}
	var eb ErrorBody
	if err := json.Unmarshal(body, &eb); err == nil {
		ae.Code = cleanText(eb.Error.Code, token, 64)
		ae.Message = cleanText(eb.Error.Message, token, maxErrorMessage)
	}
	if ae.Message == "" {
		ae.Message = strings.ToLower(http.StatusText(status))
		if ae.Message == "" {
			ae.Message = "unexpected status"
		}
	}
	return ae
}

// cleanText makes server-provided text safe for a one-line error: no token, no
// control characters, bounded length.
func cleanText(s, token string, max int) string {
	s = redact(s, token)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}

const redacted = "[redacted]"

func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, redacted)
}

// redactedError hides the token in an error string while keeping the chain for
// errors.Is/As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redactErr(err error, token string) error {
	if err == nil || token == "" {
		return err
	}
	if msg := err.Error(); strings.Contains(msg, token) {
		return &redactedError{msg: redact(msg, token), err: err}
	}
	return err
}
