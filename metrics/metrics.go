// Package metrics holds Tokensmith's Prometheus collectors on a registry of their own, served
// at /metrics on the admin listener.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the collectors the server updates.
type Metrics struct {
	Registry *prometheus.Registry
	// Issued counts newly minted access tokens by grant.
	Issued *prometheus.CounterVec
	// Requests counts token endpoint answers by grant and outcome ("ok" or the error code).
	Requests *prometheus.CounterVec
	// Duration is the token endpoint's latency by grant.
	Duration *prometheus.HistogramVec
	// QuotaExceeded counts new-token requests beyond a client's daily or hourly limit, by
	// client, window and mode: "enforced" (refused) or "shadow" (issued; the limit only counts).
	QuotaExceeded *prometheus.CounterVec
	// AdminAuthFailures counts admin API requests refused before their token was accepted:
	// "invalid_token" (missing or wrong) or "throttled" (the address must wait after failures).
	AdminAuthFailures *prometheus.CounterVec
}

// New registers the collectors, plus the Go runtime and process ones.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensmith_tokens_issued_total", Help: "Access tokens minted (signed), by grant.",
		}, []string{"grant"}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensmith_token_requests_total", Help: "Token endpoint answers by grant and outcome.",
		}, []string{"grant", "outcome"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tokensmith_token_request_duration_seconds", Help: "Token endpoint latency by grant.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"grant"}),
		QuotaExceeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensmith_quota_exceeded_total",
			Help: "New-token requests beyond a client's limit, by client, window (daily, hourly) and mode (enforced: refused; shadow: issued anyway).",
		}, []string{"client_id", "window", "mode"}),
		AdminAuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensmith_admin_auth_failures_total", Help: "Admin API requests refused for want of a valid admin token, by reason.",
		}, []string{"reason"}),
	}
	m.Registry.MustRegister(m.Issued, m.Requests, m.Duration, m.QuotaExceeded, m.AdminAuthFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Quota counts one request beyond a limit (grants.WithQuotaHook).
func (m *Metrics) Quota(clientID, window string, shadow bool) {
	mode := "enforced"
	if shadow {
		mode = "shadow"
	}
	m.QuotaExceeded.WithLabelValues(clientID, window, mode).Inc()
}
