package grants

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// TestTokenRefusals walks the refusals every grant shares: the request, the client's
// authentication, the grants it is allowed, its scope and audience.
func TestTokenRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{Scopes: []string{"read"}})
	pinned, pinnedSec := e.client(t, storage.Client{TokenEndpointAuthMethod: protocol.AuthSecretBasic})
	pw, pwSec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantPassword, protocol.GrantRefreshToken}})
	e.client(t, storage.Client{ID: "mobile", TokenEndpointAuthMethod: protocol.AuthNone,
		GrantTypes: []string{protocol.GrantPassword, protocol.GrantRefreshToken, protocol.GrantClientCredentials}})
	e.user(t, "bob", "bob-password")
	confidentialRefresh := e.token(t, loginReq(pw, pwSec, "bob")).RefreshToken

	post := func(r *Request) *Request { r.AuthMethod = protocol.AuthSecretPost; return r }
	tests := []struct {
		name string
		r    *Request
		code string
		// basic: the refusal asks for an HTTP Basic challenge (RFC 6749 §5.2).
		basic bool
	}{
		{"missing grant_type", req(id, sec, ""), protocol.InvalidRequest, false},
		{"unknown grant type", req(id, sec, "urn:example:magic"), protocol.UnsupportedGrantType, false},
		{"no client", req("", "", protocol.GrantClientCredentials), protocol.InvalidClient, true},
		{"unknown client", req("nobody", sec, protocol.GrantClientCredentials), protocol.InvalidClient, true},
		{"wrong secret", req(id, "wrong", protocol.GrantClientCredentials), protocol.InvalidClient, true},
		{"wrong secret in the body", post(req(id, "wrong", protocol.GrantClientCredentials)), protocol.InvalidClient, false},
		{"no secret", req(id, "", protocol.GrantClientCredentials), protocol.InvalidClient, true},
		{"client pinned to Basic sends post", post(req(pinned, pinnedSec, protocol.GrantClientCredentials)), protocol.InvalidClient, false},
		{"public client sends a secret", req("mobile", "guess", protocol.GrantPassword, "username", "bob", "password", "bob-password"), protocol.InvalidClient, true},
		{"public client asks for client_credentials", publicReq("mobile", protocol.GrantClientCredentials), protocol.UnauthorizedClient, false},
		{"grant not allowed", loginReq(id, sec, "bob"), protocol.UnauthorizedClient, false},
		{"refresh token alone, unparseable", publicReq("", protocol.GrantRefreshToken, "refresh_token", "tsr_x"), protocol.InvalidGrant, false},
		{"refresh token alone, missing", publicReq("", protocol.GrantRefreshToken), protocol.InvalidRequest, false},
		{"refresh token alone, of a confidential client", publicReq("", protocol.GrantRefreshToken, "refresh_token", confidentialRefresh), protocol.InvalidClient, false},
		{"refresh without any client", req("", "", protocol.GrantRefreshToken, "refresh_token", confidentialRefresh), protocol.InvalidClient, true},
		{"scope not allowed", req(id, sec, protocol.GrantClientCredentials, "scope", "admin"), protocol.InvalidScope, false},
		{"scope with a forbidden character", req(id, sec, protocol.GrantClientCredentials, "scope", `re"ad`), protocol.InvalidScope, false},
		{"audience not allowed", req(id, sec, protocol.GrantClientCredentials, "audience", "https://evil.example"), protocol.InvalidTarget, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pe := e.refused(t, tc.r, tc.code)
			if pe.Basic != tc.basic {
				t.Errorf("Basic = %v, want %v", pe.Basic, tc.basic)
			}
			if pe.Status() == 0 {
				t.Error("no status")
			}
			ev, ok := e.audit.find(audit.TokenRefused, func(ev audit.Event) bool { return ev.Reason == pe.Description })
			if !ok || ev.Endpoint != EndpointToken || ev.Error != tc.code {
				t.Errorf("audit: %+v, %v; want a token refusal with code %s", ev, ok, tc.code)
			}
		})
	}
	// The refused attempt of a public refresh did not burn the confidential client's token.
	if _, err := e.svc.Token(context.Background(), refreshReq(pw, pwSec, confidentialRefresh)); err != nil {
		t.Fatalf("the owner's refresh after refusals: %v", err)
	}
}

