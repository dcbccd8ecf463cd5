package grants

import (
	"slices"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// TestClientCredentials: the client acts for itself; scope, audience and lifetime come from the
// request within what the client allows, else from the client, else from the policy.
func TestClientCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy func(*Policy)
		client storage.Client
		params []string
		scope  string
		aud    []string
		ttl    time.Duration
	}{
		{name: "defaults", client: storage.Client{Scopes: []string{"read", "write"}},
			scope: "read write", aud: []string{testAudience}, ttl: 3 * time.Hour},
		{name: "a narrower scope", client: storage.Client{Scopes: []string{"read", "write"}}, params: []string{"scope", "write"},
			scope: "write", aud: []string{testAudience}, ttl: 3 * time.Hour},
		{name: "repeated scopes and spaces", client: storage.Client{Scopes: []string{"read", "write"}}, params: []string{"scope", "write  read write"},
			scope: "write read", aud: []string{testAudience}, ttl: 3 * time.Hour},
		{name: "no scopes at all", client: storage.Client{},
			scope: "", aud: []string{testAudience}, ttl: 3 * time.Hour},
		{name: "the client's lifetime", client: storage.Client{AccessTokenTTL: 90 * time.Second},
			aud: []string{testAudience}, ttl: 90 * time.Second},
		{name: "a lifetime under a second is a second", client: storage.Client{AccessTokenTTL: time.Millisecond},
			aud: []string{testAudience}, ttl: time.Second},
		{name: "the client's audiences", client: storage.Client{Audience: []string{"https://a.example", "https://b.example"}},
			aud: []string{"https://a.example", "https://b.example"}, ttl: 3 * time.Hour},
		{name: "one of the client's audiences", client: storage.Client{Audience: []string{"https://a.example", "https://b.example"}},
			params: []string{"audience", "https://b.example"}, aud: []string{"https://b.example"}, ttl: 3 * time.Hour},
		{name: "the default audience asked for", client: storage.Client{}, params: []string{"audience", testAudience},
			aud: []string{testAudience}, ttl: 3 * time.Hour},
		{name: "no default audience: the issuer", policy: func(p *Policy) { p.Audience = nil }, client: storage.Client{},
			aud: []string{testIssuer}, ttl: 3 * time.Hour},
		{name: "the policy's lifetime", policy: func(p *Policy) { p.ClientCredentialsTTL = time.Hour }, client: storage.Client{},
			aud: []string{testAudience}, ttl: time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.policy)
			id, sec := e.client(t, tc.client)
			tok := e.token(t, req(id, sec, protocol.GrantClientCredentials, tc.params...))
			c := e.claimsOf(t, tok.AccessToken)
			if c.Subject != id || c.ClientID != id || c.Issuer != testIssuer || c.ID == "" {
				t.Errorf("claims %+v; want sub and client_id %s", c, id)
			}
			if tok.Scope != tc.scope || c.Scope != tc.scope {
				t.Errorf("scope %q (claim %q), want %q", tok.Scope, c.Scope, tc.scope)
			}
			if !slices.Equal(c.Audience, tc.aud) {
				t.Errorf("aud %v, want %v", c.Audience, tc.aud)
			}
			if got := time.Duration(c.ExpiresAt-c.IssuedAt) * time.Second; got != tc.ttl || tok.ExpiresIn(e.clock.Now()) != int64(tc.ttl/time.Second) {
				t.Errorf("lifetime %v, expires_in %d; want %v", got, tok.ExpiresIn(e.clock.Now()), tc.ttl)
			}
			if !tok.IssuedAt.Equal(e.clock.Now()) {
				t.Errorf("issued at %v, want the clock's %v", tok.IssuedAt, e.clock.Now())
			}
			if tok.RefreshToken != "" || tok.IssuedTokenType != "" {
				t.Errorf("refresh token %q, issued_token_type %q; want neither (RFC 6749 §4.4.3)", tok.RefreshToken, tok.IssuedTokenType)
			}
			if _, ok := FamilyOf(c.ID); ok {
				t.Errorf("jti %q names a refresh family", c.ID)
			}
			if e.minted(protocol.GrantClientCredentials) != 1 {
				t.Errorf("minted %d, want 1", e.minted(protocol.GrantClientCredentials))
			}
		})
	}
}

func TestResolveAudienceRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	own, ownSec := e.client(t, storage.Client{Audience: []string{"https://a.example"}})
	def, defSec := e.client(t, storage.Client{})
	tests := []struct {
		name, id, sec, aud string
	}{
		{"another API", def, defSec, "https://evil.example"},
		{"the default, for a client with audiences of its own", own, ownSec, testAudience},
		{"two audiences in one", own, ownSec, "https://a.example https://a.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.refused(t, req(tc.id, tc.sec, protocol.GrantClientCredentials, "audience", tc.aud), protocol.InvalidTarget)
		})
	}
}
