package server_test

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

func TestReuseHandsOutTheEarlierToken(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{Reuse: ptr(true), Scopes: &[]string{"a", "b"},
		GrantTypes: &[]string{"client_credentials", "password", "refresh_token"}})
	cc := func(scope string) reply {
		v := url.Values{"grant_type": {"client_credentials"}}
		if scope != "" {
			v.Set("scope", scope)
		}
		return ts.form(t, id, sec, v)
	}
	first := cc("")
	ts.Clock.Advance(time.Hour)
	again := cc("")
	if again.str("access_token") != first.str("access_token") {
		t.Fatal("a reuse client got a new token while the first had 2h left")
	}
	if got := again.Body["expires_in"]; got != float64(2*3600) {
		t.Fatalf("reused expires_in = %v, want the 7200 s left", got)
	}
	if again.Body["expires_at"] != first.Body["expires_at"] {
		t.Fatal("reused expires_at changed")
	}
	if ts.issued("client_credentials") != 1 {
		t.Fatalf("%d tokens minted, want 1", ts.issued("client_credentials"))
	}
	// Another scope is another pool.
	if cc("a").str("access_token") == first.str("access_token") {
		t.Fatal("a different scope reused the token")
	}
	// Under reuse_min_remaining (5m) left, but one live replica means one valid token at most:
	// the cap wins and the same token is answered with what is left.
	ts.Clock.Advance(time.Hour + 57*time.Minute)
	late := cc("")
	if late.str("access_token") != first.str("access_token") || late.Body["expires_in"] != float64(180) {
		t.Fatalf("near expiry with a full pool: %s", late.RawBody)
	}
	// Once it has expired, a new one is minted.
	ts.Clock.Advance(4 * time.Minute)
	if cc("").str("access_token") == first.str("access_token") {
		t.Fatal("an expired token was reused")
	}

	// Password grant: a reused answer carries no refresh token.
	ts.user(t, "dave", "dave-password")
	login := url.Values{"grant_type": {"password"}, "username": {"dave"}, "password": {"dave-password"}}
	p1 := ts.form(t, id, sec, login)
	p2 := ts.form(t, id, sec, login)
	if p1.str("refresh_token") == "" || p2.str("refresh_token") != "" || p2.str("access_token") != p1.str("access_token") {
		t.Fatalf("password reuse: first %s, second %s", p1.RawBody, p2.RawBody)
	}
}

func TestReuseCapacityFollowsReplicas(t *testing.T) {
	ts := newTestServer(t, withReplicas(2))
	// Tokens live 3h; reuse wants 2h50m left.
	id, sec := ts.client(t, registry.ClientInput{Reuse: ptr(true), ReuseMinRemaining: ptr("170m")})
	cc := url.Values{"grant_type": {"client_credentials"}}
	a := ts.form(t, id, sec, cc).str("access_token")
	// 20 minutes later the token is under the minimum: with two replicas there is room for a
	// second valid token.
	ts.Clock.Advance(20 * time.Minute)
	b := ts.form(t, id, sec, cc).str("access_token")
	if a == b {
		t.Fatal("with 2 live replicas a second token should be minted")
	}
	// Both are now under the minimum but valid, and the pool is full: the freshest is reused.
	ts.Clock.Advance(20 * time.Minute)
	if c := ts.form(t, id, sec, cc).str("access_token"); c != b {
		t.Fatal("with both slots valid the freshest token must be reused")
	}
}

