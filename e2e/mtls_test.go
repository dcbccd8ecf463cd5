package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/verify"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestMTLSWithTheBinary: the real server, started with client certificates requested and a
// client CA file, authenticates a tls_client_auth client by the certificate golang.org/x/oauth2
// presents and binds its token to it; a verify/ resource server over TLS accepts the token
// with that certificate and refuses it with another from the same CA.
func TestMTLSWithTheBinary(t *testing.T) {
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e client CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	caFile := filepath.Join(dir, "client-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64) tls.Certificate {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "orders", Organization: []string{"Example"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	mine, theirs := issue(2), issue(3)

	certFile := filepath.Join(dir, "data", "dev-cert.pem")
	roots := func() *x509.CertPool {
		b, err := os.ReadFile(certFile)
		if err != nil {
			return nil
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b)
		return pool
	}
	p := launch(t, dir, launchOptions{env: []string{"TOKENSMITH_DEV_TLS=true", "TOKENSMITH_ADMIN_TOKEN=" + sharedAdminToken,
		"TOKENSMITH_TLS_CLIENT_AUTH=request", "TOKENSMITH_TLS_CLIENT_CA=" + caFile}, https: true, roots: roots})

	body := `{"client_id":"orders","scopes":["orders:read"],"audience":["` + apiAudience + `"],` +
		`"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=orders,O=Example",` +
		`"tls_client_certificate_bound_access_tokens":true}`
	req, _ := http.NewRequest("POST", p.adminURL+"/admin/clients", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sharedAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create client: %d", resp.StatusCode)
	}

	withCert := func(c tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots(), Certificates: []tls.Certificate{c}}}}
	}
	cfg := clientcredentials.Config{ClientID: "orders", TokenURL: p.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}
	tok, err := cfg.Token(context.WithValue(context.Background(), oauth2.HTTPClient, withCert(mine)))
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok.AccessToken, claims); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(mine.Certificate[0])
	if cnf, _ := claims["cnf"].(map[string]any); tok.TokenType != "Bearer" || cnf["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatalf("token_type %s, cnf %v: want a Bearer token bound to the certificate", tok.TokenType, claims["cnf"])
	}
	// Without a certificate the client is not authenticated.
	if _, err := cfg.Token(context.WithValue(context.Background(), oauth2.HTTPClient,
		&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots()}}})); err == nil || !strings.Contains(err.Error(), "no client certificate") {
		t.Fatalf("without a certificate: %v", err)
	}

	v, err := verify.New(verify.Config{Issuer: p.url, Audience: []string{apiAudience},
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots()}}}})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewUnstartedServer(v.Middleware(verify.RequireBinding())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	api.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	api.StartTLS()
	defer api.Close()
	for name, tc := range map[string]struct {
		cert   tls.Certificate
		status int
	}{"its certificate": {mine, 200}, "another certificate": {theirs, 401}} {
		tr := api.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{tc.cert}
		req, _ := http.NewRequest("GET", api.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status)
		}
	}
}
