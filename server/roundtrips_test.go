package server_test

import (
	"context"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// tripCounter counts Redis round trips: one per command, one per pipeline.
type tripCounter struct{ n atomic.Int64 }

func (c *tripCounter) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (c *tripCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}

func (c *tripCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// TestRedisRoundTripsPerRequest measures SPEC §7's budget: at most 2 round trips per token
// request on the hot paths, with the client record cached (client_cache_ttl) as it is under load.
func TestRedisRoundTripsPerRequest(t *testing.T) {
	srv := redistest.Start(t)
	store, err := redis.Open(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	trips := &tripCounter{}
	store.Client().AddHook(trips)
	ts := newTestServer(t, withStore(store), withClientCache(time.Hour))

	plainID, plainSec := ts.client(t, registry.ClientInput{})
	limitID, limitSec := ts.client(t, registry.ClientInput{DailyLimit: ptr(1000)})
	reuseID, reuseSec := ts.client(t, registry.ClientInput{Reuse: ptr(true)})
	pwID, pwSec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password", "refresh_token"}})
	ts.user(t, "dave", "dave-password")
	cc := url.Values{"grant_type": {"client_credentials"}}
	login := url.Values{"grant_type": {"password"}, "username": {"dave"}, "password": {"dave-password"}}

	// Warm up: load the Lua scripts (EVALSHA falls back to EVAL once) and fill the client cache.
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

	tests := []struct {
		name    string
		id, sec string
		values  url.Values
		max     int
	}{
		{"fresh client_credentials", plainID, plainSec, cc, 2},
		{"fresh with daily limit", limitID, limitSec, cc, 2},
		{"fresh for a reuse client (pool empty)", reuseID2, reuseSec2, cc, 2},
		{"reused", reuseID, reuseSec, cc, 2},
		{"password with refresh token", pwID, pwSec, login, 2},
		{"refresh", pwID, pwSec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, 2},
	}
	for _, tc := range tests {
		before := trips.n.Load()
		r := ts.form(t, tc.id, tc.sec, tc.values)
		got := int(trips.n.Load() - before)
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", tc.name, r.Status, r.RawBody)
		}
		t.Logf("%-40s %d Redis round trip(s)", tc.name, got)
		if got > tc.max {
			t.Errorf("%s: %d round trips, budget %d", tc.name, got, tc.max)
		}
	}
}
