package jwkscache

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func rsaKeys(t *testing.T, n int) []*rsa.PrivateKey {
	t.Helper()
	ks := make([]*rsa.PrivateKey, n)
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		ks[i] = k
	}
	return ks
}

// curveKeys are a P-256 key, an Ed25519 key and a P-384 key.
func curveKeys(t *testing.T) (*ecdsa.PrivateKey, ed25519.PrivateKey, *ecdsa.PrivateKey) {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ec, ed, p384
}

// TestCacheLifetime: the JWKS is trusted as long as its headers say, bounded below by the
// refresh interval and above by a day.
func TestCacheLifetime(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"Tokensmith's", http.Header{"Cache-Control": {"public, max-age=300"}}, 5 * time.Minute},
		{"Age subtracted", http.Header{"Cache-Control": {"max-age=300"}, "Age": {"100"}}, 200 * time.Second},
		{"no-cache is the interval", http.Header{"Cache-Control": {"no-cache"}}, 10 * time.Second},
		{"max-age=0 is the interval", http.Header{"Cache-Control": {"max-age=0"}}, 10 * time.Second},
		{"at most a day", http.Header{"Cache-Control": {"max-age=31536000"}}, 24 * time.Hour},
		{"Expires", http.Header{"Expires": {now.Add(time.Hour).Format(http.TimeFormat)}, "Date": {now.Format(http.TimeFormat)}}, time.Hour},
		{"nothing said", http.Header{}, 5 * time.Minute},
		{"garbage", http.Header{"Cache-Control": {"max-age=soon"}}, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Lifetime(tc.header, 10*time.Second, now); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestJWKSParsing: keys that cannot verify RS256 are skipped, not fatal to the set.
func TestJWKSParsing(t *testing.T) {
	ks := rsaKeys(t, 3)
	ec, ed, p384 := curveKeys(t)
	jwk := func(key any, kid, alg, use string) string {
		b, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	keys := []string{
		jwk(&ks[0].PublicKey, "good", "RS256", "sig"),
		jwk(&ks[1].PublicKey, "bare", "", ""),
		jwk(&ks[2].PublicKey, "enc", "", "enc"),
		jwk(&ks[2].PublicKey, "ps", "PS512", ""),
		jwk(&ks[2].PublicKey, "", "", ""),
		jwk(&ks[2].PublicKey, "pss", "PS256", "sig"),
		jwk(&ks[2].PublicKey, "rsa as es", "ES256", "sig"),
		jwk(ec.Public(), "ec", "ES256", "sig"),
		jwk(ec.Public(), "ec bare", "", ""),
		jwk(ec.Public(), "ec as rs", "RS256", "sig"),
		jwk(p384.Public(), "p384", "ES384", "sig"),
		jwk(p384.Public(), "p384 as es256", "ES256", "sig"),
		jwk(ed.Public(), "ed", "EdDSA", "sig"),
		jwk(ed.Public(), "ed bare", "", ""),
		jwk(ed.Public(), "ed as es", "ES256", ""),
		`{"kty":"OKP","crv":"X448","x":"AA","kid":"odd"}`,
		`{"kty":"RSA","kid":"broken"}`,
	}
	got, err := Parse([]byte(`{"keys":[` + strings.Join(keys, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"good": "RS256", "bare": "RS256", "pss": "PS256",
		"ec": "ES256", "ec bare": "ES256", "ed": "EdDSA", "ed bare": "EdDSA"}
	gotAlgs := map[string]string{}
	for kid, k := range got {
		gotAlgs[kid] = k.Alg
	}
	if !maps.Equal(gotAlgs, want) {
		t.Fatalf("kept %v, want %v", gotAlgs, want)
	}
	for _, bad := range []string{`[]`, `{"keys":{}}`, `{}`, `not json`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%s: accepted as a JWK set", bad)
		}
	}
}

// TestCheck: a set a client registers is refused, with the reason, for anything that would
// make it unsafe or unusable; a good set gives its kids in order.
func TestCheck(t *testing.T) {
	rk := rsaKeys(t, 1)[0]
	ec, ed, p384 := curveKeys(t)
	jwk := func(key any, kid, alg string) string {
		b, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: "sig"})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	set := func(keys ...string) []byte { return []byte(`{"keys":[` + strings.Join(keys, ",") + `]}`) }
	kids, err := Check(set(jwk(&rk.PublicKey, "r", "RS256"), jwk(&rk.PublicKey, "p", "PS256"), jwk(ec.Public(), "e", ""), jwk(ed.Public(), "d", "EdDSA")))
	if err != nil || strings.Join(kids, ",") != "r,p,e,d" {
		t.Fatalf("good set: %v %v", kids, err)
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"private RSA", string(set(jwk(rk, "r", "RS256"))), `private member "d"`},
		{"private EC", string(set(jwk(ec, "e", "ES256"))), `private member "d"`},
		{"symmetric", string(set(`{"kty":"oct","k":"c2VjcmV0","kid":"h"}`)), `private member "k"`},
		{"no kid", string(set(jwk(ec.Public(), "", "ES256"))), "no kid"},
		{"HS256", string(set(`{"kty":"RSA","kid":"x","alg":"HS256","n":"AQAB","e":"AQAB"}`)), "alg"},
		{"none", string(set(jwk(ec.Public(), "e", "none"))), "alg"},
		{"P-384", string(set(jwk(p384.Public(), "p", ""))), "P-256"},
		{"alg not fitting", string(set(jwk(ec.Public(), "e", "RS256"))), "does not fit"},
		{"unknown kty", string(set(`{"kty":"OKP","crv":"X448","x":"AA","kid":"odd"}`)), "key 0"},
		{"duplicate kid", string(set(jwk(ec.Public(), "e", ""), jwk(ed.Public(), "e", ""))), "twice"},
		{"empty", `{"keys":[]}`, "no keys"},
		{"not a set", `[1]`, "not a JWK set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestCheckURL: https anywhere, http only on loopback.
func TestCheckURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://keys.example.test/jwks.json": true,
		"http://127.0.0.1:8080/jwks":          true,
		"http://[::1]:9/jwks":                 true,
		"http://localhost/jwks":               true,
		"http://keys.example.test/jwks":       false,
		"http://10.0.0.1/jwks":                false,
		"ftp://keys.example.test/jwks":        false,
		"https://user:pw@keys.example.test/":  false,
		"/relative":                           false,
		"https://keys.example.test/#frag":     false,
	} {
		if err := CheckURL(u); (err == nil) != ok {
			t.Errorf("%s: %v, want ok=%v", u, err, ok)
		}
	}
}