func TestDailyLimit(t *testing.T) {
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, withLimitZone(moscow))
	// 23:00 in Moscow: the day ends in one hour.
	ts.Clock.t = time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	id, sec := ts.client(t, registry.ClientInput{DailyLimit: ptr(3), GrantTypes: &[]string{"client_credentials", "password", "refresh_token"}})
	ts.user(t, "dave", "dave-password")
	ts.user(t, "erin", "erin-password")
	cc := url.Values{"grant_type": {"client_credentials"}}
	for i := range 3 {
		if r := ts.form(t, id, sec, cc); r.Status != 200 {
			t.Fatalf("token %d: %d %s", i+1, r.Status, r.RawBody)
		}
	}
	r := ts.form(t, id, sec, cc)
	if r.Status != 429 || r.str("error") != "rate_limited" {
		t.Fatalf("4th of 3: %d %s", r.Status, r.RawBody)
	}
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra != 3600 {
		t.Fatalf("Retry-After = %q, want 3600 (midnight in Moscow)", r.Header.Get("Retry-After"))
	}
	// The limit is per subject: users of the same client count separately.
	login := func(u string) reply {
		return ts.form(t, id, sec, url.Values{"grant_type": {"password"}, "username": {u}, "password": {u + "-password"}})
	}
	l := login("dave")
	if l.Status != 200 {
		t.Fatalf("dave: %d %s", l.Status, l.RawBody)
	}
	// Refreshes do not count.
	rt := l.str("refresh_token")
	for range 4 {
		rr := ts.form(t, id, sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if rr.Status != 200 {
			t.Fatalf("refresh counted against the limit: %d %s", rr.Status, rr.RawBody)
		}
		rt = rr.str("refresh_token")
		ts.Clock.Advance(6 * time.Second)
	}
	login("dave")
	login("dave")
	if r := login("dave"); r.Status != 429 {
		t.Fatalf("dave's 4th login: %d", r.Status)
	}
	if r := login("erin"); r.Status != 200 {
		t.Fatalf("erin shares dave's count: %d", r.Status)
	}
	// After midnight Moscow time the count starts over.
	ts.Clock.Advance(time.Hour)
	if r := ts.form(t, id, sec, cc); r.Status != 200 {
		t.Fatalf("after the reset: %d %s", r.Status, r.RawBody)
	}
}

func TestDailyLimitNotCountedForBadRequests(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{DailyLimit: ptr(1), Scopes: &[]string{"a"}})
	for _, v := range []url.Values{
		{"grant_type": {"client_credentials"}, "scope": {"nope"}},
		{"grant_type": {"client_credentials"}, "audience": {"https://elsewhere"}},
	} {
		if r := ts.form(t, id, sec, v); r.Status != 400 {
			t.Fatalf("bad request: %d", r.Status)
		}
	}
	if r := ts.form(t, id, "wrong", url.Values{"grant_type": {"client_credentials"}}); r.Status != 401 {
		t.Fatal("wrong secret accepted")
	}
	if r := ts.form(t, id, sec, url.Values{"grant_type": {"client_credentials"}}); r.Status != 200 {
		t.Fatalf("the one allowed token was used up by bad requests: %d %s", r.Status, r.RawBody)
	}
}

// TestSharedIssuanceHandsTheRefreshTokenToOne: identical password logins of a reuse client that
// arrive together share one issuance; all get its access token, exactly one its refresh token,
// which then rotates like any other.
func TestSharedIssuanceHandsTheRefreshTokenToOne(t *testing.T) {
	mem, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	// A slow admission keeps the first login's issuance open until the others, slowed by their
	// bcrypt checks, have joined it.
	ts := newTestServer(t, withStore(&slowAdmit{Storage: mem, delay: 300 * time.Millisecond}))
	id, sec := ts.client(t, registry.ClientInput{Reuse: ptr(true), GrantTypes: &[]string{"password", "refresh_token"}})
	ts.user(t, "dave", "dave-password")
	login := url.Values{"grant_type": {"password"}, "username": {"dave"}, "password": {"dave-password"}}
	const n = 8
	answers := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = ts.form(t, id, sec, login) })
	}
	wg.Wait()
	var refresh []string
	for _, r := range answers {
		if r.Status != 200 || r.str("access_token") != answers[0].str("access_token") {
			t.Fatalf("login: %d %s", r.Status, r.RawBody)
		}
		if rt := r.str("refresh_token"); rt != "" {
			refresh = append(refresh, rt)
		}
	}
	if len(refresh) != 1 {
		t.Fatalf("%d concurrent logins got %d refresh tokens, want exactly 1", n, len(refresh))
	}
	if r := ts.form(t, id, sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh[0]}}); r.Status != 200 {
		t.Fatalf("the one refresh token: %d %s", r.Status, r.RawBody)
	}
}

// slowAdmit is a store whose admissions take a while, so identical requests overlap.
type slowAdmit struct {
	storage.Storage
	delay time.Duration
}

func (s *slowAdmit) Admit(ctx context.Context, a storage.Admission) (storage.Admitted, error) {
	time.Sleep(s.delay)
	return s.Storage.Admit(ctx, a)
}
