package main

import (
	"context"
	"net"

	"go.uber.org/zap"

	"github.com/trakkar/trakkar-agent/internal/metrics"
	"github.com/trakkar/trakkar-agent/supervisor"
)

// serveMetrics starts --metrics-addr's endpoint (/metrics, /healthz) when one
// is set, and returns the metrics (nil without) and a func that stops serving.
// The address is taken at once, so a port in use is said before anything runs.
func serveMetrics(ctx context.Context, addr string, log *zap.Logger) (*metrics.Metrics, func(), error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, badInput("--metrics-addr %s: %v", addr, err)
	}
	m := metrics.New()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	log = log.Named("metrics")
	go func() {
		defer close(done)
		if err := m.Serve(sctx, ln, log); err != nil {
			log.Error("metrics endpoint stopped", zap.Error(err))
		}
	}()
	return m, func() { cancel(); <-done }, nil
}

// watchSupervisor lets the metrics and /healthz read the supervisor's state.
func watchSupervisor(m *metrics.Metrics, sup *supervisor.Supervisor) {
	if m == nil {
		return
	}
	m.Watch(func() metrics.State {
		s := sup.Snapshot()
		return metrics.State{
			Polling: s.Polling, LastPoll: s.LastPoll, Slots: s.Slots, Active: s.Active,
			EventsPending: s.EventsPending, EventsSpooled: s.EventsSpooled,
			HeartbeatAge: s.HeartbeatAge, Patience: s.Patience,
		}
	})
}
