package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/oauth2/clientcredentials"
)

// TestPrivateKeyJWTWithOAuth2Library: golang.org/x/oauth2's client_credentials flow, the
// assertion built with go-jose and sent in EndpointParams, gets a token; the same assertion
// again is refused (one-time jti); revocation and introspection take a fresh one; discovery
// lists the method and its algorithms.
func TestPrivateKeyJWTWithOAuth2Library(t *testing.T) {
	ts := newTestServer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	const id = "signing-client"
	if err := ts.Store.CreateClient(context.Background(), storage.Client{ID: id, GrantTypes: []string{protocol.GrantClientCredentials},
		TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT, JWKS: set, CreatedAt: ts.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	assertion := func() string {
		now := ts.Clock.Now()
		raw, err := josejwt.Signed(signer).Claims(josejwt.Claims{Issuer: id, Subject: id, Audience: josejwt.Audience{ts.URL + "/oauth2/token"},
			ID: secret.NewID(), IssuedAt: josejwt.NewNumericDate(now), Expiry: josejwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	a := assertion()
	cfg := clientcredentials.Config{ClientID: id, TokenURL: ts.URL + "/oauth2/token", EndpointParams: url.Values{
		"client_assertion_type": {protocol.AssertionTypeJWTBearer}, "client_assertion": {a}}}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c := verify(t, ts, tok.AccessToken); c.Subject != id || c.ClientID != id {
		t.Fatalf("claims %+v", c)
	}
	if _, err := cfg.Token(context.Background()); err == nil {
		t.Fatal("the same assertion was accepted twice")
	}

	for _, tc := range []struct{ path, want string }{{"/oauth2/introspect", `"active":true`}, {"/oauth2/revoke", ""}} {
		resp, err := http.PostForm(ts.URL+tc.path, url.Values{"token": {tok.AccessToken}, "client_assertion_type": {protocol.AssertionTypeJWTBearer},
			"client_assertion": {assertion()}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.want) {
			t.Fatalf("%s: %d %s", tc.path, resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/.well-known/oauth-authorization-server", nil)
	md := send(t, req)
	for _, k := range []string{"token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported"} {
		found := false
		for _, m := range md.Body[k].([]any) {
			found = found || m == protocol.AuthPrivateKeyJWT
		}
		if !found {
			t.Errorf("%s = %v lacks private_key_jwt", k, md.Body[k])
		}
	}
	if algs, _ := md.Body["token_endpoint_auth_signing_alg_values_supported"].([]any); len(algs) != 4 {
		t.Errorf("token_endpoint_auth_signing_alg_values_supported = %v", algs)
	}
}
