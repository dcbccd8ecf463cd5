package keys_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

func TestLoadGeneratesOnceAndSignsVerifiably(t *testing.T) {
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()

	set, created, err := keys.Load(ctx, store)
	if err != nil || !created {
		t.Fatalf("first Load: created=%v err=%v, want a new key", created, err)
	}
	again, created, err := keys.Load(ctx, store)
	if err != nil || created || again.ActiveID() != set.ActiveID() {
		t.Fatalf("second Load: created=%v kid %s vs %s, err=%v; want the stored key", created, again.ActiveID(), set.ActiveID(), err)
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

	tok, err := set.Sign(jwt.MapClaims{"sub": "x", "exp": time.Now().Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
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