// TestPublicClientRefusesASecret: a public client has no secret and must not be sent one (the
// caller takes it for another client); the description says so.
func TestPublicClientRefusesASecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.client(t, storage.Client{ID: "mobile", TokenEndpointAuthMethod: protocol.AuthNone, GrantTypes: PublicGrants})
	e.user(t, "ivan", "ivan-password")
	pe := e.refused(t, loginReq("mobile", "guess", "ivan"), protocol.InvalidClient)
	if !strings.Contains(pe.Description, "public") {
		t.Errorf("description %q does not say the client is public", pe.Description)
	}
	// With its id alone, through Basic with an empty password or with no method at all.
	for _, r := range []*Request{loginReq("mobile", "", "ivan"), publicReq("mobile", protocol.GrantPassword, "username", "ivan", "password", "ivan-password")} {
		if tok := e.token(t, r); tok.RefreshToken == "" {
			t.Errorf("public login (%s): no refresh token", r.AuthMethod)
		}
	}
}

func TestSecretRotationGrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, oldSec := e.client(t, storage.Client{})
	newSec := secret.NewSecret()
	e.update(t, id, func(c *storage.Client) {
		c.PrevSecretHash, c.PrevSecretExpiresAt = c.SecretHash, e.clock.Now().Add(time.Hour)
		c.SecretHash = secret.Hash(newSec)
	})
	for name, s := range map[string]string{"new": newSec, "old in grace": oldSec} {
		if _, err := e.svc.Token(context.Background(), req(id, s, protocol.GrantClientCredentials)); err != nil {
			t.Errorf("%s secret: %v", name, err)
		}
	}
	e.clock.Advance(time.Hour)
	e.refused(t, req(id, oldSec, protocol.GrantClientCredentials), protocol.InvalidClient)
	e.token(t, req(id, newSec, protocol.GrantClientCredentials))
}

