// Package telemetry holds the Prometheus metrics of one server process. A Metrics value is created once
// and passed down; nothing is registered globally.
package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the process's instruments.
type Metrics struct {
	Registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	inFlight        prometheus.Gauge
	LocationsStored prometheus.Counter
	// AuthAttempts counts built-in identity's logins and refreshes by outcome (abuse shows as
	// invalid_credentials, reused and rate_limited).
	AuthAttempts *prometheus.CounterVec
	// APIKeyRequests and APIKeyErrors count API-key requests (errors: status 400 and above), as the
	// original's.
	APIKeyRequests, APIKeyErrors *prometheus.CounterVec
	// RateLimitHits counts 429 answers by route; AuthBruteforce those on authentication routes; and
	// AuthFailures the 401 answers by code (bad tokens, unknown API keys, refused callers).
	RateLimitHits  *prometheus.CounterVec
	AuthBruteforce prometheus.Counter
	AuthFailures   *prometheus.CounterVec
	AuthzFailures  *prometheus.CounterVec // 403 answers by code (role, scope, JWT required)
	// DBErrors counts requests that failed on a Postgres error, by SQLSTATE class (23 integrity, 40
	// serialization, 57 operator intervention, ...).
	DBErrors *prometheus.CounterVec
	// WebhookAttempts counts delivery attempts by outcome (success, retry, failed: dead-lettered), and
	// WebhookAttemptSeconds times them.
	WebhookAttempts       *prometheus.CounterVec
	WebhookAttemptSeconds prometheus.Histogram
}

// New registers the HTTP instruments and the Go runtime collectors on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by method, route pattern and status.",
		}, []string{"method", "route", "status_code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request latency by route pattern (streams excluded).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5},
		}, []string{"method", "route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight", Help: "HTTP requests being served.",
		}),
		LocationsStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gps_locations_inserted_total", Help: "GPS fixes stored (duplicates not counted).",
		}),
		AuthAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldtrack_auth_attempts_total", Help: "Logins (kind=password) and refreshes (kind=refresh) by outcome.",
		}, []string{"kind", "outcome"}),
		APIKeyRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "api_key_requests_total", Help: "Requests authenticated by an API key, by route pattern and status.",
		}, []string{"route", "status_code"}),
		APIKeyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "api_key_errors_total", Help: "API-key requests answered 400 or above, by route pattern and status.",
		}, []string{"route", "status_code"}),
		RateLimitHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "security_rate_limit_hits_total", Help: "Requests refused with 429, by route pattern.",
		}, []string{"route"}),
		AuthBruteforce: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "security_auth_bruteforce_total", Help: "429 answers on authentication routes (login, token).",
		}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "security_auth_failures_total", Help: "401 answers by error code.",
		}, []string{"code"}),
		AuthzFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "security_authz_failures_total", Help: "403 answers by error code.",
		}, []string{"code"}),
		DBErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldtrack_db_errors_total", Help: "Requests that failed on a Postgres error, by SQLSTATE class.",
		}, []string{"class"}),
		WebhookAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldtrack_webhook_attempts_total", Help: "Webhook delivery attempts by outcome (success, retry, failed).",
		}, []string{"outcome"}),
		WebhookAttemptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fieldtrack_webhook_attempt_duration_seconds", Help: "Webhook delivery attempts, connect to answer.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15},
		}),
	}
	m.Registry.MustRegister(m.requests, m.duration, m.inFlight, m.LocationsStored, m.AuthAttempts,
		m.APIKeyRequests, m.APIKeyErrors, m.RateLimitHits, m.AuthBruteforce, m.AuthFailures, m.AuthzFailures, m.DBErrors,
		m.WebhookAttempts, m.WebhookAttemptSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// CounterFunc registers a counter whose value is read at scrape time.
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// GaugeFunc registers a gauge whose value is read at scrape time.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Started marks a request in flight; Observe records its end. route is the chi pattern, never the raw
// path; streaming routes pass stream=true so they stay out of the latency histogram.
func (m *Metrics) Started() { m.inFlight.Inc() }

// Observe records one finished request. traceID, when not empty, is the request's sampled trace: the
// latency observation carries it as an exemplar, so a slow bucket leads to a trace of it.
func (m *Metrics) Observe(method, route string, status int, took time.Duration, stream bool, traceID string) {
	m.inFlight.Dec()
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	if stream {
		return
	}
	h := m.duration.WithLabelValues(method, route)
	if eo, ok := h.(prometheus.ExemplarObserver); ok && traceID != "" {
		eo.ObserveWithExemplar(took.Seconds(), prometheus.Labels{"trace_id": traceID})
		return
	}
	h.Observe(took.Seconds())
}

// Handler serves the registry in the Prometheus text format, or in OpenMetrics (which carries the
// latency histogram's exemplars) to a scraper that asks for it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
}
