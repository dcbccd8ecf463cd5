package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/dpop"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestDPoPWithTheExampleAPI: an integrator's Go code gets a DPoP-bound token from Tokensmith
// over HTTPS (golang.org/x/oauth2 with package dpop's transport) and calls the example
// resource server's route that requires binding: it succeeds. The same token from a client
// with another key, or sent as a bearer token, is refused.
func TestDPoPWithTheExampleAPI(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "data", "dev-cert.pem")
	roots := devCertRoots(certFile)
	p := launch(t, dir, launchOptions{env: []string{"TOKENSMITH_DEV_TLS=true", "TOKENSMITH_ADMIN_TOKEN=" + sharedAdminToken}, https: true, roots: roots})
	tlsBase := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots()}}

	clientID, clientSecret := registerClient(t, p,
		`{"name":"bound orders","scopes":["orders:read"],"audience":["`+apiAudience+`"],"dpop_bound_access_tokens":true}`)
	api := startAPI(t, "TOKENSMITH_ISSUER="+p.url, "API_AUDIENCE="+apiAudience, "API_CA_FILE="+certFile)

	newKey := func() *dpop.Signer {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := dpop.NewSigner(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The integrator's code: three lines beside a plain clientcredentials.Config.
	key := newKey()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: key.Transport(tlsBase)})
	cfg := clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: p.url + "/oauth2/token", Scopes: []string{"orders:read"}}
	src := cfg.TokenSource(ctx)
	holder := &http.Client{Transport: &oauth2.Transport{Source: src, Base: key.Transport(nil)}}

	got, err := holder.Get(api.url + "/bound/orders")
	if err != nil {
		t.Fatal(err)
	}
	got.Body.Close()
	if got.StatusCode != 200 {
		t.Fatalf("the key's holder: %d %s", got.StatusCode, got.Header.Get("WWW-Authenticate"))
	}
	tok, err := src.Token()
	if err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("token %v %v", tok, err)
	}

	thief := &http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(tok), Base: newKey().Transport(nil)}}
	stolen, err := thief.Get(api.url + "/bound/orders")
	if err != nil {
		t.Fatal(err)
	}
	stolen.Body.Close()
	req, _ := http.NewRequest("GET", api.url+"/bound/orders", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	asBearer, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	asBearer.Body.Close()
	for name, r := range map[string]*http.Response{"another key": stolen, "as a bearer token": asBearer} {
		if r.StatusCode != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "DPoP ") {
			t.Errorf("the token with %s: %d %s", name, r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	}

	// The client must bind: a token request without a proof gets nothing.
	plain := clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: p.url + "/oauth2/token"}
	if _, err := plain.Token(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: tlsBase})); err == nil ||
		!strings.Contains(err.Error(), "DPoP proof") {
		t.Fatalf("a token request without a proof: %v", err)
	}
}