// TestClientCache: a cached client serves requests without a store read until the change feed
// drops it (Forget); a new secret works at once regardless, because a failed comparison reads
// the store again; while the change feed is down the cache is not used.
func TestClientCache(t *testing.T) {
	t.Parallel()
	scopeOf := func(e *testEnv, id, sec string) string {
		return e.token(t, req(id, sec, protocol.GrantClientCredentials)).Scope
	}
	t.Run("forget", func(t *testing.T) {
		e := newEnv(t, func(p *Policy) { p.ClientCacheTTL = time.Hour })
		id, sec := e.client(t, storage.Client{Scopes: []string{"a", "b"}})
		other, otherSec := e.client(t, storage.Client{Scopes: []string{"a", "b"}})
		scopeOf(e, id, sec)
		scopeOf(e, other, otherSec)
		for _, c := range []string{id, other} {
			e.update(t, c, func(c *storage.Client) { c.Scopes = []string{"a"} })
		}
		if got := scopeOf(e, id, sec); got != "a b" {
			t.Fatalf("scope before the change notice: %q, want the cached client's %q", got, "a b")
		}
		e.svc.Forget(storage.Change{Kind: storage.ChangeClient, ID: id})
		if got := scopeOf(e, id, sec); got != "a" {
			t.Errorf("scope after Forget: %q, want %q", got, "a")
		}
		if got := scopeOf(e, other, otherSec); got != "a b" {
			t.Errorf("another client after Forget: %q, want it still cached", got)
		}
		// An empty kind drops everything.
		e.svc.Forget(storage.Change{})
		if got := scopeOf(e, other, otherSec); got != "a" {
			t.Errorf("scope after Forget of everything: %q, want %q", got, "a")
		}
		// The cache lasts ClientCacheTTL.
		e.update(t, id, func(c *storage.Client) { c.Scopes = []string{"b"} })
		e.clock.Advance(time.Hour)
		if got := scopeOf(e, id, sec); got != "b" {
			t.Errorf("scope after the cache's lifetime: %q, want %q", got, "b")
		}
	})
	t.Run("new secret", func(t *testing.T) {
		e := newEnv(t, func(p *Policy) { p.ClientCacheTTL = time.Hour })
		id, oldSec := e.client(t, storage.Client{})
		scopeOf(e, id, oldSec)
		newSec := secret.NewSecret()
		e.update(t, id, func(c *storage.Client) { c.SecretHash = secret.Hash(newSec) })
		e.token(t, req(id, newSec, protocol.GrantClientCredentials))
		e.refused(t, req(id, oldSec, protocol.GrantClientCredentials), protocol.InvalidClient)
	})
	t.Run("personal tokens", func(t *testing.T) {
		e := newEnv(t, func(p *Policy) { p.ClientCacheTTL = time.Hour })
		id, sec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}})
		uid := e.user(t, "lena", "lena-password", "orders:read")
		other := e.user(t, "mira", "mira-password", "orders:read")
		patID, pat := e.personal(t, uid, 0, "orders:read")
		otherID, otherPat := e.personal(t, other, 0, "orders:read")
		e.token(t, exchangeReq(id, sec, pat))
		e.token(t, exchangeReq(id, sec, otherPat))
		ctx := context.Background()
		for user, pt := range map[string]string{uid: patID, other: otherID} {
			if err := e.store.DeletePersonalToken(ctx, user, pt); err != nil {
				t.Fatal(err)
			}
		}
		e.token(t, exchangeReq(id, sec, pat)) // still cached
		// A change of a user drops that user's personal tokens, and only those.
		e.svc.Forget(storage.Change{Kind: storage.ChangeUser, ID: uid})
		e.refused(t, exchangeReq(id, sec, pat), protocol.InvalidRequest)
		e.token(t, exchangeReq(id, sec, otherPat))
		e.svc.Forget(storage.Change{Kind: storage.ChangePersonalToken, ID: otherID})
		e.refused(t, exchangeReq(id, sec, otherPat), protocol.InvalidRequest)
	})
	t.Run("change feed down", func(t *testing.T) {
		e := newEnv(t, func(p *Policy) { p.ClientCacheTTL = time.Hour }, WithChangeFeed(func() bool { return false }))
		id, sec := e.client(t, storage.Client{Scopes: []string{"a", "b"}})
		scopeOf(e, id, sec)
		e.update(t, id, func(c *storage.Client) { c.Scopes = []string{"a"} })
		if got := scopeOf(e, id, sec); got != "a" {
			t.Errorf("scope with the change feed down: %q, want the stored %q", got, "a")
		}
	})
}

func TestGrantTypesAndServes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	want := []string{protocol.GrantClientCredentials, protocol.GrantPassword, protocol.GrantRefreshToken, protocol.GrantTokenExchange}
	slices.Sort(want)
	if got := e.svc.GrantTypes(); !slices.Equal(got, want) {
		t.Errorf("GrantTypes() = %v, want %v", got, want)
	}
	for _, g := range want {
		if !e.svc.Serves(g) {
			t.Errorf("Serves(%q) = false", g)
		}
	}
	if e.svc.Serves("authorization_code") {
		t.Error("Serves(authorization_code) = true")
	}
}

