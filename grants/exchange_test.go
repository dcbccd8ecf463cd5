package grants

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// exchangeReq is an RFC 8693 request for the personal token tok; kv override or add parameters.
func exchangeReq(id, sec, tok string, kv ...string) *Request {
	return req(id, sec, protocol.GrantTokenExchange,
		append([]string{"subject_token", tok, "subject_token_type", protocol.TokenTypeURIAccess}, kv...)...)
}

// personalTypo changes one character of a personal token's random part.
func personalTypo(tok string) string {
	b := []byte(tok)
	if b[20] == 'Q' {
		b[20] = 'R'
	} else {
		b[20] = 'Q'
	}
	return string(b)
}

func TestTokenExchange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	uid := e.user(t, "lena", "lena-password", "orders:read", "orders:write")
	patID, pat := e.personal(t, uid, 0, "orders:read", "orders:write")
	id, sec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}, Scopes: []string{"orders:read", "orders:write"}})

	tok := e.token(t, exchangeReq(id, sec, pat))
	c := e.claimsOf(t, tok.AccessToken)
	if c.Subject != uid || c.ClientID != id || tok.Scope != "orders:read orders:write" || tok.IssuedTokenType != protocol.TokenTypeURIAccess ||
		tok.RefreshToken != "" || tok.ExpiresIn(e.clock.Now()) != int64(DefaultExchangeTTL/time.Second) {
		t.Fatalf("exchange: %+v, claims %+v", tok, c)
	}
	if p, ok := PersonalOf(c.ID); !ok || p != patID {
		t.Errorf("jti %q names personal token %q, want %q", c.ID, p, patID)
	}
	if in := e.introspect(t, id, sec, tok.AccessToken); !in.Active || in.Username != "lena" || in.Subject != uid {
		t.Errorf("introspection of the exchanged token: %+v", in)
	}
	for name, kv := range map[string][]string{
		"narrowed, with the personal token type and the access token type asked for": {"scope", "orders:read",
			"subject_token_type", protocol.TokenTypeURIPersonal, "requested_token_type", protocol.TokenTypeURIAccess},
		"a JWT asked for":                {"requested_token_type", protocol.TokenTypeURIJWT},
		"the audience as resource":       {"resource", testAudience},
		"audience and resource the same": {"resource", testAudience, "audience", testAudience},
	} {
		if _, err := e.svc.Token(context.Background(), exchangeReq(id, sec, pat, kv...)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Deleting the personal token ends what was exchanged for it, and its exchanges.
	if err := e.store.DeletePersonalToken(context.Background(), uid, patID); err != nil {
		t.Fatal(err)
	}
	e.svc.Forget(storage.Change{Kind: storage.ChangePersonalToken, ID: patID})
	if e.active(t, tok.AccessToken) {
		t.Error("a token exchanged for a deleted personal token is active")
	}
	e.refused(t, exchangeReq(id, sec, pat), protocol.InvalidRequest)
}

func TestTokenExchangeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	uid := e.user(t, "lena", "lena-password", "orders:read", "orders:write")
	_, pat := e.personal(t, uid, 0, "orders:read")
	_, expired := e.personal(t, uid, time.Minute, "orders:read")
	id, sec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}, Scopes: []string{"orders:read", "orders:write"}})
	two, twoSec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}, Scopes: []string{"orders:read"}, Audience: []string{"https://a.example", "https://b.example"}})
	access := e.token(t, exchangeReq(id, sec, pat)).AccessToken
	e.clock.Advance(time.Minute)
	tests := []struct {
		name string
		r    *Request
		code string
	}{
		{"missing subject_token", req(id, sec, protocol.GrantTokenExchange, "subject_token_type", protocol.TokenTypeURIAccess), protocol.InvalidRequest},
		{"missing subject_token_type", req(id, sec, protocol.GrantTokenExchange, "subject_token", pat), protocol.InvalidRequest},
		{"unsupported subject_token_type", exchangeReq(id, sec, pat, "subject_token_type", "urn:ietf:params:oauth:token-type:saml2"), protocol.InvalidRequest},
		{"an access token as subject", exchangeReq(id, sec, access), protocol.InvalidRequest},
		{"a typo", exchangeReq(id, sec, personalTypo(pat)), protocol.InvalidRequest},
		{"garbage", exchangeReq(id, sec, "garbage"), protocol.InvalidRequest},
		{"an expired personal token", exchangeReq(id, sec, expired), protocol.InvalidRequest},
		{"actor_token", exchangeReq(id, sec, pat, "actor_token", pat, "actor_token_type", protocol.TokenTypeURIAccess), protocol.InvalidRequest},
		{"actor_token_type alone", exchangeReq(id, sec, pat, "actor_token_type", protocol.TokenTypeURIAccess), protocol.InvalidRequest},
		{"a refresh token asked for", exchangeReq(id, sec, pat, "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), protocol.InvalidRequest},
		{"scope beyond the personal token's", exchangeReq(id, sec, pat, "scope", "orders:write"), protocol.InvalidScope},
		{"audience not allowed", exchangeReq(id, sec, pat, "audience", "https://elsewhere.example"), protocol.InvalidTarget},
		{"resource not allowed", exchangeReq(id, sec, pat, "resource", "https://elsewhere.example"), protocol.InvalidTarget},
		{"audience and resource differ", exchangeReq(two, twoSec, pat, "audience", "https://a.example", "resource", "https://b.example"), protocol.InvalidTarget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.refused(t, tc.r, tc.code)
		})
	}
}

