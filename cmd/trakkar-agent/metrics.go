package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

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

// healthzCommand asks a running runner's /healthz, for a container
// healthcheck in an image without curl: exit 0 when healthy, 1 otherwise.
func healthzCommand() *cli.Command {
	return &cli.Command{
		Name:  "healthz",
		Usage: "ask a running runner's /healthz (its --metrics-addr); exit 0 when healthy, 1 otherwise",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", EnvVars: []string{"TRAKKAR_METRICS_ADDR"}, Value: "127.0.0.1:9464", Usage: "the runner's --metrics-addr"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return badInput("unexpected argument %q (see trakkar-agent healthz --help)", c.Args().First())
			}
			addr := c.String("addr")
			if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
				addr = net.JoinHostPort("127.0.0.1", port) // a wildcard listener answers on loopback
			}
			hc := &http.Client{Timeout: 5 * time.Second}
			resp, err := hc.Get("http://" + addr + "/healthz")
			if err != nil {
				return fmt.Errorf("unhealthy: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			reason := strings.TrimSpace(string(body))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("unhealthy: %s", reason)
			}
			fmt.Println(reason)
			return nil
		},
	}
}
