package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The scenarios that need the public listener to serve TLS. They run on a server of the main
// build that serves HTTPS with a certificate of the benchmark's own CA and asks callers for a
// client certificate (tls_client_auth request), trusting that CA for tls_client_auth clients.
// Connections are kept alive as on plain HTTP: a worker makes one TLS handshake and then sends
// request after request on it, as a pooled client does, so these rows measure what TLS and
// the certificate checks cost per request, not a handshake per request.
var tlsScenarioNames = map[string]bool{"fresh-tls": true, "mtls": true, "mtls-self-signed": true, "mtls-bound": true}

func tlsScenario(name string) bool { return tlsScenarioNames[name] }

// clientAuthScenario reports whether a scenario is fresh issuance with another client
// authentication or binding than a secret on plain HTTP: these run in the rounds beside
// fresh issuance, so that what each adds to the secret path is read from one run.
func clientAuthScenario(name string) bool {
	switch name {
	case "federated", "private-key-jwt", "dpop":
		return true
	}
	return tlsScenario(name)
}

// benchPKI is the certificate authority of one benchmark run: it issues the TLS servers'
// certificate (for 127.0.0.1) and the tls_client_auth clients' certificates.
type benchPKI struct {
	ca    *x509.Certificate
	key   *ecdsa.PrivateKey
	roots *x509.CertPool
	// caPEM is the CA certificate; serverPEM and serverKeyPEM the servers' certificate and key.
	caPEM, serverPEM, serverKeyPEM []byte
}

// pki is made once per run, on first use.
var pki = sync.OnceValues(newBenchPKI)

func newBenchPKI() (*benchPKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Tokensmith bench CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &benchPKI{ca: ca, key: key, roots: x509.NewCertPool(), caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	p.roots.AddCert(ca)
	srv, err := p.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(srv.PrivateKey)
	if err != nil {
		return nil, err
	}
	p.serverPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate[0]})
	p.serverKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return p, nil
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 1}

// issue makes a certificate of tmpl's names and usages, valid for a day, with a new P-256 key,
// signed by the CA.
func (p *benchPKI) issue(tmpl *x509.Certificate) (tls.Certificate, error) {
	serial.Lock()
	serial.n++
	tmpl.SerialNumber = big.NewInt(serial.n)
	serial.Unlock()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, err
}

// writeServerFiles writes the CA and the server's certificate and key into dir and returns
// the server's environment for them: HTTPS on the public listener, client certificates asked
// for and checked against the CA.
func (p *benchPKI) writeServerFiles(dir string) ([]string, error) {
	files := map[string][]byte{"bench-ca.pem": p.caPEM, "tls.crt": p.serverPEM, "tls.key": p.serverKeyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	return []string{"TOKENSMITH_TLS_CERT=" + filepath.Join(dir, "tls.crt"), "TOKENSMITH_TLS_KEY=" + filepath.Join(dir, "tls.key"),
		"TOKENSMITH_TLS_CLIENT_AUTH=request", "TOKENSMITH_TLS_CLIENT_CA=" + filepath.Join(dir, "bench-ca.pem")}, nil
}

// clientTLS is the TLS configuration of the load generator's clients of s: s's CA trusted,
// cert (if any) presented when asked. nil for a server on plain HTTP.
func (s *server) clientTLS(cert *tls.Certificate) *tls.Config {
	if s.roots == nil {
		return nil
	}
	conf := &tls.Config{RootCAs: s.roots}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	return conf
}

// setupClient is the client of requests made outside the measured window (readiness, a
// scenario's first request), presenting cert when s serves TLS.
func (s *server) setupClient(cert *tls.Certificate) *http.Client {
	conf := s.clientTLS(cert)
	if conf == nil {
		return http.DefaultClient
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
}

// certPost is a client_credentials request of a client that authenticates with its
// certificate: client_id in the body and nothing else (RFC 8705 §2).
func certPost(tokenURL, clientID string) post {
	return post{url: tokenURL, body: []byte(url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}}.Encode())}
}

