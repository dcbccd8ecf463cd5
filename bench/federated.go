package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionPost is a token request authenticated by a client assertion, without HTTP Basic.
func assertionPost(tokenURL, clientID, assertion string) post {
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {assertionType}, "client_assertion": {assertion}}
	if clientID != "" {
		form.Set("client_id", clientID)
	}
	return post{url: tokenURL, body: []byte(form.Encode())}
}

// prepareFederated is fresh issuance for a workload that authenticates with its platform's
// token: an issuer in this process on loopback (OIDC discovery and a JWKS, as a cluster's
// service-account issuer serves them) is trusted, a client lists the workload, and every
// request sends the same ES256 token without client_id, as a pod sends its projected token.
// The server fetches the issuer's keys once and verifies one signature per request.
func prepareFederated(s *server, _ *fixture) (newWorker, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/openid/v1/jwks"})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "sa-1", Algorithm: "ES256", Use: "sig"}}})
	})
	// Left running until the benchmark exits: the server may refetch the keys at any time.
	issuer = httptest.NewServer(mux).URL
	if err := s.admin("POST", "/admin/trusted-issuers", map[string]any{"issuer": issuer, "audiences": []string{"tokensmith-bench"}}, nil); err != nil {
		return nil, err
	}
	const sub = "system:serviceaccount:bench:workload"
	if _, err := s.createClient("federated", []string{"client_credentials"}, map[string]any{
		"federated_identities": []map[string]string{{"issuer": issuer, "subject": sub}}}); err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "sa-1"))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tok, err := josejwt.Signed(signer).Claims(map[string]any{"iss": issuer, "sub": sub, "aud": []string{"tokensmith-bench"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
	if err != nil {
		return nil, err
	}
	p := assertionPost(s.url+"/oauth2/token", "", tok)
	status, body, err := p.do(http.DefaultClient)
	if err != nil {
		return nil, err
	}
	if err := checkToken(status, body); err != nil {
		return nil, fmt.Errorf("a workload's token: %w", err)
	}
	return func(_ int, hc *http.Client) (step, error) {
		return func() error {
			status, body, err := p.do(hc)
			if err != nil {
				return err
			}
			return checkToken(status, body)
		}, nil
	}, nil
}
