package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Health says whether the runner is healthy: its poll loop runs and went
// round, and Trakkar answered, within State.Patience. The reason is one line.
func (m *Metrics) Health() (bool, string) {
	st, ok := m.current()
	if !ok {
		return false, "starting: the supervisor is not running yet"
	}
	if !st.Polling {
		return false, "the poll loop is not running"
	}
	// Trakkar first: while it is away the poll loop sits in its retries,
	// and the runner's trouble is Trakkar, not the loop.
	now := m.now()
	at := m.lastReached()
	if at.IsZero() {
		return false, "trakkar has not been reached yet"
	}
	if quiet := now.Sub(at); quiet > st.Patience {
		return false, fmt.Sprintf("trakkar last answered %s ago (allowed %s)", quiet.Round(time.Second), st.Patience)
	}
	if idle := now.Sub(st.LastPoll); idle > st.Patience {
		return false, fmt.Sprintf("the poll loop has not gone round for %s (allowed %s)", idle.Round(time.Second), st.Patience)
	}
	return true, "ok"
}

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := m.Health()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, reason)
	})
	return mux
}

// Serve answers on ln until ctx ends; it closes ln.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, log *zap.Logger) error {
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving metrics and health", zap.String("addr", ln.Addr().String()))
	err := srv.Serve(ln)
	cancel()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve metrics: %w", err)
}
