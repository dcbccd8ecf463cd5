package grants

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// The assertions here are built with go-jose, the server verifies them with golang-jwt: the
// two sides do not share a JOSE library.

func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func publicSet(t testing.TB, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertionReq(id, assertion string) *Request {
	r := req(id, "", protocol.GrantClientCredentials)
	r.AuthMethod, r.ClientAssertion = protocol.AuthPrivateKeyJWT, assertion
	return r
}

// TestPrivateKeyJWT: a good assertion authenticates, once; every refusal is 401 invalid_client
// naming its check, and an audit event token.refused with that reason.
func TestPrivateKeyJWT(t *testing.T) {
	e := newEnv(t, nil)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	pk, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, _ := e.client(t, storage.Client{TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT,
		JWKS: publicSet(t, jose.JSONWebKey{Key: ec.Public(), KeyID: "ec", Algorithm: "ES256", Use: "sig"},
			jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "rsa", Algorithm: "RS256", Use: "sig"},
			jose.JSONWebKey{Key: &pk.PublicKey, KeyID: "ps", Algorithm: "PS256", Use: "sig"})})
	e.update(t, id, func(c *storage.Client) { c.SecretHash = nil })
	now := e.clock.Now()
	claims := func(over map[string]any) map[string]any {
		c := map[string]any{"iss": id, "sub": id, "aud": testIssuer + "/oauth2/token", "jti": secret.NewID(),
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		for k, v := range over {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	// Good: ES256, PS256, RS256, aud as the issuer in an array.
	for _, a := range []string{
		sign(t, jose.ES256, ec, "ec", claims(nil)),
		sign(t, jose.PS256, pk, "ps", claims(nil)),
		sign(t, jose.RS256, rk, "rsa", claims(map[string]any{"aud": []string{"https://x.example", testIssuer}})),
	} {
		if tok := e.token(t, assertionReq("", a)); tok.subject != id {
			t.Fatalf("subject %q, want the client %q", tok.subject, id)
		}
	}
	used := sign(t, jose.ES256, ec, "ec", claims(nil))
	e.token(t, assertionReq(id, used))

	pubDER, err := x509.MarshalPKIXPublicKey(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	hsTok := sign(t, jose.HS256, pubDER, "ec", claims(nil))
	noneTok := strings.Join([]string{b64(`{"alg":"none","kid":"ec"}`), b64(mustJSON(t, claims(nil))), ""}, ".")
	for _, tc := range []struct {
		name, assertion, want string
	}{
		{"wrong iss", sign(t, jose.ES256, ec, "ec", claims(map[string]any{"iss": "someone"})), "iss and sub"},
		{"wrong sub", sign(t, jose.ES256, ec, "ec", claims(map[string]any{"sub": "someone"})), "iss and sub"},
		{"no sub", sign(t, jose.ES256, ec, "ec", claims(map[string]any{"sub": nil})), "iss and sub"},
		{"wrong aud", sign(t, jose.ES256, ec, "ec", claims(map[string]any{"aud": "https://other.example"})), "aud"},
		{"expired", sign(t, jose.ES256, ec, "ec", claims(map[string]any{"exp": now.Add(-time.Minute).Unix()})), "expired"},
		{"exp too far ahead", sign(t, jose.ES256, ec, "ec", claims(map[string]any{"exp": now.Add(time.Hour).Unix(), "iat": nil})), "more than 5m0s ahead"},
		{"no exp", sign(t, jose.ES256, ec, "ec", claims(map[string]any{"exp": nil})), "exp is missing"},
		{"no jti", sign(t, jose.ES256, ec, "ec", claims(map[string]any{"jti": nil})), "jti is missing"},
		{"replayed jti", used, "used before"},
		{"unknown kid", sign(t, jose.ES256, ec, "nope", claims(nil)), "kid"},
		{"another key", sign(t, jose.ES256, other, "ec", claims(nil)), "signature"},
		{"alg none", noneTok, "alg"},
		{"HS256 with the public key", hsTok, "alg"},
		{"alg not the key's", sign(t, jose.PS256, rk, "rsa", claims(nil)), "is for RS256"},
		// FAPI 2.0 refuses RS256 assertions: a client registering its RSA key for PS256 gets that.
		{"RS256 with the PS256 key", sign(t, jose.RS256, pk, "ps", claims(nil)), "is for PS256"},
		{"not a JWT", "abc.def", "well-formed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pe := e.refused(t, assertionReq("", tc.assertion), protocol.InvalidClient)
			if pe.Status() != http.StatusUnauthorized || !strings.Contains(pe.Description, tc.want) {
				t.Fatalf("got %d %q, want 401 naming %q", pe.Status(), pe.Description, tc.want)
			}
			if strings.Contains(pe.Description, tc.assertion) {
				t.Fatal("the description echoes the assertion")
			}
			if _, ok := e.audit.find(audit.TokenRefused, func(ev audit.Event) bool { return ev.Reason == pe.Description }); !ok {
				t.Fatal("no token.refused audit event with the reason")
			}
		})
	}
	// A secret does not authenticate a private_key_jwt client.
	e.refused(t, req(id, "anything", protocol.GrantClientCredentials), protocol.InvalidClient)
}

// TestPrivateKeyJWTByURI: keys fetched from the client's jwks_uri; while it is down, a cached
// key keeps working and an uncached one is refused with a reason that says so.
func TestPrivateKeyJWTByURI(t *testing.T) {
	e := newEnv(t, nil)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(publicSet(t, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: ec.Public(), KeyID: "k1", Algorithm: "ES256"}}}.Keys...))
	}))
	defer srv.Close()
	id, _ := e.client(t, storage.Client{TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT, JWKSURI: srv.URL + "/jwks"})
	claims := func() map[string]any {
		now := e.clock.Now()
		return map[string]any{"iss": id, "sub": id, "aud": testIssuer, "jti": secret.NewID(), "exp": now.Add(time.Minute).Unix()}
	}
	e.token(t, assertionReq(id, sign(t, jose.ES256, ec, "k1", claims())))
	down.Store(true)
	e.clock.Advance(time.Hour) // past the cache lifetime: served stale
	e.token(t, assertionReq(id, sign(t, jose.ES256, ec, "k1", claims())))
	pe := e.refused(t, assertionReq(id, sign(t, jose.ES256, ec2, "k2", claims())), protocol.InvalidClient)
	if !strings.Contains(pe.Description, "cannot be fetched") {
		t.Fatalf("uncached kid with the endpoint down: %q", pe.Description)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkClientAuthentication compares what authenticating a client costs below HTTP: a
// secret (SHA-256 and a constant-time compare), an ES256 and an RS256 assertion (parse,
// checks, signature verification and the one-time jti written to the memory store). The
// assertions are signed before the timer starts: signing is the client's cost.
func BenchmarkClientAuthentication(b *testing.B) {
	e := newEnv(b, nil)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	id, _ := e.client(b, storage.Client{TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT,
		JWKS: publicSet(b, jose.JSONWebKey{Key: ec.Public(), KeyID: "ec", Algorithm: "ES256"},
			jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "rsa", Algorithm: "RS256"})})
	secID, sec := e.client(b, storage.Client{})
	ctx := context.Background()
	b.Run("secret", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.svc.core.authenticate(ctx, req(secID, sec, protocol.GrantClientCredentials)); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  any
		kid  string
	}{{"ES256", jose.ES256, ec, "ec"}, {"RS256", jose.RS256, rk, "rsa"}} {
		b.Run(tc.name, func(b *testing.B) {
			b.StopTimer()
			now := e.clock.Now()
			n := b.N
			as := make([]string, n)
			for i := range as {
				as[i] = sign(b, tc.alg, tc.key, tc.kid, map[string]any{"iss": id, "sub": id, "aud": testIssuer,
					"jti": secret.NewID(), "exp": now.Add(time.Minute).Unix()})
			}
			b.StartTimer()
			for i := range n {
				if _, err := e.svc.core.authenticate(ctx, assertionReq(id, as[i])); err != nil {
					b.Fatal(err)
				}
			}
		})
	}

	// A workload's platform token: a trusted issuer's keys from its JWKS (cached after the
	// first request), the same token every time as platforms hand it out, the client found by
	// client_id or through the identity index when client_id is left out.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(publicSet(b, jose.JSONWebKey{Key: ec.Public(), KeyID: "ec", Algorithm: "ES256"},
			jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "rsa", Algorithm: "RS256"}))
	}))
	defer srv.Close()
	const sub = "system:serviceaccount:prod:billing"
	if err := e.store.CreateTrustedIssuer(ctx, storage.TrustedIssuer{ID: "ti", Issuer: srv.URL, JWKSURI: srv.URL + "/jwks", Audiences: []string{"tokensmith"}}); err != nil {
		b.Fatal(err)
	}
	fedID, _ := e.client(b, storage.Client{TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT,
		FederatedIdentities: []storage.FederatedIdentity{{Issuer: srv.URL, Subject: sub}}})
	for _, tc := range []struct {
		name, clientID string
		alg            jose.SignatureAlgorithm
		key            any
		kid            string
	}{{"federated ES256", fedID, jose.ES256, ec, "ec"}, {"federated RS256", fedID, jose.RS256, rk, "rsa"},
		{"federated ES256 without client_id", "", jose.ES256, ec, "ec"}} {
		b.Run(tc.name, func(b *testing.B) {
			tok := sign(b, tc.alg, tc.key, tc.kid, map[string]any{"iss": srv.URL, "sub": sub, "aud": "tokensmith",
				"exp": e.clock.Now().Add(time.Hour).Unix()})
			for b.Loop() {
				if cl, err := e.svc.core.authenticate(ctx, assertionReq(tc.clientID, tok)); err != nil || cl.ID != fedID {
					b.Fatal(err)
				}
			}
		})
	}
}
