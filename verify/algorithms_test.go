package verify

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// TestAlgorithms: a Verifier accepts the algorithms it is configured for (RS256 alone by
// default), each only with a key published for it; a key without alg is for the algorithm its
// type implies.
func TestAlgorithms(t *testing.T) {
	a := newAuthServer(t)
	rsa := testKeys()
	ec, ed, _ := curveKeys()
	a.publishFor("rs", "RS256", rsa[0])
	a.publishFor("ps", "PS256", rsa[1])
	a.publishFor("es", "ES256", ec)
	a.publishFor("ed", "EdDSA", ed)
	ec2, ed2, _ := curveKeys()
	a.publishFor("es-bare", "", ec2)
	a.publishFor("ed-bare", "", ed2)
	a.publishFor("rs-bare", "", rsa[2])

	all, clk := newVerifier(t, a, func(c *Config) { c.Algorithms = []string{"RS256", "PS256", "ES256", "EdDSA"} })
	def, _ := newVerifier(t, a, nil)
	def.now = clk.Now
	curves, _ := newVerifier(t, a, func(c *Config) { c.Algorithms = []string{"ES256", "EdDSA", "ES256"} })
	curves.now = clk.Now
	good := goodClaims(a, clk.Now())
	tok := func(alg jose.SignatureAlgorithm, key any, kid string) string {
		return sign(t, alg, key, kid, good, nil)
	}

	for _, tc := range []struct {
		name  string
		v     *Verifier
		token string
		want  error  // nil: accepted
		desc  string // in the refusal
	}{
		{"RS256 by default", def, tok(jose.RS256, rsa[0], "rs"), nil, ""},
		{"RS256 key without alg", def, tok(jose.RS256, rsa[2], "rs-bare"), nil, ""},
		{"PS256 refused by default", def, tok(jose.PS256, rsa[1], "ps"), ErrAlgorithm, "the token is signed with PS256, only RS256 is accepted"},
		{"ES256 refused by default", def, tok(jose.ES256, ec, "es"), ErrAlgorithm, "only RS256 is accepted"},
		{"EdDSA refused by default", def, tok(jose.EdDSA, ed, "ed"), ErrAlgorithm, "only RS256 is accepted"},

		{"RS256", all, tok(jose.RS256, rsa[0], "rs"), nil, ""},
		{"PS256", all, tok(jose.PS256, rsa[1], "ps"), nil, ""},
		{"ES256", all, tok(jose.ES256, ec, "es"), nil, ""},
		{"EdDSA", all, tok(jose.EdDSA, ed, "ed"), nil, ""},
		{"ES256 with a P-256 key without alg", all, tok(jose.ES256, ec2, "es-bare"), nil, ""},
		{"EdDSA with an Ed25519 key without alg", all, tok(jose.EdDSA, ed2, "ed-bare"), nil, ""},
		{"HS256 with all four", all, sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "rs", good, nil), ErrAlgorithm,
			"the token is signed with HS256, only RS256, PS256, ES256 and EdDSA are accepted"},

		// One RSA key, two algorithms: the signature is genuine, the algorithm is not the key's.
		{"RS256 with the PS256 key", all, tok(jose.RS256, rsa[1], "ps"), ErrAlgorithm, "the token is signed with RS256, but its key is for PS256"},
		{"PS256 with the RS256 key", all, tok(jose.PS256, rsa[0], "rs"), ErrAlgorithm, "the token is signed with PS256, but its key is for RS256"},
		{"PS256 with an RSA key without alg", all, tok(jose.PS256, rsa[2], "rs-bare"), ErrAlgorithm, "but its key is for RS256"},
		{"EdDSA naming the ES256 key", all, tok(jose.EdDSA, ed, "es"), ErrAlgorithm, "the token is signed with EdDSA, but its key is for ES256"},
		{"ES256 signed by another key under the kid", all, tok(jose.ES256, ec2, "es"), ErrSignature, "the token signature is invalid"},

		{"ES256 and EdDSA only", curves, tok(jose.EdDSA, ed, "ed"), nil, ""},
		{"RS256 with ES256 and EdDSA only", curves, tok(jose.RS256, rsa[0], "rs"), ErrAlgorithm, "only ES256 and EdDSA are accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.v.Verify(context.Background(), tc.token)
			if tc.want == nil {
				if err != nil || c.ClientID != "client-1" {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(asError(err).Description, tc.desc) {
				t.Fatalf("got %v, want %v saying %q", err, tc.want, tc.desc)
			}
		})
	}
}

// TestTokensmithTokensOfEveryAlgorithm: tokens that Tokensmith's own key set signs, in each
// algorithm, verify against the JWKS it renders, here with go-jose as any resource server's
// library; the default Verifier accepts only the RS256 one.
func TestTokensmithTokensOfEveryAlgorithm(t *testing.T) {
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	algs := []string{keys.RS256, keys.PS256, keys.ES256, keys.EdDSA}
	m, _, err := keys.Open(context.Background(), store, keys.Options{Algorithms: algs}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Set.Close)
	a := newAuthServer(t)
	a.jwks = m.Set.JWKS()
	all, clk := newVerifier(t, a, func(c *Config) { c.Algorithms = algs })
	def, _ := newVerifier(t, a, nil)
	def.now = clk.Now
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			now := clk.Now()
			tok, err := m.Set.Sign(alg, jwt.MapClaims{"iss": a.URL, "sub": "client-1", "aud": testAudience, "client_id": "client-1",
				"scope": "orders:read", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1"})
			if err != nil {
				t.Fatal(err)
			}
			if c, err := all.Verify(context.Background(), tok); err != nil || c.Subject != "client-1" {
				t.Fatalf("a Tokensmith %s token is refused: %v", alg, err)
			}
			_, err = def.Verify(context.Background(), tok)
			if accepted := err == nil; accepted != (alg == keys.RS256) {
				t.Fatalf("the default Verifier on a %s token: %v", alg, err)
			}
		})
	}
}
