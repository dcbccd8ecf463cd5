package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
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
	// Registered through the admin API, as an operator would: no secret in the answer, the
	// key id shown, and rotate-secret refused.
	created := ts.admin(t, "POST", "/admin/clients", `{"client_id":"`+id+`","token_endpoint_auth_method":"private_key_jwt","jwks":`+string(set)+`}`)
	if created.Status != http.StatusCreated || created.str("client_secret") != "" || fmt.Sprint(created.Body["key_ids"]) != "[k1]" {
		t.Fatalf("create: %d %s", created.Status, created.RawBody)
	}
	if r := ts.admin(t, "POST", "/admin/clients/"+id+"/rotate-secret", `{}`); r.Status != http.StatusBadRequest {
		t.Fatalf("rotate-secret of a key-authenticated client: %d %s", r.Status, r.RawBody)
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

// The admin API refuses a key-authenticated client it could not authenticate, naming the field.
func TestPrivateKeyJWTRegistrationRefusals(t *testing.T) {
	ts := newTestServer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	noKid, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), Algorithm: "ES256", Use: "sig"}}})
	hmac := `{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0"}]}`
	for _, tc := range []struct{ name, body, field string }{
		{"no keys", `{"token_endpoint_auth_method":"private_key_jwt"}`, "jwks, jwks_uri or federated_identities"},
		{"private members", `{"token_endpoint_auth_method":"private_key_jwt","jwks":` + string(priv) + `}`, "jwks:"},
		{"key without kid", `{"token_endpoint_auth_method":"private_key_jwt","jwks":` + string(noKid) + `}`, "jwks:"},
		{"symmetric key", `{"token_endpoint_auth_method":"private_key_jwt","jwks":` + hmac + `}`, "jwks:"},
		{"not a set", `{"token_endpoint_auth_method":"private_key_jwt","jwks":{"kty":"EC"}}`, "jwks:"},
		{"jwks_uri over http", `{"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"http://keys.example.com/jwks.json"}`, "jwks_uri:"},
		{"both", `{"token_endpoint_auth_method":"private_key_jwt","jwks":` + string(pub) + `,"jwks_uri":"https://keys.example.com/jwks.json"}`, "jwks and jwks_uri"},
		{"keys on a secret client", `{"jwks":` + string(pub) + `}`, "jwks, jwks_uri"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.admin(t, "POST", "/admin/clients", tc.body)
			if r.Status != http.StatusBadRequest || !strings.Contains(r.str("error_description"), tc.field) {
				t.Fatalf("%d %s, want 400 naming %q", r.Status, r.RawBody, tc.field)
			}
		})
	}
	if r := ts.admin(t, "GET", "/admin/clients", ""); strings.Contains(r.RawBody, "private_key_jwt") {
		t.Fatalf("a refused client was stored: %s", r.RawBody)
	}
}
