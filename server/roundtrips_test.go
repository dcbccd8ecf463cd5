package server_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// tripCounter counts Redis round trips: one per command, one per pipeline; and the WAITs sent.
type tripCounter struct{ n, waits atomic.Int64 }

func (c *tripCounter) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (c *tripCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}

func (c *tripCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.n.Add(1)
		for _, cmd := range cmds {
			if cmd.Name() == "wait" {
				c.waits.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// TestRedisRoundTripsPerRequest measures the round-trip budget (at most 2 round trips per token
// request) path by path, exactly, with the client record cached (client_cache_ttl) as it is
// under load. The table in docs/design.md is this test's table.
//
// Run again with a replica and min_replicas=1, the counts hold as they are: the WAIT that
// confirms a write rides in the write's own pipeline. waitsPerRequest is the WAIT column of
// the table in docs/durability.md.
func TestRedisRoundTripsPerRequest(t *testing.T) {
	for _, minReplicas := range []int{0, 1} {
		t.Run(fmt.Sprintf("min_replicas=%d", minReplicas), func(t *testing.T) { roundTripsPerRequest(t, minReplicas) })
	}
}

// waitsPerRequest are the WAITs a request sends with min_replicas=1, by the names of
// roundTripsPerRequest's cases; a case not named sends none (it writes nothing an answer
// depends on).
var waitsPerRequest = map[string]int{
	"client_credentials, daily limit":                              1,
	"password with refresh token":                                  1,
	"refresh":                                                      1,
	"revoke access token":                                          1,
	"revoke refresh token":                                         2,
	"client_credentials, hourly and daily limit":                   1,
	"client_credentials, both limits in shadow, beyond them":       1,
	"client_credentials, reuse, hourly and daily limit, new token": 1,
	"tokens.make":                                                  1,
	"tokens.refresh":                                               1,
	"tokens.make with the seed's daily limit":                      1,
	"password with refresh token, reuse, new token":                1,
	"password with refresh token, reuse, token reused":             0,
	// The admission may count, so its WAIT is sent; a reused token counted nothing, and its
	// answer does not depend on what WAIT says.
	"client_credentials, reuse, hourly and daily limit, token reused": 1,
}

func roundTripsPerRequest(t *testing.T, minReplicas int) {
	srv := redistest.Start(t)
	if minReplicas > 0 {
		redistest.StartReplica(t, srv)
	}
	// A patient replica_timeout: this test counts round trips, and a replica starved of CPU
	// on a loaded machine must not turn the first write into a 503.
	store, err := redis.Open(context.Background(), fmt.Sprintf("%s?min_replicas=%d&replica_timeout=5s", srv.URL(), minReplicas))
	if err != nil {
		t.Fatal(err)
	}
	trips := &tripCounter{}
	store.Client().AddHook(trips)
	ts := newTestServer(t, withStore(store), withClientCache(time.Hour), withProfiles(allProfiles))

	plainID, plainSec := ts.client(t, registry.ClientInput{})
	limitID, limitSec := ts.client(t, registry.ClientInput{DailyLimit: ptr(1000)})
	reuseID, reuseSec := ts.client(t, registry.ClientInput{Reuse: ptr(true)})
	pwID, pwSec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password", "refresh_token"}})
	ts.user(t, "dave", "dave-password")
	cc := url.Values{"grant_type": {"client_credentials"}}
	login := url.Values{"grant_type": {"password"}, "username": {"dave"}, "password": {"dave-password"}}

	// Warm up: fill the client cache (the store loaded its scripts when it opened).
	mustOK := func(r reply) reply {
		t.Helper()
		if r.Status != 200 {
			t.Fatalf("warm-up: %d %s", r.Status, r.RawBody)
		}
		return r
	}
	for _, c := range [][2]string{{plainID, plainSec}, {limitID, limitSec}, {reuseID, reuseSec}} {
		mustOK(ts.form(t, c[0], c[1], cc))
	}
	warm := mustOK(ts.form(t, pwID, pwSec, login))
	mustOK(ts.form(t, pwID, pwSec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {warm.str("refresh_token")}}))
	// A new pool for the reuse client, so its next request is a fresh issuance.
	reuseID2, reuseSec2 := ts.client(t, registry.ClientInput{Reuse: ptr(true)})
	// Authenticate once so its record is cached; the request itself is refused (grant not allowed).
	ts.form(t, reuseID2, reuseSec2, url.Values{"grant_type": {"password"}})
	rt := ts.form(t, pwID, pwSec, login).str("refresh_token")
	lg := ts.form(t, pwID, pwSec, login)
	toRevoke := ts.form(t, pwID, pwSec, login)
	plainTok := ts.form(t, plainID, plainSec, cc).str("access_token")
	plainTok2 := ts.form(t, plainID, plainSec, cc).str("access_token")
	_, _, pat := newPAT(t, ts, "erin", `{"name":"ci","scopes":["orders:read"]}`)
	exID, exSec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"urn:ietf:params:oauth:grant-type:token-exchange"}})
	ts.form(t, exID, exSec, url.Values{"grant_type": {"client_credentials"}}) // caches the client
	// Hourly beside daily, enforced or in shadow, and with reuse: the same one admit step.
	hourlyID, hourlySec := ts.client(t, registry.ClientInput{DailyLimit: ptr(1000), HourlyLimit: ptr(100)})
	shadowID, shadowSec := ts.client(t, registry.ClientInput{DailyLimit: ptr(1), DailyLimitShadow: ptr(true), HourlyLimit: ptr(1), HourlyLimitShadow: ptr(true)})
	reuseHourlyID, reuseHourlySec := ts.client(t, registry.ClientInput{Reuse: ptr(true), DailyLimit: ptr(1000), HourlyLimit: ptr(100)})
	for _, c := range [][2]string{{hourlyID, hourlySec}, {shadowID, shadowSec}} {
		mustOK(ts.form(t, c[0], c[1], cc))
	}
	// Authenticate once so its record is cached, without taking a token (its pool stays empty).
	ts.form(t, reuseHourlyID, reuseHourlySec, url.Values{"grant_type": {"password"}})
	// Seed API profiles: the same grants behind other wire formats.
	app, _ := ts.client(t, registry.ClientInput{TokenEndpointAuthMethod: ptr("none")})
	seedApp, _ := ts.client(t, registry.ClientInput{TokenEndpointAuthMethod: ptr("none"), DailyLimit: ptr(100)})
	ts.user(t, "ivan@example.com", "ivan-password")
	makeBody := func(appID string) map[string]string {
		return map[string]string{"email": "ivan@example.com", "password": "ivan-password", "appId": appID}
	}
	seedOK := func(r reply) reply {
		t.Helper()
		if r.Status != 200 {
			t.Fatalf("warm-up: %d %s", r.Status, r.RawBody)
		}
		return r
	}
	seedOK(ts.postJSON(t, "/tokens.make", makeBody(seedApp)))
	appRefresh := seedOK(ts.postJSON(t, "/tokens.make", makeBody(app))).str("refreshToken")
	mistyped := typo(pat)

	// A password client with reuse and a refresh token: its client record cached.
	pwReuseID, pwReuseSec := ts.client(t, registry.ClientInput{Reuse: ptr(true), GrantTypes: &[]string{"password", "refresh_token"}})
	ts.form(t, pwReuseID, pwReuseSec, url.Values{"grant_type": {"client_credentials"}})

	// A client that a workload authenticates as with its platform's token: the trusted issuer,
	// its keys and the client cached by a first request.
	k8s := newPlatform(t)
	k8s.addKey(t, "k1", jose.ES256)
	if r := ts.admin(t, "POST", "/admin/trusted-issuers", `{"issuer":"`+k8s.URL+`","audiences":["tokensmith"]}`); r.Status != 201 {
		t.Fatalf("trusted issuer: %d %s", r.Status, r.RawBody)
	}
	if r := ts.admin(t, "POST", "/admin/clients", `{"client_id":"workload","federated_identities":[{"issuer":"`+k8s.URL+`","subject":"system:serviceaccount:ns:w"}]}`); r.Status != 201 {
		t.Fatalf("workload client: %d %s", r.Status, r.RawBody)
	}
	workloadTok := k8s.token(t, "k1", map[string]any{"sub": "system:serviceaccount:ns:w", "aud": "tokensmith", "exp": time.Now().Add(time.Hour).Unix()})
	mustOK(ts.postTo(t, "/oauth2/token", assertionForm("workload", workloadTok).Encode()))

	tests := []struct {
		name    string
		path    string
		id, sec string
		values  url.Values
		want    int
		// do, when set, sends the request instead (seed API profiles).
		do func() reply
		// remaining, when set, is the exact X-RateLimit-Remaining the answer must carry.
		remaining string
	}{
		{"client_credentials", "/oauth2/token", plainID, plainSec, cc, 0, nil, ""},
		{"client_credentials, daily limit", "/oauth2/token", limitID, limitSec, cc, 1, nil, "998"},
		{"client_credentials, reuse, new token", "/oauth2/token", reuseID2, reuseSec2, cc, 2, nil, ""},
		{"client_credentials, reuse, token reused", "/oauth2/token", reuseID, reuseSec, cc, 1, nil, ""},
		{"password with refresh token", "/oauth2/token", pwID, pwSec, login, 2, nil, ""},
		{"refresh", "/oauth2/token", pwID, pwSec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, 2, nil, ""},
		{"introspect access token", "/oauth2/introspect", plainID, plainSec, url.Values{"token": {plainTok}}, 1, nil, ""},
		{"introspect user access token", "/oauth2/introspect", pwID, pwSec, url.Values{"token": {lg.str("access_token")}}, 1, nil, ""},
		{"introspect refresh token", "/oauth2/introspect", pwID, pwSec, url.Values{"token": {lg.str("refresh_token")}}, 2, nil, ""},
		{"revoke access token", "/oauth2/revoke", plainID, plainSec, url.Values{"token": {plainTok2}}, 1, nil, ""},
		{"revoke refresh token", "/oauth2/revoke", pwID, pwSec, url.Values{"token": {toRevoke.str("refresh_token")}}, 3, nil, ""},
		{"token exchange (personal token not cached)", "/oauth2/token", exID, exSec, exchangeForm(pat), 1, nil, ""},
		{"token exchange (personal token cached)", "/oauth2/token", exID, exSec, exchangeForm(pat), 0, nil, ""},
		{"introspect personal token (cached)", "/oauth2/introspect", exID, exSec, url.Values{"token": {pat}}, 1, nil, ""},
		{"introspect personal token with a typo", "/oauth2/introspect", exID, exSec, url.Values{"token": {mistyped}}, 0, nil, ""},
		{"client_credentials, hourly and daily limit", "/oauth2/token", hourlyID, hourlySec, cc, 1, nil, "98"},
		{"client_credentials, both limits in shadow, beyond them", "/oauth2/token", shadowID, shadowSec, cc, 1, nil, "0"},
		{"client_credentials, reuse, hourly and daily limit, new token", "/oauth2/token", reuseHourlyID, reuseHourlySec, cc, 2, nil, "99"},
		{"client_credentials, reuse, hourly and daily limit, token reused", "/oauth2/token", reuseHourlyID, reuseHourlySec, cc, 1, nil, ""},
		{"rahmet /auth/token", "/auth/token", "", "", nil, 0, func() reply {
			return ts.postJSON(t, "/auth/token", map[string]string{"client_id": plainID, "client_secret": plainSec, "grant_type": "client_credentials"})
		}, ""},
		{"atol getToken, token reused", "/possystem/v4/getToken", "", "", nil, 1, func() reply {
			return ts.postJSON(t, "/possystem/v4/getToken", map[string]string{"login": reuseID, "pass": reuseSec})
		}, ""},
		{"tokens.make", "/tokens.make", "", "", nil, 2, func() reply { return ts.postJSON(t, "/tokens.make", makeBody(app)) }, ""},
		{"tokens.refresh", "/tokens.refresh", "", "", nil, 2, func() reply {
			return ts.postJSON(t, "/tokens.refresh", map[string]string{"refreshToken": appRefresh})
		}, ""},
		{"tokens.make with the seed's daily limit", "/tokens.make", "", "", nil, 2, func() reply { return ts.postJSON(t, "/tokens.make", makeBody(seedApp)) }, "98"},
		{"password with refresh token, reuse, new token", "/oauth2/token", pwReuseID, pwReuseSec, login, 3, nil, ""},
		{"password with refresh token, reuse, token reused", "/oauth2/token", pwReuseID, pwReuseSec, login, 2, nil, ""},
		{"client_credentials, workload token with client_id", "/oauth2/token", "", "", nil, 0, func() reply {
			return ts.postTo(t, "/oauth2/token", assertionForm("workload", workloadTok).Encode())
		}, ""},
		{"client_credentials, workload token without client_id", "/oauth2/token", "", "", nil, 1, func() reply {
			return ts.postTo(t, "/oauth2/token", assertionForm("", workloadTok).Encode())
		}, ""},
	}
	for _, tc := range tests {
		before, waitsBefore := trips.n.Load(), trips.waits.Load()
		var r reply
		if tc.do != nil {
			r = tc.do()
		} else {
			r = ts.call(t, tc.path, tc.id, tc.sec, tc.values)
		}
		got, waits := int(trips.n.Load()-before), int(trips.waits.Load()-waitsBefore)
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", tc.name, r.Status, r.RawBody)
		}
		if tc.path == "/oauth2/introspect" && r.Body["active"] != !strings.Contains(tc.name, "typo") {
			t.Fatalf("%s: %s", tc.name, r.RawBody)
		}
		t.Logf("%-42s %d Redis round trip(s)", tc.name, got)
		if got != tc.want {
			t.Errorf("%s: %d round trips, want exactly %d", tc.name, got, tc.want)
		}
		if want := waitsPerRequest[tc.name] * minReplicas; waits != want {
			t.Errorf("%s: %d WAITs with min_replicas=%d, want %d", tc.name, waits, minReplicas, want)
		}
		if rem := r.Header.Get("X-RateLimit-Remaining"); rem != tc.remaining {
			t.Errorf("%s: X-RateLimit-Remaining %q, want %q", tc.name, rem, tc.remaining)
		}
	}
}
