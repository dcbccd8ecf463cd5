package keys_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// quiet discards the key manager's log.
var quiet = slog.New(slog.DiscardHandler)

func TestOpenGeneratesOnceAndSignsVerifiably(t *testing.T) {
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()

	m, created, err := keys.Open(ctx, store, keys.Options{}, quiet)
	if err != nil || !created {
		t.Fatalf("first Open: created=%v err=%v, want a new key", created, err)
	}
	set := m.Set
	again, created, err := keys.Open(ctx, store, keys.Options{}, quiet)
	if err != nil {
		t.Fatalf("second Open: %v; want the stored key", err)
	}
	if created || again.Set.ActiveID() != set.ActiveID() {
		t.Fatalf("second Open: created=%v kid %s vs %s; want the stored key", created, again.Set.ActiveID(), set.ActiveID())
	}

	// go-jose, not our code, parses the JWKS and computes the RFC 7638 thumbprint.
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(set.JWKS(), &jwks); err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(jwks.Keys))
	}
	jwk := jwks.Keys[0]
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jwk.KeyID, base64.RawURLEncoding.EncodeToString(tp); got != want {
		t.Fatalf("kid = %s, RFC 7638 thumbprint = %s", got, want)
	}
	if jwk.Use != "sig" || jwk.Algorithm != "RS256" {
		t.Fatalf("use=%q alg=%q, want sig RS256", jwk.Use, jwk.Algorithm)
	}

	tok, err := set.Sign(keys.RS256, jwt.MapClaims{"sub": "x", "exp": time.Now().Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := sig.Signatures[0].Header
	if h.KeyID != jwk.KeyID || h.ExtraHeaders["typ"] != keys.TokenType {
		t.Fatalf("header kid=%s typ=%v", h.KeyID, h.ExtraHeaders["typ"])
	}
	if _, err := sig.Verify(jwk.Key); err != nil {
		t.Fatalf("go-jose could not verify our signature with our JWKS: %v", err)
	}
}

// Every algorithm's key is published with its alg and its RFC 7638 thumbprint as kid, and
// every algorithm's token verifies with go-jose against the JWKS alone, with the key its kid
// names, and with no other algorithm allowed.
func TestEveryAlgorithmVerifiesWithGoJose(t *testing.T) {
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	algs := []string{keys.ES256, keys.RS256, keys.PS256, keys.EdDSA}
	m, created, err := keys.Open(context.Background(), store, keys.Options{Algorithms: algs, PublishAhead: time.Hour}, quiet)
	if err != nil || !created {
		t.Fatalf("Open: created=%v err=%v", created, err)
	}
	defer m.Set.Close()
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(m.Set.JWKS(), &jwks); err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != len(algs) {
		t.Fatalf("JWKS has %d keys, want one per algorithm: %s", len(jwks.Keys), m.Set.JWKS())
	}
	byAlg := map[string]jose.JSONWebKey{}
	for _, jwk := range jwks.Keys {
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := jwk.KeyID, base64.RawURLEncoding.EncodeToString(tp); got != want || jwk.Use != "sig" || !jwk.Valid() {
			t.Fatalf("%s key: kid %s, thumbprint %s, use %q", jwk.Algorithm, got, want, jwk.Use)
		}
		byAlg[jwk.Algorithm] = jwk
	}
	kty := map[string]string{keys.RS256: "*rsa.PublicKey", keys.PS256: "*rsa.PublicKey", keys.ES256: "*ecdsa.PublicKey", keys.EdDSA: "ed25519.PublicKey"}
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			jwk, ok := byAlg[alg]
			if !ok || fmt.Sprintf("%T", jwk.Key) != kty[alg] {
				t.Fatalf("no %s key of type %s in the JWKS: %s", alg, kty[alg], m.Set.JWKS())
			}
			// The very first keys sign at once, whatever PublishAhead says: nothing had them cached.
			tok, err := m.Set.Sign(alg, typicalClaims(time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			sig, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			h := sig.Signatures[0].Header
			if h.KeyID != jwk.KeyID || h.Algorithm != alg || h.ExtraHeaders["typ"] != keys.TokenType {
				t.Fatalf("header kid=%s alg=%s typ=%v, want kid %s", h.KeyID, h.Algorithm, h.ExtraHeaders["typ"], jwk.KeyID)
			}
			if _, err := sig.Verify(jwk.Key); err != nil {
				t.Fatalf("go-jose rejects our %s token with our JWKS: %v", alg, err)
			}
			for other, k := range byAlg {
				if other != alg && fmt.Sprintf("%T", k.Key) == kty[alg] {
					if _, err := sig.Verify(k.Key); err == nil {
						t.Fatalf("the %s token verifies with the %s key", alg, other)
					}
				}
			}
		})
	}
}

func loadSet(tb testing.TB) *keys.Set {
	tb.Helper()
	store, err := embedded.OpenMemory()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	m, _, err := keys.Open(context.Background(), store, keys.Options{}, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Set.Close)
	return m.Set
}

// typicalClaims is a client_credentials access token as grants mints it.
func typicalClaims(now time.Time) grants.AccessClaims {
	return grants.AccessClaims{
		Issuer: "https://auth.example.com", Subject: "5ana4c7hmpdk", Audience: protocol.Audience{"https://api.example.com"},
		ClientID: "5ana4c7hmpdk", Scope: "orders:read orders:write",
		IssuedAt: now.Unix(), ExpiresAt: now.Add(3 * time.Hour).Unix(), ID: "Xq3w0J9CTe3n",
	}
}

// Whichever signer this binary was built with (keys.SignerName), a token is byte for byte
// the one golang-jwt with crypto/rsa makes of the same claims and key.
func TestSignMatchesGolangJWT(t *testing.T) {
	set := loadSet(t)
	k := set.Keys()[0]
	now := time.Now()
	many := typicalClaims(now)
	many.Audience = protocol.Audience{"https://a.example.com", "https://b.example.com"}
	many.Scope = ""
	tests := []struct {
		name   string
		claims jwt.Claims
	}{
		{"client_credentials", typicalClaims(now)},
		{"two audiences, no scope", many},
		{"map", jwt.MapClaims{"sub": "x", "exp": now.Unix()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := set.Sign(keys.RS256, tc.claims)
			if err != nil {
				t.Fatal(err)
			}
			ref := jwt.NewWithClaims(jwt.SigningMethodRS256, tc.claims)
			ref.Header["typ"] = keys.TokenType
			ref.Header["kid"] = k.ID
			want, err := ref.SignedString(k.Private)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("signer %s:\n got %s\nwant %s", keys.SignerName, got, want)
			}
		})
	}
}

// BenchmarkSetSign is the whole Sign of a typical access token with this build's signer:
// claims to JSON, base64url, SHA-256, the RSA signature, the token string.
func BenchmarkSetSign(b *testing.B) {
	set := loadSet(b)
	claims := typicalClaims(time.Now())
	b.Run(keys.SignerName, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := set.Sign(keys.RS256, claims); err != nil {
				b.Fatal(err)
			}
		}
	})
}