// TestStoreUnavailable: a store that does not answer is temporarily_unavailable (503), for the
// token, revocation and introspection paths alike.
func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{})
	tok := e.token(t, req(id, sec, protocol.GrantClientCredentials))
	_ = e.store.Close()
	ctx := context.Background()
	_, tokenErr := e.svc.Token(ctx, req(id, sec, protocol.GrantClientCredentials))
	_, introErr := e.svc.IntrospectAny(ctx, tok.AccessToken)
	_, revokeErr := e.svc.RevokeAny(ctx, tok.AccessToken)
	for name, err := range map[string]error{"token": tokenErr, "introspect": introErr, "revoke": revokeErr} {
		if got := protocol.As(err).Code; got != protocol.TemporarilyUnavailable {
			t.Errorf("%s with the store closed: %v, want %s", name, err, protocol.TemporarilyUnavailable)
		}
	}
}

// TestAuditTrail: every answered request is one event of its kind, with what the trail needs
// to tell who got what.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{Scopes: []string{"orders:read"},
		GrantTypes: []string{protocol.GrantClientCredentials, protocol.GrantPassword, protocol.GrantRefreshToken, protocol.GrantTokenExchange}})
	reuser, reuserSec := e.client(t, storage.Client{Reuse: true})
	uid := e.user(t, "audited", "audited-password", "orders:read")
	_, pat := e.personal(t, uid, 0, "orders:read")

	cc := e.token(t, req(id, sec, protocol.GrantClientCredentials))
	pw := e.token(t, loginReq(id, sec, "audited"))
	ref := e.token(t, refreshReq(id, sec, pw.RefreshToken))
	ex := e.token(t, req(id, sec, protocol.GrantTokenExchange, "subject_token", pat, "subject_token_type", protocol.TokenTypeURIAccess))
	first := e.token(t, req(reuser, reuserSec, protocol.GrantClientCredentials))
	again := e.token(t, req(reuser, reuserSec, protocol.GrantClientCredentials))
	e.clock.Advance(6 * time.Second)
	e.refused(t, refreshReq(id, sec, pw.RefreshToken), protocol.InvalidGrant)
	e.refused(t, req(id, sec, protocol.GrantPassword, "username", "audited", "password", "wrong-password"), protocol.InvalidGrant)
	e.svc.Refused(context.Background(), EndpointIntrospect, protocol.Errorf(protocol.InvalidRequest, "malformed body"))

	fam, _ := FamilyOf(pw.jti)
	tests := []struct {
		name  string
		kind  string
		match func(audit.Event) bool
	}{
		{"client_credentials", audit.TokenIssued, func(ev audit.Event) bool {
			return ev.ClientID == id && ev.Subject == id && ev.Grant == protocol.GrantClientCredentials && ev.JTI == cc.jti &&
				ev.Scope == "orders:read" && ev.ExpiresAt == cc.ExpiresAt.Unix()
		}},
		{"password", audit.TokenIssued, func(ev audit.Event) bool {
			return ev.Grant == protocol.GrantPassword && ev.Subject == uid && ev.Username == "audited" && ev.Family == fam && ev.JTI == pw.jti
		}},
		{"refreshed", audit.TokenRefreshed, func(ev audit.Event) bool {
			return ev.Subject == uid && ev.Family == fam && ev.JTI == ref.jti && ev.JTI != pw.jti
		}},
		{"exchanged", audit.TokenExchanged, func(ev audit.Event) bool {
			return ev.Subject == uid && ev.JTI == ex.jti && strings.Contains(ev.JTI, ".")
		}},
		{"reused", audit.TokenReused, func(ev audit.Event) bool {
			return ev.ClientID == reuser && ev.JTI == first.jti && again.jti == first.jti
		}},
		{"replayed", audit.TokenReplayed, func(ev audit.Event) bool {
			return ev.ClientID == id && ev.Family == fam && ev.Subject == uid && ev.Error == protocol.InvalidGrant
		}},
		{"wrong password", audit.TokenRefused, func(ev audit.Event) bool {
			return ev.Grant == protocol.GrantPassword && ev.Username == "audited" && ev.Error == protocol.InvalidGrant && ev.Endpoint == EndpointToken
		}},
		{"refused before a grant", audit.TokenRefused, func(ev audit.Event) bool {
			return ev.Endpoint == EndpointIntrospect && ev.Error == protocol.InvalidRequest && ev.ClientID == ""
		}},
	}
	for _, tc := range tests {
		if _, ok := e.audit.find(tc.kind, tc.match); !ok {
			t.Errorf("%s: no matching %s event in %+v", tc.name, tc.kind, e.audit.events)
		}
	}
	// The replay is recorded once, where it was found, with its family.
	replays := 0
	for _, ev := range e.audit.events {
		if ev.Reason == errReplayRefresh.Description {
			replays++
		}
	}
	if replays != 1 {
		t.Errorf("the replay is in the trail %d times, want once", replays)
	}
}

