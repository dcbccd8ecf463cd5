package server_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/registry"
)

// scrape reads /metrics from the admin listener, as Prometheus does, into series → value
// (series as exposed: name{label="value",…}).
func scrape(t *testing.T, ts *testServer) map[string]float64 {
	t.Helper()
	resp, err := http.Get(ts.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsMove scrapes /metrics around each kind of request and checks that the counters
// meant for it moved by exactly what the request did.
func TestMetricsMove(t *testing.T) {
	ts := newTestServer(t, withReplicas(3))
	fresh, freshSec := ts.client(t, registry.ClientInput{})
	reuse, reuseSec := ts.client(t, registry.ClientInput{Reuse: ptr(true)})
	limited, limitedSec := ts.client(t, registry.ClientInput{DailyLimit: ptr(1)})
	login, loginSec := ts.client(t, registry.ClientInput{GrantTypes: ptr([]string{"password", "refresh_token"})})
	limitedLogin, limitedLoginSec := ts.client(t, registry.ClientInput{GrantTypes: ptr([]string{"password", "refresh_token"}), DailyLimit: ptr(1)})
	ts.user(t, "metrics-user", "metrics-password")
	cc := url.Values{"grant_type": {"client_credentials"}}
	var refreshToken, accessToken string
	ok := func(r reply) reply {
		t.Helper()
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.RawBody)
		}
		return r
	}

	tests := []struct {
		name string
		do   func(t *testing.T)
		want map[string]float64 // series → increase
	}{
		{"issued", func(t *testing.T) { accessToken = ok(ts.form(t, fresh, freshSec, cc)).str("access_token") }, map[string]float64{
			`tokensmith_tokens_issued_total{grant="client_credentials"}`:                  1,
			`tokensmith_token_requests_total{grant="client_credentials",outcome="ok"}`:    1,
			`tokensmith_token_request_duration_seconds_count{grant="client_credentials"}`: 1,
			`tokensmith_store_call_duration_seconds_count{op="GetClient"}`:                1,
			`tokensmith_tokens_reused_total{grant="client_credentials"}`:                  0,
			`tokensmith_audit_events_written_total`:                                       1,
		}},
		{"reused", func(t *testing.T) {
			ok(ts.form(t, reuse, reuseSec, cc))
			ok(ts.form(t, reuse, reuseSec, cc))
		}, map[string]float64{
			`tokensmith_tokens_issued_total{grant="client_credentials"}`: 1,
			`tokensmith_tokens_reused_total{grant="client_credentials"}`: 1,
			`tokensmith_store_call_duration_seconds_count{op="Admit"}`:   2,
			`tokensmith_store_call_duration_seconds_count{op="Settle"}`:  1,
			`tokensmith_store_call_errors_total{op="Admit"}`:             0,
		}},
		{"limited", func(t *testing.T) {
			ok(ts.form(t, limited, limitedSec, cc))
			if r := ts.form(t, limited, limitedSec, cc); r.Status != 429 {
				t.Fatalf("second token of a daily limit of 1: %d", r.Status)
			}
		}, map[string]float64{
			`tokensmith_requests_limited_total{endpoint="token",grant="client_credentials"}`:     1,
			`tokensmith_token_requests_total{grant="client_credentials",outcome="rate_limited"}`: 1,
		}},
		// A limited login is signed before its admission: the refused one is not issued.
		{"limited login", func(t *testing.T) {
			pw := url.Values{"grant_type": {"password"}, "username": {"metrics-user"}, "password": {"metrics-password"}}
			ok(ts.form(t, limitedLogin, limitedLoginSec, pw))
			if r := ts.form(t, limitedLogin, limitedLoginSec, pw); r.Status != 429 {
				t.Fatalf("second login of a daily limit of 1: %d", r.Status)
			}
		}, map[string]float64{
			`tokensmith_tokens_issued_total{grant="password"}`:                         1,
			`tokensmith_requests_limited_total{endpoint="token",grant="password"}`:     1,
			`tokensmith_token_requests_total{grant="password",outcome="rate_limited"}`: 1,
		}},
		{"refreshed", func(t *testing.T) {
			r := ok(ts.form(t, login, loginSec, url.Values{"grant_type": {"password"}, "username": {"metrics-user"}, "password": {"metrics-password"}}))
			refreshToken = r.str("refresh_token")
			ok(ts.form(t, login, loginSec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}))
		}, map[string]float64{
			`tokensmith_tokens_refreshed_total`:                                     1,
			`tokensmith_tokens_issued_total{grant="password"}`:                      1,
			`tokensmith_tokens_issued_total{grant="refresh_token"}`:                 1,
			`tokensmith_store_call_duration_seconds_count{op="RotateRefreshToken"}`: 1,
		}},
		{"replayed", func(t *testing.T) {
			ts.Clock.Advance(6 * time.Second)
			if r := ts.form(t, login, loginSec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}); r.Status != 400 {
				t.Fatalf("replay: %d", r.Status)
			}
		}, map[string]float64{
			`tokensmith_refresh_replays_total`:  1,
			`tokensmith_tokens_refreshed_total`: 0,
		}},
		{"refused", func(t *testing.T) {
			ts.form(t, fresh, "wrong-secret", cc)
			ts.call(t, "/oauth2/introspect", fresh, "wrong-secret", url.Values{"token": {"x"}})
		}, map[string]float64{
			`tokensmith_client_auth_failures_total{endpoint="token"}`:                              1,
			`tokensmith_client_auth_failures_total{endpoint="introspect"}`:                         1,
			`tokensmith_token_requests_total{grant="client_credentials",outcome="invalid_client"}`: 1,
		}},
		{"revoked", func(t *testing.T) { ok(ts.revoke(t, fresh, freshSec, accessToken)) }, map[string]float64{
			`tokensmith_tokens_revoked_total{token_type="access_token"}`:           1,
			`tokensmith_store_call_duration_seconds_count{op="RevokeAccessToken"}`: 1,
		}},
		{"jwks", func(t *testing.T) {
			resp, err := http.Get(ts.URL + "/.well-known/jwks.json")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}, map[string]float64{`tokensmith_jwks_requests_total`: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := scrape(t, ts)
			tc.do(t)
			// The audit writer counts what it wrote after the answer was sent.
			var after map[string]float64
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				after = scrape(t, ts)
				if after["tokensmith_audit_events_written_total"] >= before["tokensmith_audit_events_written_total"]+tc.want["tokensmith_audit_events_written_total"] ||
					time.Now().After(deadline) {
					break
				}
			}
			for series, want := range tc.want {
				if got := after[series] - before[series]; got != want {
					t.Errorf("%s moved by %v, want %v", series, got, want)
				}
			}
		})
	}

	m := scrape(t, ts)
	if m["tokensmith_live_replicas"] != 3 {
		t.Errorf("tokensmith_live_replicas = %v, want 3", m["tokensmith_live_replicas"])
	}
	if age := m["tokensmith_signing_key_age_seconds"]; age <= 0 || age > 60 {
		t.Errorf("tokensmith_signing_key_age_seconds = %v, want the few seconds since the key was made", age)
	}
	if m["tokensmith_audit_events_dropped_total"] != 0 {
		t.Errorf("audit events dropped: %v", m["tokensmith_audit_events_dropped_total"])
	}
}
