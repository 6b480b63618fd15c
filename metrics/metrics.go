// Package metrics exposes the gateway's Prometheus metrics: requests and
// decisions by method, tool, upstream, decision and reason; latency
// histograms for the gateway and each upstream; and gauges read at scrape
// time from the parts that own the state (upstream health, JWKS fetches,
// audit sink queues, the limit store, active sessions).
//
// Every Metrics has its own registry: nothing is registered globally.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "gatewaystack"

// UpstreamState is one upstream's health at scrape time.
type UpstreamState struct {
	Name     string
	Up       bool
	InFlight int
}

// SinkState is one audit sink's queue at scrape time.
type SinkState struct {
	Name      string
	Queued    int
	Delivered uint64
	Dropped   uint64
	Failed    uint64
}

// JWKSState is the verifier's key set at scrape time.
type JWKSState struct {
	Fetches, Failures int64
	Keys              int
	Ready             bool
}

// StoreState is the limit store's state at scrape time.
type StoreState struct {
	// Kind is memory or redis.
	Kind   string
	Up     bool
	Errors uint64
}

// Sources are read at each scrape; a nil source is left out.
type Sources struct {
	Upstreams func() []UpstreamState
	Sinks     func() []SinkState
	JWKS      func() JWKSState
	Store     func() StoreState
	// Sessions returns how many sessions made a request recently.
	Sessions func() int
	// Streams returns how many event streams are open.
	Streams func() int
}

// Metrics records the gateway's metrics.
type Metrics struct {
	reg             *prometheus.Registry
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	upstreamLatency *prometheus.HistogramVec
	upstreamErrors  *prometheus.CounterVec
	storeFailOpen   prometheus.Counter
}

// latencyBuckets span 100 µs to 30 s.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New registers the metrics and the scrape-time sources in a new registry,
// with the Go runtime and process collectors.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "requests_total",
			Help: "Requests decided by the gateway, by JSON-RPC method (or HTTP method), tool, upstream, decision and reason code.",
		}, []string{"method", "tool", "upstream", "decision", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "request_duration_seconds",
			Help:    "Time from a request's arrival to its decision or answer, upstream included, by method and decision.",
			Buckets: latencyBuckets,
		}, []string{"method", "decision"}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "upstream_duration_seconds",
			Help:    "Time an upstream took to answer a forwarded request, by upstream and method.",
			Buckets: latencyBuckets,
		}, []string{"upstream", "method"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "upstream_errors_total",
			Help: "Forwarded requests that failed to reach an upstream or timed out, by upstream and reason.",
		}, []string{"upstream", "reason"}),
		storeFailOpen: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "limit_store_fail_open_total",
			Help: "Requests let through uncounted because the limit store failed (limits.on_store_error: fail_open).",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.upstreamLatency, m.upstreamErrors, m.storeFailOpen,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&sourceCollector{src: src})
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the metrics' registry (for tests and embedding).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Decision records one audited decision. tool and upstream should be empty
// unless the request reached a known tool, so that names made up by
// callers cannot grow the label set.
func (m *Metrics) Decision(method, tool, upstream, decision, reason string, latency time.Duration) {
	m.requests.WithLabelValues(method, tool, upstream, decision, reason).Inc()
	m.latency.WithLabelValues(method, decision).Observe(latency.Seconds())
}

// Upstream records one forwarded request's upstream time; reason is empty
// when the upstream answered.
func (m *Metrics) Upstream(name, method string, d time.Duration, reason string) {
	m.upstreamLatency.WithLabelValues(name, method).Observe(d.Seconds())
	if reason != "" {
		m.upstreamErrors.WithLabelValues(name, reason).Inc()
	}
}

// FailOpen records a request let through because the limit store failed.
func (m *Metrics) FailOpen() { m.storeFailOpen.Inc() }

// sourceCollector turns the scrape-time sources into metrics.
type sourceCollector struct {
	src Sources
}