func TestExpiresIn(t *testing.T) {
	t.Parallel()
	iat := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tok := &Token{IssuedAt: iat, ExpiresAt: iat.Add(time.Hour), RefreshExpiresAt: iat.Add(2 * time.Hour)}
	tests := []struct {
		name          string
		now           time.Time
		want, refresh int64
	}{
		{"minted now", iat, 3600, 7200},
		{"the clock ticked while answering", iat.Add(1500 * time.Millisecond), 3600, 7200},
		{"a retry three seconds later", iat.Add(3 * time.Second), 3597, 7197},
		{"expired", iat.Add(2 * time.Hour), 0, 0},
	}
	for _, tc := range tests {
		if got, rgot := tok.ExpiresIn(tc.now), tok.RefreshExpiresIn(tc.now); got != tc.want || rgot != tc.refresh {
			t.Errorf("%s: ExpiresIn %d, RefreshExpiresIn %d; want %d, %d", tc.name, got, rgot, tc.want, tc.refresh)
		}
	}
}

// TestStoreObserverSeesEveryCall: NewService measures the store calls of every path, and an
// answer such as "not found" is no failure.
func TestStoreObserverSeesEveryCall(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]bool{}
	e := newEnv(t, nil, WithStoreObserver(func(op string, took time.Duration, failed bool) {
		mu.Lock()
		defer mu.Unlock()
		if failed {
			t.Errorf("%s failed", op)
		}
		seen[op] = true
	}))
	id, sec := e.client(t, storage.Client{Reuse: true, GrantTypes: []string{protocol.GrantClientCredentials, protocol.GrantPassword, protocol.GrantRefreshToken, protocol.GrantTokenExchange}})
	uid := e.user(t, "dave", "dave-password", "orders:read")
	_, pat := e.personal(t, uid, 0, "orders:read")
	e.refused(t, req(id, sec, protocol.GrantPassword, "username", "dave", "password", "wrong-password"), protocol.InvalidGrant)
	l := e.token(t, loginReq(id, sec, "dave"))
	next := e.token(t, refreshReq(id, sec, l.RefreshToken))
	e.token(t, exchangeReq(id, sec, pat))
	cc := e.token(t, req(id, sec, protocol.GrantClientCredentials))
	e.introspect(t, id, sec, next.RefreshToken)
	ctx := context.Background()
	for _, tok := range []string{cc.AccessToken, next.RefreshToken, pat, newRefreshToken(newFamilyID())} {
		if err := e.svc.Revoke(ctx, req(id, sec, "", "token", tok)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	// A login with earlier failures clears them; a login without a refresh grant's reuse
	// stores its family on its own.
	nr, nrSec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantPassword, protocol.GrantRefreshToken}})
	e.token(t, loginReq(nr, nrSec, "dave"))
	mu.Lock()
	defer mu.Unlock()
	for _, op := range []string{"GetClient", "Login", "LoginFailed", "LoginSucceeded", "CreateRefreshToken", "GetRefreshToken",
		"RotateRefreshToken", "RevokeFamily", "RevokeAccessToken", "TokenState", "Admit", "Settle", "GetPersonalToken",
		"DeletePersonalToken", "TouchPersonalTokens"} {
		if !seen[op] {
			t.Errorf("%s was not observed", op)
		}
	}
}
