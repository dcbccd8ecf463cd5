package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestCertificateBoundWithTheExampleAPI: a tls_client_auth client gets a token bound to its
// certificate from the real binary (golang.org/x/oauth2 presenting the certificate) and calls
// the example resource server, a process of its own serving HTTPS and asking for client
// certificates from the same CA. Over a connection with that certificate /bound/orders
// answers; with another certificate from the CA, or none, the token is refused, and so it is on
// /orders, which takes bearer tokens: a bound token is bound on every route.
func TestCertificateBoundWithTheExampleAPI(t *testing.T) {
	ca := newClientCA(t)
	mine, theirs := ca.issue(t), ca.issue(t)
	p, roots := launchMTLS(t, ca)

	cfg := clientcredentials.Config{ClientID: "orders", TokenURL: p.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams, Scopes: []string{"orders:read"}}
	tok, err := cfg.Token(context.WithValue(context.Background(), oauth2.HTTPClient, withClientCert(roots, &mine)))
	if err != nil {
		t.Fatal(err)
	}
	// Without the binding every refusal below would be an accident of something else.
	sum := sha256.Sum256(mine.Certificate[0])
	if cnf, _ := tokenClaims(t, tok.AccessToken)["cnf"].(map[string]any); cnf["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatalf("cnf %v: want the token bound to the certificate it was asked with", cnf)
	}

	// The API serves HTTPS with Tokensmith's dev certificate, as on a developer's machine, and
	// reaches Tokensmith trusting it.
	devCert, devKey := filepath.Join(p.dir, "data", "dev-cert.pem"), filepath.Join(p.dir, "data", "dev-key.pem")
	api := startAPI(t, "TOKENSMITH_ISSUER="+p.url, "API_AUDIENCE="+apiAudience, "API_CA_FILE="+devCert,
		"API_TLS_CERT="+devCert, "API_TLS_KEY="+devKey, "API_TLS_CLIENT_CA="+ca.file)
	if !strings.HasPrefix(api.url, "https://") {
		t.Fatalf("the API at %s: want HTTPS", api.url)
	}

	for _, tc := range []struct {
		name, path string
		cert       *tls.Certificate
		status     int
		// why is a part of the refusal's error_description, in the body and the challenge.
		why string
	}{
		{"its certificate", "/bound/orders", &mine, 200, ""},
		{"another certificate from the CA", "/bound/orders", &theirs, 401, "bound to another client certificate"},
		{"no certificate", "/bound/orders", nil, 401, "the connection presented none"},
		{"another certificate on a route that takes bearer tokens", "/orders", &theirs, 401, "bound to another client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", api.url+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			client := withClientCert(roots, tc.cert)
			defer client.CloseIdleConnections()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d %v (%s), want %d", resp.StatusCode, body, challenge, tc.status)
			}
			if tc.status == 200 {
				if body["client_id"] != "orders" {
					t.Errorf("body %v: want the orders of client orders", body)
				}
				return
			}
			desc, _ := body["error_description"].(string)
			if body["error"] != "invalid_token" || !strings.Contains(desc, tc.why) ||
				!strings.Contains(challenge, `error="invalid_token"`) || !strings.Contains(challenge, tc.why) {
				t.Errorf("body %v, WWW-Authenticate %q: want invalid_token saying %q", body, challenge, tc.why)
			}
		})
	}
}
