package backoff

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Retry is the one retry loop of the runner: it calls an operation until it
// succeeds, fails for good, or a limit ends the loop, waiting Policy's delay
// between attempts. The zero value retries at once, forever.
type Retry struct {
	Policy      Policy
	MaxAttempts int           // attempts in all; <= 0: no limit
	MaxElapsed  time.Duration // give up rather than wait past this since the start; <= 0: no limit
	// Paced counts each delay from the start of the attempt before it rather
	// than its end, so slow attempts do not stretch the schedule.
	Paced bool
	// Notify is told about every failed attempt that will be retried, with
	// the wait before the next one (for logging).
	Notify func(attempt int, wait time.Duration, err error)
	// Sleep replaces the wait in tests; nil means Sleep.
	Sleep func(context.Context, time.Duration) error
}

// Do calls op with the 1-based attempt number until it returns nil. It
// returns at once the error inside Permanent, waits what After asked for
// instead of the policy's delay, and restarts the policy's schedule after an
// error marked Progressed. When a limit ends the loop the error is an
// *ExhaustedError wrapping the last one; when ctx ends during a wait it wraps
// both the last error and ctx's.
func (r Retry) Do(ctx context.Context, op func(ctx context.Context, attempt int) error) error {
	start := time.Now()
	failures := 0
	for attempt := 1; ; attempt++ {
		began := time.Now()
		err := op(ctx, attempt)
		if err == nil {
			return nil
		}
		var p *permanentError
		if errors.As(err, &p) {
			return p.err
		}
		var wait time.Duration
		var a *afterError
		var pr *progressError
		switch {
		case errors.As(err, &a):
			wait, err = a.wait, a.err
		case errors.As(err, &pr):
			failures = 1
			wait, err = r.Policy.Delay(failures), pr.err
		default:
			failures++
			wait = r.Policy.Delay(failures)
		}
		if r.Paced {
			wait = max(wait-time.Since(began), 0)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		elapsed := time.Since(start)
		if (r.MaxAttempts > 0 && attempt >= r.MaxAttempts) || (r.MaxElapsed > 0 && elapsed+wait > r.MaxElapsed) {
			return &ExhaustedError{Attempts: attempt, Elapsed: elapsed, Err: err}
		}
		if r.Notify != nil {
			r.Notify(attempt, wait, err)
		}
		sleep := r.Sleep
		if sleep == nil {
			sleep = Sleep
		}
		if serr := sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (%w)", err, serr)
		}
	}
}

// ExhaustedError says the loop gave up: its limits allow no further attempt.
type ExhaustedError struct {
	Attempts int
	Elapsed  time.Duration
	Err      error // the last attempt's error
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("giving up after %d attempts in %s: %v", e.Attempts, e.Elapsed.Round(time.Millisecond), e.Err)
}

func (e *ExhaustedError) Unwrap() error { return e.Err }

// Permanent marks err as one that retrying cannot change; Do returns err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// After asks Do to wait d (a server's Retry-After, say) before the next
// attempt instead of the policy's delay; such a wait does not advance the
// policy's schedule.
func After(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &afterError{wait: max(d, 0), err: err}
}

// Progressed marks a failure that came after the attempt got somewhere, so
// the wait starts again from the policy's first delay.
func Progressed(err error) error {
	if err == nil {
		return nil
	}
	return &progressError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

type afterError struct {
	wait time.Duration
	err  error
}

func (e *afterError) Error() string { return e.err.Error() }
func (e *afterError) Unwrap() error { return e.err }

type progressError struct{ err error }

func (e *progressError) Error() string { return e.err.Error() }
func (e *progressError) Unwrap() error { return e.err }
