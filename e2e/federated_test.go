package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// serviceAccountIssuer stands in for a Kubernetes cluster's service-account issuer on
// loopback: OpenID discovery and a JWKS, one signing key at a time, rotated on demand.
type serviceAccountIssuer struct {
	url string
	mu  sync.Mutex
	kid string
	key *ecdsa.PrivateKey
}

func newServiceAccountIssuer(t *testing.T) *serviceAccountIssuer {
	t.Helper()
	iss := &serviceAccountIssuer{}
	iss.rotate(t, "sa-key-1")
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss.url, "jwks_uri": iss.url + "/openid/v1/jwks",
			"response_types_supported": []string{"id_token"}, "id_token_signing_alg_values_supported": []string{"ES256"}})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.mu.Lock()
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: iss.key.Public(), KeyID: iss.kid, Algorithm: "ES256", Use: "sig"}}}
		iss.mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=3600")
		_ = json.NewEncoder(w).Encode(set)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.url = srv.URL
	return iss
}

// rotate replaces the signing key: the old one is no longer published.
func (s *serviceAccountIssuer) rotate(t *testing.T, kid string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.kid, s.key = kid, k
	s.mu.Unlock()
}

// projectedToken is what the kubelet writes into a projected serviceAccountToken volume.
func (s *serviceAccountIssuer) projectedToken(t *testing.T, ns, name, audience string) string {
	t.Helper()
	s.mu.Lock()
	kid, key := s.kid, s.key
	s.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := josejwt.Signed(signer).Claims(map[string]any{
		"iss": s.url, "sub": "system:serviceaccount:" + ns + ":" + name, "aud": []string{audience},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": ns, "serviceaccount": map[string]any{"name": name, "uid": "0b1c"}},
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestFederatedServiceAccount: an operator trusts a cluster's service-account issuer and
// lists a workload on a client with the CLI; the workload exchanges its projected token for a
// Tokensmith token with golang.org/x/oauth2 and no client_id, before and after the cluster
// rotates its key (the old key gone from its JWKS); the old key's tokens are refused after
// the rotation, and every token once the issuer is no longer trusted.
func TestFederatedServiceAccount(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	cluster := newServiceAccountIssuer(t)
	p.cli(t, "", "trusted-issuer", "add", cluster.url, "--audience", "tokensmith", "--name", "test cluster")
	if out := p.cli(t, "", "client", "create", "--id", "billing", "--federated", cluster.url+"=system:serviceaccount:prod:billing"); !strings.Contains(out, "private_key_jwt") {
		t.Fatalf("client create:\n%s", out)
	}
	exchange := func(token string) (*oauth2.Token, error) {
		cfg := clientcredentials.Config{TokenURL: p.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams,
			EndpointParams: url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {token}}}
		return cfg.Token(context.Background())
	}
	subject := func(tok *oauth2.Token) string {
		parts := strings.Split(tok.AccessToken, ".")
		var c struct {
			Sub string `json:"sub"`
		}
		if len(parts) != 3 {
			t.Fatalf("access token %q", tok.AccessToken)
		}
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(b, &c)
		return c.Sub
	}

	before := cluster.projectedToken(t, "prod", "billing", "tokensmith")
	for range 2 { // the same projected token, as the kubelet hands it out until it is refreshed
		tok, err := exchange(before)
		if err != nil {
			t.Fatal(err)
		}
		if got := subject(tok); got != "billing" {
			t.Fatalf("sub %q, want the client billing", got)
		}
	}
	if _, err := exchange(cluster.projectedToken(t, "prod", "other", "tokensmith")); err == nil || !strings.Contains(err.Error(), "no client lists") {
		t.Fatalf("another service account: %v", err)
	}

	cluster.rotate(t, "sa-key-2")
	after := cluster.projectedToken(t, "prod", "billing", "tokensmith")
	if tok, err := exchange(after); err != nil || subject(tok) != "billing" {
		t.Fatalf("after the rotation: %v", err)
	}
	if _, err := exchange(before); err == nil || !strings.Contains(err.Error(), "no key of the issuer") {
		t.Fatalf("a token of the rotated-out key: %v", err)
	}

	var issuers []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(p.cli(t, "", "--json", "trusted-issuer", "list")), &issuers); err != nil || len(issuers) != 1 {
		t.Fatalf("trusted-issuer list: %v %v", issuers, err)
	}
	p.cli(t, "", "trusted-issuer", "delete", issuers[0].ID)
	if _, err := exchange(after); err == nil || !strings.Contains(err.Error(), "trusted issuer") {
		t.Fatalf("after the issuer was deleted: %v", err)
	}
}
