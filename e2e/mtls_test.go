package e2e

import (
	"context"
	"crypto/ecdsa"
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
	ca := newClientCA(t)
	mine, theirs := ca.issue(t), ca.issue(t)
	p, roots := launchMTLS(t, ca)

	cfg := clientcredentials.Config{ClientID: "orders", TokenURL: p.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}
	tok, err := cfg.Token(context.WithValue(context.Background(), oauth2.HTTPClient, withClientCert(roots, &mine)))
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
		withClientCert(roots, nil))); err == nil || !strings.Contains(err.Error(), "no client certificate") {
		t.Fatalf("without a certificate: %v", err)
	}

	v, err := verify.New(verify.Config{Issuer: p.url, Audience: []string{apiAudience},
		HTTPClient: withClientCert(roots, nil)})
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

// clientCA is a CA for client certificates, as an operator has one, in a PEM file for the
// servers to trust.
type clientCA struct {
	file string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newClientCA(t *testing.T) *clientCA {
	t.Helper()
	key := newP256(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e client CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &clientCA{file, cert, key}
}

// issue makes a certificate for client authentication naming CN=orders,O=Example, the subject
// the client "orders" is registered with. Each has a key of its own: two are never the same
// certificate, though either authenticates the client.
func (ca *clientCA) issue(t *testing.T) tls.Certificate {
	t.Helper()
	k := newP256(t)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "orders", Organization: []string{"Example"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// launchMTLS starts the binary over HTTPS (the dev certificate) with client certificates
// requested and ca as the client CA, and registers "orders": a tls_client_auth client by
// CN=orders,O=Example whose tokens are bound to its certificate (CLI --tls-bound), for
// orders:read at apiAudience. roots trusts the dev certificate.
func launchMTLS(t *testing.T, ca *clientCA) (p *proc, roots *x509.CertPool) {
	t.Helper()
	p, devCert := launchHTTPS(t, "TOKENSMITH_TLS_CLIENT_AUTH=request", "TOKENSMITH_TLS_CLIENT_CA="+ca.file)
	roots = x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(devCert))
	registerClient(t, p, `{"client_id":"orders","scopes":["orders:read"],"audience":["`+apiAudience+`"],`+
		`"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=orders,O=Example",`+
		`"tls_client_certificate_bound_access_tokens":true}`)
	return p, roots
}

// withClientCert is a client trusting roots that presents cert, or no certificate when nil.
// Each has a transport of its own: a connection made with one certificate is never reused
// with another.
func withClientCert(roots *x509.CertPool, cert *tls.Certificate) *http.Client {
	conf := &tls.Config{RootCAs: roots}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
}
