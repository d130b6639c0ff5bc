package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/backoff"
	"github.com/trakkar/trakkar-agent/internal/trakkar"
)

// signals routes SIGINT/SIGTERM. Until a supervisor is running there is
// nothing to drain, so the first signal cancels startup at once; afterwards the
// first drains and the second aborts.
type signals struct {
	ch     chan os.Signal
	stop   chan struct{}
	done   chan struct{}
	abort  context.CancelFunc
	log    *zap.Logger
	mu     sync.Mutex
	drain  func() // set once the supervisor runs
	count  int
	before bool // a signal arrived before the supervisor ran
}

func watchSignals(abort context.CancelFunc, log *zap.Logger) *signals {
	s := &signals{ch: make(chan os.Signal, 2), stop: make(chan struct{}), done: make(chan struct{}), abort: abort, log: log}
	signal.Notify(s.ch, os.Interrupt, syscall.SIGTERM)
	go s.loop()
	return s
}

func (s *signals) loop() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.ch:
		}
		s.mu.Lock()
		s.count++
		n, drain := s.count, s.drain
		if drain == nil {
			s.before = true
		}
		s.mu.Unlock()
		switch {
		case drain == nil:
			s.abort()
		case n == 1:
			s.log.Info("signal received: draining (send it again to abort)")
			drain()
		default:
			s.log.Warn("second signal: aborting")
			s.abort()
		}
	}
}

// running hands the first signal from now on to drain.
func (s *signals) running(drain func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.before {
		s.drain = drain
	}
}

// stoppedEarly reports whether a signal ended startup.
func (s *signals) stoppedEarly() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.before
}

// close stops listening and waits for the routing goroutine.
func (s *signals) close() {
	signal.Stop(s.ch)
	close(s.stop)
	<-s.done
}

// Startup tries to reach Trakkar with growing patience, so a slow Trakkar is
// still reached, and says so within 2 s when it cannot be.
var (
	attemptTimeouts = []time.Duration{1200 * time.Millisecond, 3 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second}
	// A retry comes this long after the previous attempt began: 2, 4, 8, then every 15 s.
	startupRetry = backoff.Policy{Base: 2 * time.Second, Max: 15 * time.Second}
)

// startupGiveUp bounds the wait for Trakkar under --once, as before.
const startupGiveUp = 2 * time.Minute

type agentReader interface {
	Me(ctx context.Context) (trakkar.Agent, error)
}

// reachTrakkar reads the agent's settings, one attempt at a time, logging why
// Trakkar cannot be reached before every retry. It stops on ctx (a signal), on
// an answer that retrying cannot change (a bad token), or — when giveUp is set
// — once that long has passed.
func reachTrakkar(ctx context.Context, probe agentReader, apiURL string, giveUp time.Duration, log *zap.Logger) (trakkar.Agent, error) {
	var agent trakkar.Agent
	cause := ""
	retry := backoff.Retry{Policy: startupRetry, MaxElapsed: giveUp, Paced: true,
		Notify: func(_ int, wait time.Duration, _ error) {
			log.Warn(fmt.Sprintf("cannot reach Trakkar at %s: %s; retrying in %s", apiURL, cause, wait.Round(100*time.Millisecond)))
		}}
	start := time.Now()
	err := retry.Do(ctx, func(ctx context.Context, attempt int) error {
		timeout := attemptTimeouts[min(attempt-1, len(attemptTimeouts)-1)]
		actx, cancel := context.WithTimeout(ctx, timeout)
		a, err := probe.Me(actx)
		timedOut := actx.Err() != nil
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("reached Trakkar at " + apiURL)
			}
			agent = a
			return nil
		}
		if ctx.Err() != nil {
			return backoff.Permanent(ctx.Err())
		}
		// Answers retrying cannot change are bad input: the token, or an
		// --api-url that is not Trakkar's API.
		if errors.Is(err, trakkar.ErrUnauthorized) {
			return backoff.Permanent(badInput("trakkar rejected the token (401): check --token / TRAKKAR_TOKEN"))
		}
		var ae *trakkar.APIError
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusRequestTimeout && ae.Status != http.StatusTooManyRequests {
			return backoff.Permanent(badInput("trakkar at %s refused the runner: %s (check --token and --api-url)", apiURL, oneLine(ae)))
		}
		cause = unreachableCause(err, timedOut, timeout)
		return err
	})
	var ex *backoff.ExhaustedError
	switch {
	case err == nil:
		return agent, nil
	case ctx.Err() != nil:
		return trakkar.Agent{}, ctx.Err()
	case errors.As(err, &ex):
		return trakkar.Agent{}, fmt.Errorf("cannot reach Trakkar at %s: %s (gave up after %s)", apiURL, cause, time.Since(start).Round(time.Second))
	default:
		return trakkar.Agent{}, err
	}
}

// unreachableCause is the short reason: the network error without the
// request line around it, or that nothing answered in time.
func unreachableCause(err error, timedOut bool, timeout time.Duration) string {
	if timedOut {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	var ae *trakkar.APIError
	if errors.As(err, &ae) {
		return ae.Error()
	}
	return err.Error()
}