// prepareFreshTLS is the secret path over the TLS server: what the certificate rows are
// compared with, so that they show what the certificate check costs beyond TLS itself.
func prepareFreshTLS(s *server, f *fixture) (newWorker, error) {
	if s.roots == nil {
		return nil, errors.New("needs a server on TLS")
	}
	return prepareClientCredentials("fresh-tls", nil)(s, f)
}

// prepareMTLS is fresh issuance for a tls_client_auth client: a certificate from the CA the
// server trusts, named by its subject DN. Per request the server verifies the chain (one
// ECDSA P-256 check) and compares the subject. With bound, the client's tokens are bound to
// the certificate, and every answer must carry its x5t#S256.
func prepareMTLS(bound bool) func(*server, *fixture) (newWorker, error) {
	return func(s *server, f *fixture) (newWorker, error) {
		name := "mtls"
		if bound {
			name = "mtls-bound"
		}
		p, err := pki()
		if err != nil {
			return nil, err
		}
		cert, err := p.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "bench-" + name},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			return nil, err
		}
		extra := map[string]any{"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=bench-" + name}
		if bound {
			extra["tls_client_certificate_bound_access_tokens"] = true
		}
		return certScenario(s, f, name, cert, extra, bound)
	}
}

// prepareMTLSSelfSigned is fresh issuance for a self_signed_tls_client_auth client: a
// self-signed certificate whose public key the client registered (jwks). No chain to verify:
// the server compares the certificate's key with the client's keys.
func prepareMTLSSelfSigned(s *server, f *fixture) (newWorker, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench-mtls-self-signed"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "cert-key", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return certScenario(s, f, "mtls-self-signed", cert, map[string]any{
		"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": json.RawMessage(set)}, false)
}

// certScenario registers a client authenticating with cert and returns the workers of its
// fresh issuance; the run presents cert on every connection. Every answer must be a Bearer
// token (RFC 8705 §3 keeps that type for bound tokens) and, when bound, carry the
// certificate's thumbprint in cnf.
func certScenario(s *server, f *fixture, name string, cert tls.Certificate, extra map[string]any, bound bool) (newWorker, error) {
	if s.roots == nil {
		return nil, errors.New("needs a server on TLS")
	}
	c, err := s.createClient(name, []string{"client_credentials"}, extra)
	if err != nil {
		return nil, err
	}
	f.useCert(name, cert)
	var want []byte
	if bound {
		sum := sha256.Sum256(cert.Certificate[0])
		want = []byte(base64.RawURLEncoding.EncodeToString(sum[:]))
	}
	p := certPost(s.url+"/oauth2/token", c.ID)
	send := func(hc *http.Client) error {
		status, body, err := p.do(hc)
		if err != nil {
			return err
		}
		if err := checkToken(status, body); err != nil {
			return err
		}
		if tt := field(body, "token_type"); tt != "Bearer" {
			return fmt.Errorf("token_type %s, want Bearer", tt)
		}
		if bound {
			return checkCertBound(field(body, "access_token"), want)
		}
		return nil
	}
	if err := send(s.setupClient(&cert)); err != nil {
		return nil, fmt.Errorf("the first request: %w", err)
	}
	return func(_ int, hc *http.Client) (step, error) {
		return func() error { return send(hc) }, nil
	}, nil
}

// checkCertBound checks that an access token's cnf is the x5t#S256 thumbprint want.
func checkCertBound(token string, want []byte) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("the access token is not a JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return err
	}
	var claims struct {
		Cnf map[string]string `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return err
	}
	if got := claims.Cnf["x5t#S256"]; !bytes.Equal([]byte(got), want) {
		return fmt.Errorf("cnf x5t#S256 %q, want the client certificate's %s", got, want)
	}
	return nil
}

// useCert records the certificate the load generator presents in a scenario's runs.
func (f *fixture) useCert(scenario string, cert tls.Certificate) {
	if f.certs == nil {
		f.certs = map[string]*tls.Certificate{}
	}
	f.certs[scenario] = &cert
}
