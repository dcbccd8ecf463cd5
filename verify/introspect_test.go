package verify

import (
	"context"
	"errors"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func introspecting(ttl time.Duration) func(*Config) {
	return func(c *Config) {
		c.Introspection = IntrospectionConfig{ClientID: resourceID, ClientSecret: resourceSecret, CacheTTL: ttl}
	}
}

// TestIntrospectAfterLocal: a route that must see revocations asks the server after the local
// checks; a revoked token is refused once the cached answer runs out; a token the local checks
// refuse is never sent.
func TestIntrospectAfterLocal(t *testing.T) {
	a := newAuthServer(t)
	ks := testKeys()
	a.publish("kid0", ks[0])
	v, clk := newVerifier(t, a, introspecting(5*time.Second))
	tok := sign(t, jose.RS256, ks[0], "kid0", goodClaims(a, clk.Now()), nil)
	a.answer(tok, map[string]any{"active": true, "token_type": "Bearer", "iss": a.URL, "aud": testAudience,
		"scope": "orders:read orders:write", "client_id": "client-1", "sub": "u1", "username": "alice", "exp": clk.Now().Add(time.Hour).Unix()})
	ctx := context.Background()

	c, err := v.Verify(ctx, tok, Introspect(), Scopes("orders:write"))
	if err != nil || !c.Introspected || c.Username != "alice" || c.Subject != "client-1" {
		t.Fatalf("Verify: %+v %v", c, err)
	}
	a.answer(tok, map[string]any{"active": false}) // revoked
	if _, err := v.Verify(ctx, tok, Introspect()); err != nil {
		t.Fatalf("within the cache lifetime: %v", err)
	}
	if n := a.asked.Load(); n != 1 {
		t.Fatalf("%d introspection requests, want 1 (cached)", n)
	}
	clk.Advance(5 * time.Second)
	_, err = v.Verify(ctx, tok, Introspect())
	if !errors.Is(err, ErrInactive) || asError(err).challenge("r") != `Bearer realm="r", error="invalid_token", error_description="the token has been revoked"` {
		t.Fatalf("after the cache lifetime: %v", err)
	}
	// The same token on a route without introspection: still good until exp.
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("local-only route: %v", err)
	}

	expired := sign(t, jose.RS256, ks[0], "kid0", with(goodClaims(a, clk.Now()), map[string]any{"exp": clk.Now().Add(-time.Hour).Unix()}), nil)
	before := a.asked.Load()
	if _, err := v.Verify(ctx, expired, Introspect()); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired token: %v", err)
	}
	if a.asked.Load() != before {
		t.Fatal("a token refused locally was sent to introspection")
	}
}

// TestIntrospectOnly: the server's answer decides, and is checked like a token.
func TestIntrospectOnly(t *testing.T) {
	a := newAuthServer(t)
	v, clk := newVerifier(t, a, introspecting(-1))
	exp := clk.Now().Add(time.Hour).Unix()
	access := func(edits map[string]any) map[string]any {
		return with(map[string]any{"active": true, "token_type": "Bearer", "iss": a.URL, "aud": []string{"x", testAudience},
			"scope": "orders:read", "client_id": "c", "sub": "c", "exp": exp}, edits)
	}
	a.answer("good", access(nil))
	a.answer("foreign-aud", access(map[string]any{"aud": "https://other.example.test"}))
	a.answer("foreign-iss", access(map[string]any{"iss": "https://evil.example.test"}))
	a.answer("refresh", access(map[string]any{"token_type": "refresh_token"}))
	a.answer("expired", access(map[string]any{"exp": clk.Now().Add(-time.Hour).Unix()}))
	a.answer("tsp_personal", map[string]any{"active": true, "token_type": "personal_token", "iss": a.URL, "sub": "u1",
		"username": "lena", "scope": "orders:read"})

	for _, tc := range []struct {
		token string
		opts  []Option
		want  error
	}{
		{"good", nil, nil},
		{"good", []Option{Scopes("orders:write")}, ErrInsufficientScope},
		{"unknown", nil, ErrInactive},
		{"foreign-aud", nil, ErrAudience},
		{"foreign-iss", nil, ErrIssuer},
		{"refresh", nil, ErrType},
		{"expired", nil, ErrExpired},
		{"tsp_personal", nil, ErrType},
		{"tsp_personal", []Option{PersonalTokens()}, nil},
	} {
		t.Run(tc.token, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tc.token, append([]Option{IntrospectOnly()}, tc.opts...)...)
			if tc.want == nil && (err != nil || !c.Introspected) || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %+v %v, want %v", c, err, tc.want)
			}
		})
	}
	c, err := v.Verify(context.Background(), "tsp_personal", PersonalTokens())
	if err != nil || !c.Personal || c.Username != "lena" || !c.ExpiresAt.IsZero() {
		t.Fatalf("personal token on a local route with PersonalTokens: %+v %v", c, err)
	}
}

// TestIntrospectionUnavailable: a server that cannot be asked, or that refuses the resource
// server's credentials, is a 503 without a challenge: the token may be good.
func TestIntrospectionUnavailable(t *testing.T) {
	a := newAuthServer(t)
	v, _ := newVerifier(t, a, introspecting(time.Second))
	a.mu.Lock()
	a.askedDown = true
	a.mu.Unlock()
	_, err := v.Verify(context.Background(), "whatever", IntrospectOnly())
	if !errors.Is(err, ErrUnavailable) || asError(err).Status != 503 {
		t.Fatalf("introspection down: %v", err)
	}
	bad, err := New(Config{Issuer: a.URL, Audience: []string{testAudience},
		Introspection: IntrospectionConfig{ClientID: resourceID, ClientSecret: "wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Verify(context.Background(), "whatever", IntrospectOnly())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("wrong client secret: %v", err)
	}
}

// TestIntrospectionCacheStopsAtExp: an answer is not reused past the token's exp, whatever
// the cache lifetime.
func TestIntrospectionCacheStopsAtExp(t *testing.T) {
	a := newAuthServer(t)
	v, clk := newVerifier(t, a, introspecting(time.Hour))
	a.answer("short", map[string]any{"active": true, "token_type": "Bearer", "iss": a.URL, "aud": testAudience,
		"exp": clk.Now().Add(2 * time.Second).Unix()})
	if _, err := v.Verify(context.Background(), "short", IntrospectOnly()); err != nil {
		t.Fatal(err)
	}
	a.answer("short", map[string]any{"active": false})
	clk.Advance(3 * time.Second)
	if _, err := v.Verify(context.Background(), "short", IntrospectOnly()); !errors.Is(err, ErrInactive) {
		t.Fatalf("after exp: %v", err)
	}
	if n := a.asked.Load(); n != 2 {
		t.Fatalf("%d introspection requests, want 2", n)
	}
}
