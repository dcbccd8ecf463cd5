// Package metrics holds Tokensmith's Prometheus collectors on a registry of their own, served
// at /metrics on the admin listener.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
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

	// Reused counts earlier access tokens handed out again, by grant.
	Reused *prometheus.CounterVec
	// Limited counts 429 answers (daily limit, failed-login backoff), by endpoint and grant.
	Limited *prometheus.CounterVec
	// Refreshed counts answered refreshes.
	Refreshed prometheus.Counter
	// Replayed counts refresh tokens presented again after their grace window.
	Replayed prometheus.Counter
	// Revoked counts revoked tokens by token_type.
	Revoked *prometheus.CounterVec
	// AuthFailures counts invalid_client answers by endpoint.
	AuthFailures *prometheus.CounterVec
	// JWKS counts requests for the JWKS.
	JWKS prometheus.Counter
	// StoreDuration is the latency of the token path's store calls by operation; StoreErrors
	// counts those that failed (the store unreachable or broken, not "not found").
	StoreDuration *prometheus.HistogramVec
	StoreErrors   *prometheus.CounterVec
	// AuditWritten, AuditDropped and AuditFailures describe the audit trail: events that
	// reached the sink, events dropped because its buffer was full, and failed writes.
	AuditWritten  prometheus.Counter
	AuditDropped  prometheus.Counter
	AuditFailures prometheus.Counter
	// ReplicaWait is the latency of Redis writes that wait for their replicas (a write and its
	// WAIT, min_replicas); UnconfirmedWrites counts those the replicas did not confirm within
	// replica_timeout, each answered 503.
	ReplicaWait       prometheus.Histogram
	UnconfirmedWrites prometheus.Counter
}

// New registers the collectors, plus the Go runtime and process ones.
func New() *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Issued:   vec("tokensmith_tokens_issued_total", "Access tokens minted (signed), by grant.", "grant"),
		Requests: vec("tokensmith_token_requests_total", "Token endpoint answers by grant and outcome.", "grant", "outcome"),
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
		Reused:       vec("tokensmith_tokens_reused_total", "Earlier access tokens handed out again (token reuse), by grant.", "grant"),
		Limited:      vec("tokensmith_requests_limited_total", "Requests refused with 429 (daily limit, failed-login backoff), by endpoint and grant.", "endpoint", "grant"),
		Refreshed:    counter("tokensmith_tokens_refreshed_total", "Refresh requests answered with a pair."),
		Replayed:     counter("tokensmith_refresh_replays_total", "Used refresh tokens presented after their grace window (the login was revoked)."),
		Revoked:      vec("tokensmith_tokens_revoked_total", "Tokens revoked by their client or the operator, by token_type.", "token_type"),
		AuthFailures: vec("tokensmith_client_auth_failures_total", "Requests refused with invalid_client, by endpoint.", "endpoint"),
		JWKS:         counter("tokensmith_jwks_requests_total", "Requests for the JWKS."),
		StoreDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tokensmith_store_call_duration_seconds", Help: "Latency of the token path's store calls, by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op"}),
		StoreErrors:   vec("tokensmith_store_call_errors_total", "Store calls of the token path that failed (unreachable, timed out, broken), by operation.", "op"),
		AuditWritten:  counter("tokensmith_audit_events_written_total", "Audit events written to the sink."),
		AuditDropped:  counter("tokensmith_audit_events_dropped_total", "Audit events dropped because the sink fell behind and the buffer was full."),
		AuditFailures: counter("tokensmith_audit_write_failures_total", "Failed writes of a batch of audit events (each is retried)."),
		ReplicaWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tokensmith_redis_replica_wait_seconds", Help: "Latency of Redis writes that wait for min_replicas replicas to confirm them (the write and its WAIT).",
			Buckets: []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		UnconfirmedWrites: counter("tokensmith_redis_unconfirmed_writes_total", "Redis writes that fewer than min_replicas replicas confirmed within replica_timeout (answered 503)."),
	}
	m.Registry.MustRegister(m.Issued, m.Requests, m.Duration, m.QuotaExceeded, m.AdminAuthFailures, m.Reused, m.Limited, m.Refreshed, m.Replayed,
		m.Revoked, m.AuthFailures, m.JWKS, m.StoreDuration, m.StoreErrors, m.AuditWritten, m.AuditDropped, m.AuditFailures,
		m.ReplicaWait, m.UnconfirmedWrites,
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

// Gauges registers the gauges read when /metrics is scraped: the live replicas this replica
// counts (the reuse pool capacity), and how long ago the signing key in use started signing.
func (m *Metrics) Gauges(liveReplicas func() int, signingKeyAge func() time.Duration) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokensmith_live_replicas", Help: "Live replicas as this replica counts them (heartbeats in the shared store).",
		}, func() float64 { return float64(liveReplicas()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokensmith_signing_key_age_seconds", Help: "Time since the active signing key started signing.",
		}, func() float64 { return signingKeyAge().Seconds() }),
	)
}

// Record counts an audit event (audit.Recorder): the counters above are the audit trail's
// kinds in numbers, so they move exactly when events are recorded, whatever the sink.
func (m *Metrics) Record(_ context.Context, e audit.Event) {
	switch e.Kind {
	case audit.TokenReused:
		m.Reused.WithLabelValues(e.Grant).Inc()
	case audit.TokenRefreshed:
		m.Refreshed.Inc()
	case audit.TokenReplayed:
		m.Replayed.Inc()
	case audit.TokenRevoked:
		m.Revoked.WithLabelValues(e.TokenType).Inc()
	case audit.TokenRefused:
		switch e.Error {
		case protocol.RateLimited:
			m.Limited.WithLabelValues(e.Endpoint, grantLabel(e.Grant)).Inc()
		case protocol.InvalidClient:
			m.AuthFailures.WithLabelValues(e.Endpoint).Inc()
		}
	}
}

// grantLabel keeps label values bounded: a refused request may name any grant_type.
func grantLabel(g string) string {
	switch g {
	case protocol.GrantClientCredentials, protocol.GrantPassword, protocol.GrantRefreshToken, protocol.GrantTokenExchange:
		return g
	case "":
		return "none"
	}
	return "other"
}

// ObserveStore records one store call of the token path (grants.WithStoreObserver).
func (m *Metrics) ObserveStore(op string, took time.Duration, failed bool) {
	m.StoreDuration.WithLabelValues(op).Observe(took.Seconds())
	if failed {
		m.StoreErrors.WithLabelValues(op).Inc()
	}
}

// ObserveWait records one Redis write that waited for its replicas (redis.Store.ObserveWaits).
func (m *Metrics) ObserveWait(took time.Duration, confirmed bool) {
	m.ReplicaWait.Observe(took.Seconds())
	if !confirmed {
		m.UnconfirmedWrites.Inc()
	}
}

// AuditHooks count what the audit Writer does.
func (m *Metrics) AuditHooks() audit.Hooks {
	return audit.Hooks{
		Written: func(n int) { m.AuditWritten.Add(float64(n)) },
		Dropped: m.AuditDropped.Inc,
		Failed:  m.AuditFailures.Inc,
	}
}
