package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/protocol"
)

// counted are the counter families the recording methods move.
var counted = []string{
	"tokensmith_quota_exceeded_total", "tokensmith_tokens_reused_total", "tokensmith_requests_limited_total",
	"tokensmith_tokens_refreshed_total", "tokensmith_refresh_replays_total", "tokensmith_tokens_revoked_total",
	"tokensmith_client_auth_failures_total", "tokensmith_store_call_errors_total", "tokensmith_audit_events_written_total",
	"tokensmith_audit_events_dropped_total", "tokensmith_audit_write_failures_total",
}

// compare checks the named families of m's registry against the text exposition want (HELP
// and TYPE lines included); families with no series compare as absent.
func compare(t *testing.T, m *metrics.Metrics, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// total sums every counted series: a recording that moves one series moves the total by its
// own amount and no more.
func total(t *testing.T, m *metrics.Metrics) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		for _, name := range counted {
			if mf.GetName() == name {
				for _, mt := range mf.GetMetric() {
					sum += mt.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func TestQuota(t *testing.T) {
	t.Parallel()
	const head = "# HELP tokensmith_quota_exceeded_total New-token requests beyond a client's limit, by client, window (daily, hourly) and mode (enforced: refused; shadow: issued anyway).\n" +
		"# TYPE tokensmith_quota_exceeded_total counter\n"
	tests := []struct {
		name     string
		clientID string
		window   string
		shadow   bool
		want     string
	}{
		{name: "daily enforced", clientID: "svc", window: "daily", want: `tokensmith_quota_exceeded_total{client_id="svc",mode="enforced",window="daily"} 1`},
		{name: "hourly shadow", clientID: "app", window: "hourly", shadow: true, want: `tokensmith_quota_exceeded_total{client_id="app",mode="shadow",window="hourly"} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := metrics.New()
			m.Quota(tt.clientID, tt.window, tt.shadow)
			compare(t, m, head+tt.want+"\n", "tokensmith_quota_exceeded_total")
			if got := total(t, m); got != 1 {
				t.Errorf("counted in all: got %v, want 1", got)
			}
		})
	}
}

// TestRecord: each audit event kind moves its counter, with bounded labels; kinds counted
// elsewhere, or not at all, move nothing.
func TestRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		event  audit.Event
		family string
		// want is the family's series after the event; "" for an event that counts nothing.
		want string
	}{
		{name: "reused", event: audit.Event{Kind: audit.TokenReused, Grant: protocol.GrantPassword},
			family: "tokensmith_tokens_reused_total", want: `tokensmith_tokens_reused_total{grant="password"} 1`},
		{name: "refreshed", event: audit.Event{Kind: audit.TokenRefreshed, Grant: protocol.GrantRefreshToken},
			family: "tokensmith_tokens_refreshed_total", want: `tokensmith_tokens_refreshed_total 1`},
		{name: "replayed", event: audit.Event{Kind: audit.TokenReplayed},
			family: "tokensmith_refresh_replays_total", want: `tokensmith_refresh_replays_total 1`},
		{name: "revoked", event: audit.Event{Kind: audit.TokenRevoked, TokenType: protocol.TokenTypeRefresh},
			family: "tokensmith_tokens_revoked_total", want: `tokensmith_tokens_revoked_total{token_type="refresh_token"} 1`},
		{name: "limited client_credentials", event: audit.Event{Kind: audit.TokenRefused, Error: protocol.RateLimited, Endpoint: "token", Grant: protocol.GrantClientCredentials},
			family: "tokensmith_requests_limited_total", want: `tokensmith_requests_limited_total{endpoint="token",grant="client_credentials"} 1`},
		{name: "limited password", event: audit.Event{Kind: audit.TokenRefused, Error: protocol.RateLimited, Endpoint: "token", Grant: protocol.GrantPassword},
			family: "tokensmith_requests_limited_total", want: `tokensmith_requests_limited_total{endpoint="token",grant="password"} 1`},
		{name: "limited refresh", event: audit.Event{Kind: audit.TokenRefused, Error: protocol.RateLimited, Endpoint: "token", Grant: protocol.GrantRefreshToken},
			family: "tokensmith_requests_limited_total", want: `tokensmith_requests_limited_total{endpoint="token",grant="refresh_token"} 1`},
		{name: "limited exchange", event: audit.Event{Kind: audit.TokenRefused, Error: protocol.RateLimited, Endpoint: "token", Grant: protocol.GrantTokenExchange},
			family: "tokensmith_requests_limited_total", want: `tokensmith_requests_limited_total{endpoint="token",grant="urn:ietf:params:oauth:grant-type:token-exchange"} 1`},
		{name: "limited without grant", event: audit.Event{Kind: audit.TokenRefused, Error: protocol.RateLimited, Endpoint: "introspect"},
			family: "tokensmith_requests_limited_total", want: `tokensmith_requests_limited_total{endpoint="introspect",grant="none"} 1`},
		// A refused request may name any grant_type: labels stay bounded.
		{name: "limited unknown grant", event: audit.Event{Kind: audit.TokenRefused, Error: protocol.RateLimited, Endpoint: "token", Grant: "urn:made-up"},
			family: "tokensmith_requests_limited_total", want: `tokensmith_requests_limited_total{endpoint="token",grant="other"} 1`},
		{name: "invalid client", event: audit.Event{Kind: audit.TokenRefused, Error: protocol.InvalidClient, Endpoint: "revoke", Grant: protocol.GrantPassword},
			family: "tokensmith_client_auth_failures_total", want: `tokensmith_client_auth_failures_total{endpoint="revoke"} 1`},
		{name: "other refusal", event: audit.Event{Kind: audit.TokenRefused, Error: protocol.InvalidGrant, Endpoint: "token"}},
		{name: "issued", event: audit.Event{Kind: audit.TokenIssued, Grant: protocol.GrantClientCredentials}},
		{name: "exchanged", event: audit.Event{Kind: audit.TokenExchanged}},
		{name: "admin change", event: audit.Event{Kind: audit.AdminChange, What: "client.create"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := metrics.New()
			m.Record(context.Background(), tt.event)
			wantTotal := 0.0
			if tt.want != "" {
				wantTotal = 1
				if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(helpAndType(t, m, tt.family)+tt.want+"\n"), tt.family); err != nil {
					t.Error(err)
				}
			}
			if got := total(t, m); got != wantTotal {
				t.Errorf("counted in all: got %v, want %v", got, wantTotal)
			}
		})
	}
}

// helpAndType are the HELP and TYPE lines of a family as the registry describes it.
func helpAndType(t *testing.T, m *metrics.Metrics, family string) string {
	t.Helper()
	for _, line := range strings.Split(scrape(t, m), "\n") {
		if strings.HasPrefix(line, "# HELP "+family+" ") {
			return line + "\n# TYPE " + family + " counter\n"
		}
	}
	t.Fatalf("no HELP line for %s", family)
	return ""
}

func TestObserveStore(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.ObserveStore("get_client", 3*time.Millisecond, false)
	m.ObserveStore("get_client", 30*time.Millisecond, true)
	m.ObserveStore("admit", 2*time.Second, true)
	compare(t, m, `# HELP tokensmith_store_call_duration_seconds Latency of the token path's store calls, by operation.
# TYPE tokensmith_store_call_duration_seconds histogram
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.0001"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.00025"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.0005"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.001"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.0025"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.005"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.01"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.025"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.05"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.1"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.25"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="0.5"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="1"} 0
tokensmith_store_call_duration_seconds_bucket{op="admit",le="+Inf"} 1
tokensmith_store_call_duration_seconds_sum{op="admit"} 2
tokensmith_store_call_duration_seconds_count{op="admit"} 1
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.0001"} 0
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.00025"} 0
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.0005"} 0
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.001"} 0
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.0025"} 0
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.005"} 1
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.01"} 1
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.025"} 1
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.05"} 2
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.1"} 2
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.25"} 2
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="0.5"} 2
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="1"} 2
tokensmith_store_call_duration_seconds_bucket{op="get_client",le="+Inf"} 2
tokensmith_store_call_duration_seconds_sum{op="get_client"} 0.033
tokensmith_store_call_duration_seconds_count{op="get_client"} 2
# HELP tokensmith_store_call_errors_total Store calls of the token path that failed (unreachable, timed out, broken), by operation.
# TYPE tokensmith_store_call_errors_total counter
tokensmith_store_call_errors_total{op="admit"} 1
tokensmith_store_call_errors_total{op="get_client"} 1
`, "tokensmith_store_call_duration_seconds", "tokensmith_store_call_errors_total")
	if got := total(t, m); got != 2 {
		t.Errorf("counted in all: got %v, want the 2 errors", got)
	}
}

// TestTokenDuration: the token endpoint's latency buckets, from half a millisecond to a second,
// are what dashboards and alerts are written against.
func TestTokenDuration(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.Duration.WithLabelValues(protocol.GrantPassword).Observe(0.0015)
	compare(t, m, `# HELP tokensmith_token_request_duration_seconds Token endpoint latency by grant.
# TYPE tokensmith_token_request_duration_seconds histogram
tokensmith_token_request_duration_seconds_bucket{grant="password",le="0.0005"} 0
tokensmith_token_request_duration_seconds_bucket{grant="password",le="0.001"} 0
tokensmith_token_request_duration_seconds_bucket{grant="password",le="0.002"} 1
tokensmith_token_request_duration_seconds_bucket{grant="password",le="0.005"} 1
tokensmith_token_request_duration_seconds_bucket{grant="password",le="0.01"} 1
tokensmith_token_request_duration_seconds_bucket{grant="password",le="0.025"} 1
tokensmith_token_request_duration_seconds_bucket{grant="password",le="0.05"} 1
tokensmith_token_request_duration_seconds_bucket{grant="password",le="0.1"} 1
tokensmith_token_request_duration_seconds_bucket{grant="password",le="0.25"} 1
tokensmith_token_request_duration_seconds_bucket{grant="password",le="0.5"} 1
tokensmith_token_request_duration_seconds_bucket{grant="password",le="1"} 1
tokensmith_token_request_duration_seconds_bucket{grant="password",le="+Inf"} 1
tokensmith_token_request_duration_seconds_sum{grant="password"} 0.0015
tokensmith_token_request_duration_seconds_count{grant="password"} 1
`, "tokensmith_token_request_duration_seconds")
}

func TestAuditHooks(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	h := m.AuditHooks()
	h.Written(3)
	h.Written(2)
	h.Dropped()
	h.Failed()
	h.Failed()
	for _, tt := range []struct {
		name string
		got  float64
		want float64
	}{
		{"written", testutil.ToFloat64(m.AuditWritten), 5},
		{"dropped", testutil.ToFloat64(m.AuditDropped), 1},
		{"failures", testutil.ToFloat64(m.AuditFailures), 2},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if got := total(t, m); got != 8 {
		t.Errorf("counted in all: got %v, want 8", got)
	}
}

// TestGauges: the gauges are read when scraped, not when registered.
func TestGauges(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	live, age := 1, time.Duration(0)
	m.Gauges(func() int { return live }, func() time.Duration { return age })
	live, age = 3, 90*time.Second
	compare(t, m, `# HELP tokensmith_live_replicas Live replicas as this replica counts them (heartbeats in the shared store).
# TYPE tokensmith_live_replicas gauge
tokensmith_live_replicas 3
# HELP tokensmith_signing_key_age_seconds Time since the active signing key started signing.
# TYPE tokensmith_signing_key_age_seconds gauge
tokensmith_signing_key_age_seconds 90
`, "tokensmith_live_replicas", "tokensmith_signing_key_age_seconds")
	live, age = 2, 1500*time.Millisecond
	compare(t, m, `# HELP tokensmith_live_replicas Live replicas as this replica counts them (heartbeats in the shared store).
# TYPE tokensmith_live_replicas gauge
tokensmith_live_replicas 2
# HELP tokensmith_signing_key_age_seconds Time since the active signing key started signing.
# TYPE tokensmith_signing_key_age_seconds gauge
tokensmith_signing_key_age_seconds 1.5
`, "tokensmith_live_replicas", "tokensmith_signing_key_age_seconds")
}

// scrape is m's registry as /metrics serves it: the Prometheus text format.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: got %d %s, want 200 text/plain", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(body)
}

// TestExposition: once touched, every collector is served in the text format with its help
// and type, beside the Go runtime and process collectors, and the names pass Prometheus's lint.
func TestExposition(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.Issued.WithLabelValues(protocol.GrantClientCredentials).Inc()
	m.Requests.WithLabelValues(protocol.GrantClientCredentials, "ok").Inc()
	m.Duration.WithLabelValues(protocol.GrantClientCredentials).Observe(0.001)
	m.AdminAuthFailures.WithLabelValues("invalid_token").Inc()
	m.JWKS.Inc()
	m.Quota("svc", "daily", false)
	for _, e := range []audit.Event{
		{Kind: audit.TokenReused, Grant: protocol.GrantPassword}, {Kind: audit.TokenRefreshed}, {Kind: audit.TokenReplayed},
		{Kind: audit.TokenRevoked, TokenType: protocol.TokenTypeAccess},
		{Kind: audit.TokenRefused, Error: protocol.RateLimited, Endpoint: "token"},
		{Kind: audit.TokenRefused, Error: protocol.InvalidClient, Endpoint: "token"},
	} {
		m.Record(context.Background(), e)
	}
	m.ObserveStore("get_client", time.Millisecond, true)
	m.AuditHooks().Written(1)
	m.Gauges(func() int { return 1 }, func() time.Duration { return time.Second })

	text := scrape(t, m)
	for _, f := range []struct{ name, typ string }{
		{"tokensmith_tokens_issued_total", "counter"}, {"tokensmith_token_requests_total", "counter"},
		{"tokensmith_token_request_duration_seconds", "histogram"}, {"tokensmith_quota_exceeded_total", "counter"},
		{"tokensmith_admin_auth_failures_total", "counter"}, {"tokensmith_tokens_reused_total", "counter"},
		{"tokensmith_requests_limited_total", "counter"}, {"tokensmith_tokens_refreshed_total", "counter"},
		{"tokensmith_refresh_replays_total", "counter"}, {"tokensmith_tokens_revoked_total", "counter"},
		{"tokensmith_client_auth_failures_total", "counter"}, {"tokensmith_jwks_requests_total", "counter"},
		{"tokensmith_store_call_duration_seconds", "histogram"}, {"tokensmith_store_call_errors_total", "counter"},
		{"tokensmith_audit_events_written_total", "counter"}, {"tokensmith_audit_events_dropped_total", "counter"},
		{"tokensmith_audit_write_failures_total", "counter"}, {"tokensmith_live_replicas", "gauge"},
		{"tokensmith_signing_key_age_seconds", "gauge"},
		{"go_goroutines", "gauge"}, {"process_cpu_seconds_total", "counter"},
	} {
		if !strings.Contains(text, "\n# HELP "+f.name+" ") && !strings.HasPrefix(text, "# HELP "+f.name+" ") {
			t.Errorf("%s: no HELP line", f.name)
		}
		if !strings.Contains(text, "# TYPE "+f.name+" "+f.typ+"\n") {
			t.Errorf("%s: no TYPE %s line", f.name, f.typ)
		}
	}
	for _, series := range []string{
		`tokensmith_tokens_issued_total{grant="client_credentials"} 1`,
		`tokensmith_token_requests_total{grant="client_credentials",outcome="ok"} 1`,
		`tokensmith_token_request_duration_seconds_count{grant="client_credentials"} 1`,
		`tokensmith_admin_auth_failures_total{reason="invalid_token"} 1`,
		`tokensmith_jwks_requests_total 1`,
		`tokensmith_requests_limited_total{endpoint="token",grant="none"} 1`,
	} {
		if !strings.Contains(text, "\n"+series+"\n") {
			t.Errorf("series %s not served", series)
		}
	}
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "tokensmith_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// TestRegistriesApart: each Metrics has a registry of its own, so two servers in one process
// (tests, the benchmark) never count into each other.
func TestRegistriesApart(t *testing.T) {
	t.Parallel()
	a, b := metrics.New(), metrics.New()
	a.JWKS.Inc()
	if got := testutil.ToFloat64(b.JWKS); got != 0 {
		t.Errorf("the other registry's counter: got %v, want 0", got)
	}
}
