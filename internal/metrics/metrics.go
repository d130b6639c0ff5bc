// Package metrics serves the runner's Prometheus metrics and its health check
// (--metrics-addr). It keeps its own registry, never the global default, so
// nothing another package registers leaks into the runner's endpoint.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "trakkar_agent"

// State is the supervisor's state when a scrape or a health check asks.
type State struct {
	Polling       bool      // the poll loop is running
	LastPoll      time.Time // when the poll loop last went round
	Slots, Active int       // runs this runner may work at once, and works now
	EventsPending int       // events added to runs' shippers and not yet acknowledged
	EventsSpooled int       // of those, the ones waiting on disk
	// HeartbeatAge is the longest any working run has gone without an
	// acknowledged heartbeat (0 with no run).
	HeartbeatAge time.Duration
	// Patience is how long the poll loop and Trakkar may stay silent before
	// the runner is unhealthy: a few leases.
	Patience time.Duration
}

// Metrics are the runner's metrics and health. The zero value is not usable;
// call New.
type Metrics struct {
	reg            *prometheus.Registry
	runs           *prometheus.CounterVec
	phases         *prometheus.HistogramVec
	containerStart prometheus.Histogram
	resent         prometheus.Counter
	requestErrors  *prometheus.CounterVec
	now            func() time.Time
	reached        atomic.Int64 // unix ns of Trakkar's last answer; 0: never

	mu    sync.Mutex
	state func() State // nil until the supervisor is known
}

// New makes the metrics on a private registry, with the Go runtime's and the
// process's collectors beside the runner's own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		now: time.Now,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "runs_total",
			Help: "Runs this process ended, by outcome (succeeded, failed, stopped, no_changes, lost, aborted, crashed…).",
		}, []string{"outcome"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "phase_duration_seconds",
			Help:    "Time a run spent in each stage of its pipeline (claim, workspace, agent, verify, publish, complete).",
			Buckets: prometheus.ExponentialBuckets(0.1, 3, 10), // 0.1s … ~33min
		}, []string{"phase"}),
		containerStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "container_start_seconds",
			Help:    "Time from asking the engine to create an agent's container until it runs.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10), // 50ms … ~26s
		}),
		resent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_resent_total",
			Help: "Events sent to Trakkar again: after a failed request, a partial acknowledgement or a restart.",
		}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "trakkar_request_errors_total",
			Help: "Failed Trakkar request attempts, retries included, by kind (network, timeout, server, rate_limited, unauthorized, not_found, conflict, gone, rejected, bad_response).",
		}, []string{"kind"}),
	}
	m.reg.MustRegister(m.runs, m.phases, m.containerStart, m.resent, m.requestErrors,
		stateCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Watch names where the supervisor's state is read from on each scrape and
// health check.
func (m *Metrics) Watch(state func() State) {
	m.mu.Lock()
	m.state = state
	m.mu.Unlock()
}

func (m *Metrics) current() (State, bool) {
	m.mu.Lock()
	f := m.state
	m.mu.Unlock()
	if f == nil {
		return State{}, false
	}
	return f(), true
}

// RunEnded counts a run this process ended.
func (m *Metrics) RunEnded(outcome string) { m.runs.WithLabelValues(outcome).Inc() }

// PhaseDone records how long a run spent in one stage.
func (m *Metrics) PhaseDone(phase string, d time.Duration) {
	m.phases.WithLabelValues(phase).Observe(d.Seconds())
}

// ContainerStarted records an agent container's create-to-running latency.
func (m *Metrics) ContainerStarted(d time.Duration) { m.containerStart.Observe(d.Seconds()) }

// EventsResent counts events put in a request again.
func (m *Metrics) EventsResent(n int) { m.resent.Add(float64(n)) }

// Reached notes that Trakkar answered (trakkar.RequestObserver).
func (m *Metrics) Reached() { m.reached.Store(m.now().UnixNano()) }

// RequestFailed counts a failed Trakkar request attempt (trakkar.RequestObserver).
func (m *Metrics) RequestFailed(kind string) { m.requestErrors.WithLabelValues(kind).Inc() }

// lastReached is when Trakkar last answered; zero when never.
func (m *Metrics) lastReached() time.Time {
	if ns := m.reached.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// stateCollector reads the supervisor's state once per scrape: gauges that are
// always current and need no goroutine to keep them so.
type stateCollector struct{ m *Metrics }

var (
	descActive = prometheus.NewDesc(namespace+"_slots_active", "Runs being worked now.", nil, nil)
	descFree   = prometheus.NewDesc(namespace+"_slots_free", "Runs that could be claimed now (max concurrency minus active).", nil, nil)
	descPend   = prometheus.NewDesc(namespace+"_events_pending", "Events of working runs not yet acknowledged by Trakkar, in memory and spooled.", nil, nil)
	descSpool  = prometheus.NewDesc(namespace+"_events_spooled", "Events of working runs waiting in their spool files on disk.", nil, nil)
	descBeat   = prometheus.NewDesc(namespace+"_heartbeat_age_seconds", "Longest time any working run has gone without an acknowledged heartbeat (0 with no run).", nil, nil)
	descPoll   = prometheus.NewDesc(namespace+"_poll_loop_running", "1 while the poll loop runs.", nil, nil)
	descReach  = prometheus.NewDesc(namespace+"_trakkar_last_reached_seconds", "Seconds since Trakkar last answered a request (absent until it has).", nil, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActive, descFree, descPend, descSpool, descBeat, descPoll, descReach} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	st, _ := c.m.current()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(descActive, float64(st.Active))
	gauge(descFree, float64(max(st.Slots-st.Active, 0)))
	gauge(descPend, float64(st.EventsPending))
	gauge(descSpool, float64(st.EventsSpooled))
	gauge(descBeat, st.HeartbeatAge.Seconds())
	polling := 0.0
	if st.Polling {
		polling = 1
	}
	gauge(descPoll, polling)
	if at := c.m.lastReached(); !at.IsZero() {
		gauge(descReach, c.m.now().Sub(at).Seconds())
	}
}