// TestTokenExchangeWithinTheClient: the issued scope is the personal token's scopes, the
// client's registered scopes and the requested ones (if any) together, and a client a user
// manages exchanges that user's personal tokens only.
func TestTokenExchangeWithinTheClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	uid := e.user(t, "lena", "lena-password", "orders:read", "admin:all")
	other := e.user(t, "omar", "omar-password", "orders:read")
	_, pat := e.personal(t, uid, 0, "orders:read", "admin:all")
	narrow, narrowSec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}, Scopes: []string{"orders:read", "orders:write"}})
	none, noneSec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}})
	owned, ownedSec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}, Scopes: []string{"orders:read"}, Owner: uid})
	foreign, foreignSec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}, Scopes: []string{"orders:read"}, Owner: other})
	for _, tc := range []struct {
		name  string
		r     *Request
		scope string // the issued scope, when code is ""
		code  string
	}{
		{"no scope asked: the intersection", exchangeReq(narrow, narrowSec, pat), "orders:read", ""},
		{"a scope both have", exchangeReq(narrow, narrowSec, pat, "scope", "orders:read"), "orders:read", ""},
		{"the personal token's scope the client lacks", exchangeReq(narrow, narrowSec, pat, "scope", "admin:all"), "", protocol.InvalidScope},
		{"the client's scope the personal token lacks", exchangeReq(narrow, narrowSec, pat, "scope", "orders:write"), "", protocol.InvalidScope},
		{"one allowed and one not", exchangeReq(narrow, narrowSec, pat, "scope", "orders:read admin:all"), "", protocol.InvalidScope},
		{"a client with no scopes gets none", exchangeReq(none, noneSec, pat), "", ""},
		{"a client with no scopes asking for one", exchangeReq(none, noneSec, pat, "scope", "orders:read"), "", protocol.InvalidScope},
		{"the owner's client", exchangeReq(owned, ownedSec, pat), "orders:read", ""},
		{"another user's client", exchangeReq(foreign, foreignSec, pat), "", protocol.InvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.code != "" {
				e.refused(t, tc.r, tc.code)
				return
			}
			tok := e.token(t, tc.r)
			if tok.Scope != tc.scope || e.claimsOf(t, tok.AccessToken).Scope != tc.scope {
				t.Errorf("scope %q (claims %q), want %q", tok.Scope, e.claimsOf(t, tok.AccessToken).Scope, tc.scope)
			}
		})
	}
}

// TestExchangedTokenNeverOutlivesItsPersonalToken: the exchanged token's lifetime is at most what
// the personal token has left, and under a second left is too little.
func TestExchangedTokenNeverOutlivesItsPersonalToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	uid := e.user(t, "lena", "lena-password", "orders:read")
	_, pat := e.personal(t, uid, 5*time.Minute, "orders:read")
	id, sec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}, Scopes: []string{"orders:read"}})
	if got := e.token(t, exchangeReq(id, sec, pat)).ExpiresIn(e.clock.Now()); got != 300 {
		t.Errorf("expires_in %d with 5m left, want 300", got)
	}
	e.clock.Advance(5*time.Minute - 500*time.Millisecond)
	pe := e.refused(t, exchangeReq(id, sec, pat), protocol.InvalidRequest)
	if !strings.Contains(pe.Description, "about to expire") {
		t.Errorf("half a second left: %q", pe.Description)
	}
}

// TestExchangePolicyLifetime: the policy's ExchangeTTL, or the default when it sets none.
func TestExchangePolicyLifetime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ttl, want time.Duration
	}{{0, DefaultExchangeTTL}, {time.Minute, time.Minute}} {
		e := newEnv(t, func(p *Policy) { p.ExchangeTTL = tc.ttl })
		uid := e.user(t, "lena", "lena-password", "orders:read")
		_, pat := e.personal(t, uid, 0, "orders:read")
		id, sec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}})
		if got := e.token(t, exchangeReq(id, sec, pat)).ExpiresIn(e.clock.Now()); got != int64(tc.want/time.Second) {
			t.Errorf("ExchangeTTL %v: expires_in %d, want %v", tc.ttl, got, tc.want)
		}
	}
}

// TestPersonalTokenUsage: using a personal token is remembered and written in one batch.
func TestPersonalTokenUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	uid := e.user(t, "lena", "lena-password", "orders:read")
	patID, pat := e.personal(t, uid, 0, "orders:read")
	id, sec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}})
	if err := e.svc.FlushUsage(ctx); err != nil {
		t.Fatalf("flush with nothing used: %v", err)
	}
	e.clock.Advance(time.Minute)
	used := e.clock.Now()
	e.token(t, exchangeReq(id, sec, pat))
	if got, _ := e.store.GetPersonalToken(ctx, patID); !got.LastUsedAt.IsZero() {
		t.Fatalf("last use written before the flush: %v", got.LastUsedAt)
	}
	if err := e.svc.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := e.store.GetPersonalToken(ctx, patID); err != nil || !got.LastUsedAt.Equal(used) {
		t.Errorf("last use %v (%v), want %v", got.LastUsedAt, err, used)
	}
}