var (
	descUpstreamUp = prometheus.NewDesc(Namespace+"_upstream_up",
		"1 when the upstream is reachable, 0 when it is down or not reached yet.", []string{"upstream"}, nil)
	descUpstreamInFlight = prometheus.NewDesc(Namespace+"_upstream_in_flight",
		"Requests being forwarded to the upstream now.", []string{"upstream"}, nil)
	descSinkQueued = prometheus.NewDesc(Namespace+"_audit_queue_depth",
		"Audit events waiting in the sink's queue.", []string{"sink"}, nil)
	descSinkDelivered = prometheus.NewDesc(Namespace+"_audit_delivered_total",
		"Audit events the sink delivered.", []string{"sink"}, nil)
	descSinkDropped = prometheus.NewDesc(Namespace+"_audit_dropped_total",
		"Audit events the sink could not take or deliver (queue full, or undeliverable at shutdown).", []string{"sink"}, nil)
	descSinkFailed = prometheus.NewDesc(Namespace+"_audit_delivery_failures_total",
		"Failed delivery attempts of the sink (retried).", []string{"sink"}, nil)
	descJWKSFetches = prometheus.NewDesc(Namespace+"_jwks_fetches_total",
		"JWKS fetches from the issuer.", nil, nil)
	descJWKSFailures = prometheus.NewDesc(Namespace+"_jwks_fetch_failures_total",
		"JWKS fetches that failed (no answer or a non-2xx status).", nil, nil)
	descJWKSKeys = prometheus.NewDesc(Namespace+"_jwks_keys",
		"Keys in the loaded JWKS.", nil, nil)
	descJWKSReady = prometheus.NewDesc(Namespace+"_jwks_ready",
		"1 once a JWKS has been loaded.", nil, nil)
	descStoreUp = prometheus.NewDesc(Namespace+"_limit_store_up",
		"1 when the limit store answered its last command.", []string{"kind"}, nil)
	descStoreErrors = prometheus.NewDesc(Namespace+"_limit_store_errors_total",
		"Failed limit-store commands.", []string{"kind"}, nil)
	descSessions = prometheus.NewDesc(Namespace+"_sessions_active",
		"Sessions that made a request in the last 5 minutes (this replica).", nil, nil)
	descStreams = prometheus.NewDesc(Namespace+"_streams_open",
		"Event streams held open (this replica); capped per session and per subject.", nil, nil)
)

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUpstreamUp, descUpstreamInFlight, descSinkQueued, descSinkDelivered,
		descSinkDropped, descSinkFailed, descJWKSFetches, descJWKSFailures, descJWKSKeys, descJWKSReady,
		descStoreUp, descStoreErrors, descSessions, descStreams} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if c.src.Upstreams != nil {
		for _, u := range c.src.Upstreams() {
			gauge(descUpstreamUp, b2f(u.Up), u.Name)
			gauge(descUpstreamInFlight, float64(u.InFlight), u.Name)
		}
	}
	if c.src.Sinks != nil {
		for _, s := range c.src.Sinks() {
			gauge(descSinkQueued, float64(s.Queued), s.Name)
			counter(descSinkDelivered, float64(s.Delivered), s.Name)
			counter(descSinkDropped, float64(s.Dropped), s.Name)
			counter(descSinkFailed, float64(s.Failed), s.Name)
		}
	}
	if c.src.JWKS != nil {
		j := c.src.JWKS()
		counter(descJWKSFetches, float64(j.Fetches))
		counter(descJWKSFailures, float64(j.Failures))
		gauge(descJWKSKeys, float64(j.Keys))
		gauge(descJWKSReady, b2f(j.Ready))
	}
	if c.src.Store != nil {
		s := c.src.Store()
		gauge(descStoreUp, b2f(s.Up), s.Kind)
		counter(descStoreErrors, float64(s.Errors), s.Kind)
	}
	if c.src.Sessions != nil {
		gauge(descSessions, float64(c.src.Sessions()))
	}
	if c.src.Streams != nil {
		gauge(descStreams, float64(c.src.Streams()))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
