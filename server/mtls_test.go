package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	verifier "github.com/tokensmith/tokensmith/verify"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// leaf is what a test certificate says; zero dates mean valid from an hour ago for a day, and
// no usages mean client authentication.
type leaf struct {
	subject   pkix.Name
	dns       []string
	uris      []string
	ips       []string
	emails    []string
	notBefore time.Time
	notAfter  time.Time
	usages    []x509.ExtKeyUsage
}

func (l leaf) template(serial int64) *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: l.subject, DNSNames: l.dns, EmailAddresses: l.emails,
		NotBefore: l.notBefore, NotAfter: l.notAfter, ExtKeyUsage: l.usages, KeyUsage: x509.KeyUsageDigitalSignature}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	}
	if tmpl.ExtKeyUsage == nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, u := range l.uris {
		pu, _ := url.Parse(u)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	for _, ip := range l.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	return tmpl
}

// issue makes a client certificate signed by the CA.
func (ca *testCA) issue(t *testing.T, l leaf) tls.Certificate {
	t.Helper()
	key := newECKey(t)
	der, err := x509.CreateCertificate(rand.Reader, l.template(time.Now().UnixNano()), ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}
}

// selfSignedCert makes a self-signed client certificate and the JWKS holding its public key.
func selfSignedCert(t *testing.T, l leaf) (tls.Certificate, json.RawMessage) {
	t.Helper()
	key := newECKey(t)
	tmpl := l.template(1)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "cert-key", Use: "sig", Algorithm: "ES256"}}})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, jwks
}

// tlsClient is an HTTP client that trusts ts's certificate and presents certs.
func (ts *testServer) tlsClient(certs ...tls.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(ts.serverCert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
}

// certToken asks for a client_credentials token as id (client_id in the body, no secret)
// presenting certs.
func (ts *testServer) certToken(t *testing.T, id string, header map[string]string, certs ...tls.Certificate) reply {
	t.Helper()
	req, err := http.NewRequest("POST", ts.URL+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "client_id": {id}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return sendWith(t, ts.tlsClient(certs...), req)
}

// mtlsClient registers a client through the admin API and fails the test unless it is created.
func (ts *testServer) mtlsClient(t *testing.T, in registry.ClientInput) {
	t.Helper()
	body, _ := json.Marshal(in)
	if r := ts.admin(t, "POST", "/admin/clients", string(body)); r.Status != http.StatusCreated || r.str("client_secret") != "" {
		t.Fatalf("create %s: %d %s, want 201 without a secret", *in.ClientID, r.Status, r.RawBody)
	}
}

// TestMTLSClientAuthRefusals: every way a certificate can fail to authenticate a tls_client_auth
// or self_signed_tls_client_auth client is a 401 invalid_client naming the check, recorded in
// the audit trail with that reason, and issues nothing.
func TestMTLSClientAuthRefusals(t *testing.T) {
	ca, other := newTestCA(t, "client CA"), newTestCA(t, "another CA")
	ts := newTestServer(t, withMTLS(ca.pool, ""))
	orders := pkix.Name{CommonName: "orders", Organization: []string{"Example"}}
	ts.mtlsClient(t, registry.ClientInput{ClientID: ptr("dn-client"), TokenEndpointAuthMethod: ptr(protocol.AuthTLSClient),
		TLSClientAuthSubjectDN: ptr("CN=orders, O=Example")})
	ts.mtlsClient(t, registry.ClientInput{ClientID: ptr("san-client"), TokenEndpointAuthMethod: ptr(protocol.AuthTLSClient),
		TLSClientAuthSANDNS: ptr("orders.example.com")})
	_, jwks := selfSignedCert(t, leaf{subject: orders})
	raw := json.RawMessage(jwks)
	ts.mtlsClient(t, registry.ClientInput{ClientID: ptr("self-client"), TokenEndpointAuthMethod: ptr(protocol.AuthSelfSignedTLSClient), JWKS: &raw})
	unregistered, _ := selfSignedCert(t, leaf{subject: orders})
	expiredSelf, _ := selfSignedCert(t, leaf{subject: orders, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})

	tests := []struct {
		name   string
		client string
		certs  []tls.Certificate
		header map[string]string
		reason string
	}{
		{"no certificate", "dn-client", nil, nil, "no client certificate was presented"},
		{"certificate of another CA", "dn-client", []tls.Certificate{other.issue(t, leaf{subject: orders})}, nil, "does not chain to the client CA"},
		{"subject DN mismatch", "dn-client", []tls.Certificate{ca.issue(t, leaf{subject: pkix.Name{CommonName: "billing", Organization: []string{"Example"}}})}, nil, "subject DN is not the one registered"},
		{"DNS SAN mismatch", "san-client", []tls.Certificate{ca.issue(t, leaf{subject: orders, dns: []string{"billing.example.com"}})}, nil, "DNS SAN is not the one registered"},
		{"expired certificate", "dn-client", []tls.Certificate{ca.issue(t, leaf{subject: orders, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})}, nil, "has expired or is not yet valid"},
		{"server certificate", "dn-client", []tls.Certificate{ca.issue(t, leaf{subject: orders, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})}, nil, "not for client authentication"},
		{"self-signed for a CA client", "dn-client", []tls.Certificate{unregistered}, nil, "does not chain to the client CA"},
		{"self-signed key not in jwks", "self-client", []tls.Certificate{unregistered}, nil, "public key is not in the client's jwks"},
		{"self-signed expired", "self-client", []tls.Certificate{expiredSelf}, nil, "has expired or is not yet valid"},
		{"no certificate, self-signed", "self-client", nil, nil, "no client certificate was presented"},
		{"secret sent as well", "dn-client", []tls.Certificate{ca.issue(t, leaf{subject: orders})}, map[string]string{"Authorization": basic("dn-client", "guess")}, "client must authenticate with tls_client_auth"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.certToken(t, tc.client, tc.header, tc.certs...)
			if r.Status != http.StatusUnauthorized || r.str("error") != protocol.InvalidClient || !strings.Contains(r.str("error_description"), tc.reason) {
				t.Fatalf("%d %s, want 401 invalid_client saying %q", r.Status, r.RawBody, tc.reason)
			}
			if r.str("access_token") != "" {
				t.Fatal("a token was issued")
			}
			// A caller that tried HTTP Basic gets its challenge (RFC 6749 §5.2).
			if _, basicTried := tc.header["Authorization"]; basicTried != strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("WWW-Authenticate %q with HTTP Basic tried: %v", r.Header.Get("WWW-Authenticate"), basicTried)
			}
		})
	}
	_, events := ts.auditTrail(t)
	refused := map[string]bool{}
	for _, e := range events {
		if e.Kind == audit.TokenRefused {
			refused[e.Reason] = true
		}
		if e.Kind == audit.TokenIssued {
			t.Fatalf("a token was issued: %+v", e)
		}
	}
	for _, tc := range tests {
		found := false
		for reason := range refused {
			found = found || strings.Contains(reason, tc.reason)
		}
		if !found {
			t.Errorf("no token.refused event with reason %q in %v", tc.reason, refused)
		}
	}
}

// TestMTLSClientAuthSucceeds: each way of naming a tls_client_auth client's certificate, and a
// self-signed certificate whose key the client registered, get a token through
// golang.org/x/oauth2's clientcredentials over a TLS connection presenting the certificate;
// without tls_client_certificate_bound_access_tokens the token is a plain bearer token.
func TestMTLSClientAuthSucceeds(t *testing.T) {
	ca := newTestCA(t, "client CA")
	ts := newTestServer(t, withMTLS(ca.pool, ""))
	self, jwks := selfSignedCert(t, leaf{subject: pkix.Name{CommonName: "self"}})
	raw := json.RawMessage(jwks)
	// A self-signed client that publishes its key at a jwks_uri (plain HTTP on loopback).
	published, publishedJWKS := selfSignedCert(t, leaf{subject: pkix.Name{CommonName: "published"}})
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(publishedJWKS) }))
	defer keys.Close()
	for _, tc := range []struct {
		name string
		in   registry.ClientInput
		cert tls.Certificate
	}{
		{"subject DN", registry.ClientInput{TLSClientAuthSubjectDN: ptr("CN=orders,OU=Shop,O=Example,C=DE")},
			ca.issue(t, leaf{subject: pkix.Name{CommonName: "orders", OrganizationalUnit: []string{"Shop"}, Organization: []string{"Example"}, Country: []string{"DE"}}})},
		// The certificate's own order, CN first, as openssl -nameopt RFC2253 prints it (last
		// attribute first), not Go's fixed order.
		{"subject DN in the certificate's order", registry.ClientInput{TLSClientAuthSubjectDN: ptr("O=Example,CN=orders")},
			ca.issue(t, leaf{subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "orders"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: "Example"}}}})},
		{"DNS SAN", registry.ClientInput{TLSClientAuthSANDNS: ptr("orders.example.com")}, ca.issue(t, leaf{dns: []string{"a.example.com", "orders.example.com"}})},
		{"URI SAN", registry.ClientInput{TLSClientAuthSANURI: ptr("spiffe://example.com/orders")}, ca.issue(t, leaf{uris: []string{"spiffe://example.com/orders"}})},
		{"IP SAN", registry.ClientInput{TLSClientAuthSANIP: ptr("10.1.2.3")}, ca.issue(t, leaf{ips: []string{"10.1.2.3"}})},
		{"email SAN", registry.ClientInput{TLSClientAuthSANEmail: ptr("orders@example.com")}, ca.issue(t, leaf{emails: []string{"orders@example.com"}})},
		{"self-signed", registry.ClientInput{TokenEndpointAuthMethod: ptr(protocol.AuthSelfSignedTLSClient), JWKS: &raw}, self},
		{"self-signed, key at a jwks_uri", registry.ClientInput{TokenEndpointAuthMethod: ptr(protocol.AuthSelfSignedTLSClient), JWKSURI: ptr(keys.URL)}, published},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			in := tc.in
			in.ClientID = &id
			if in.TokenEndpointAuthMethod == nil {
				in.TokenEndpointAuthMethod = ptr(protocol.AuthTLSClient)
			}
			ts.mtlsClient(t, in)
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, ts.tlsClient(tc.cert))
			cc := clientcredentials.Config{ClientID: id, TokenURL: ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != protocol.TokenTypeBearer {
				t.Fatalf("token_type %q, want Bearer", tok.TokenType)
			}
			if cnf := claimsOf(t, tok.AccessToken)["cnf"]; cnf != nil {
				t.Fatalf("cnf %v in a token of a client that did not ask for binding", cnf)
			}
		})
	}
}

func claimsOf(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func thumbprint(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestCertificateBoundToken: a client with tls_client_certificate_bound_access_tokens gets a
// Bearer token whose cnf x5t#S256 is its certificate's, handed out again by reuse over the
// same certificate only; introspection answers the cnf; verify/ accepts the token over a TLS
// connection with the same certificate and refuses it with another. Without the certificate
// the request is refused.
func TestCertificateBoundToken(t *testing.T) {
	ca := newTestCA(t, "client CA")
	ts := newTestServer(t, withMTLS(ca.pool, ""))
	mine := ca.issue(t, leaf{subject: pkix.Name{CommonName: "orders"}})
	theirs := ca.issue(t, leaf{subject: pkix.Name{CommonName: "orders"}})
	ts.mtlsClient(t, registry.ClientInput{ClientID: ptr("bound"), TokenEndpointAuthMethod: ptr(protocol.AuthTLSClient),
		TLSClientAuthSubjectDN: ptr("CN=orders"), TLSClientCertificateBoundAccessTokens: ptr(true), Reuse: ptr(true)})

	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, ts.tlsClient(mine))
	cc := clientcredentials.Config{ClientID: "bound", TokenURL: ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != protocol.TokenTypeBearer {
		t.Fatalf("token_type %q, want Bearer (RFC 8705 keeps the type)", tok.TokenType)
	}
	cnf, _ := claimsOf(t, tok.AccessToken)["cnf"].(map[string]any)
	if got, want := cnf["x5t#S256"], thumbprint(mine); got != want {
		t.Fatalf("cnf x5t#S256 %v, want %s", got, want)
	}
	// Reuse pools bound tokens by certificate: the same certificate gets the same token back,
	// another certificate of the same client a token of its own.
	if same, err := cc.Token(ctx); err != nil || same.AccessToken != tok.AccessToken {
		t.Fatalf("the same certificate again: %v, reused %v", err, err == nil && same.AccessToken == tok.AccessToken)
	}
	otherCtx := context.WithValue(context.Background(), oauth2.HTTPClient, ts.tlsClient(theirs))
	again, err := cc.Token(otherCtx)
	if err != nil {
		t.Fatal(err)
	}
	cnf, _ = claimsOf(t, again.AccessToken)["cnf"].(map[string]any)
	if again.AccessToken == tok.AccessToken || cnf["x5t#S256"] != thumbprint(theirs) {
		t.Fatalf("another certificate got the first one's token (%v) or a token bound to %v", again.AccessToken == tok.AccessToken, cnf["x5t#S256"])
	}

	// Introspection, authenticated by the same certificate, answers the binding.
	req, _ := http.NewRequest("POST", ts.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok.AccessToken}, "client_id": {"bound"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := sendWith(t, ts.tlsClient(mine), req)
	got, _ := r.Body["cnf"].(map[string]any)
	if r.Status != http.StatusOK || r.Body["active"] != true || got["x5t#S256"] != thumbprint(mine) || r.str("token_type") != protocol.TokenTypeBearer {
		t.Fatalf("introspect: %d %s", r.Status, r.RawBody)
	}

	// Revocation, authenticated by the certificate, ends the token and takes it out of its
	// pool: that certificate's next request gets a new one.
	req, _ = http.NewRequest("POST", ts.URL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {again.AccessToken}, "client_id": {"bound"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := sendWith(t, ts.tlsClient(mine), req); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.RawBody)
	}
	req, _ = http.NewRequest("POST", ts.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {again.AccessToken}, "client_id": {"bound"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := sendWith(t, ts.tlsClient(mine), req); r.Status != http.StatusOK || r.Body["active"] != false {
		t.Fatalf("introspect after revoke: %d %s", r.Status, r.RawBody)
	}
	if next, err := cc.Token(otherCtx); err != nil || next.AccessToken == again.AccessToken {
		t.Fatalf("after revocation: %v, the revoked token again %v", err, err == nil && next.AccessToken == again.AccessToken)
	}

	if r := ts.certToken(t, "bound", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("no certificate: %d %s, want 401", r.Status, r.RawBody)
	}

	// A resource server using verify/ over TLS, asking for client certificates.
	v, err := verifier.New(verifier.Config{Issuer: ts.URL, Audience: []string{"https://api.example.com"}, HTTPClient: ts.tlsClient()})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewUnstartedServer(v.Middleware(verifier.RequireBinding())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	api.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	api.StartTLS()
	defer api.Close()
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		status int
	}{
		{"the certificate it is bound to", mine, http.StatusOK},
		{"another certificate of the same client", theirs, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
				t.Fatalf("%d %s, want %d", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status)
			}
		})
	}
}

// TestClientCertHeader: behind a TLS-terminating proxy the certificate comes from the
// configured header, believed from a trusted proxy only; from anyone else the header is
// ignored, and a trusted proxy's header without a certificate is a 400.
func TestClientCertHeader(t *testing.T) {
	ca := newTestCA(t, "client CA")
	cert := ca.issue(t, leaf{subject: pkix.Name{CommonName: "orders"}})
	escaped := url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})))
	in := registry.ClientInput{ClientID: ptr("proxied"), TokenEndpointAuthMethod: ptr(protocol.AuthTLSClient), TLSClientAuthSubjectDN: ptr("CN=orders")}
	for _, tc := range []struct {
		name    string
		trusted string
		value   string
		status  int
		reason  string
	}{
		{"from a trusted proxy", "127.0.0.1", escaped, http.StatusOK, ""},
		{"from anyone else", "10.9.9.9", escaped, http.StatusUnauthorized, "no client certificate was presented"},
		{"not a certificate", "127.0.0.1", "hello", http.StatusBadRequest, "holds no URL-encoded PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, withMTLS(ca.pool, "X-SSL-Client-Cert"), withTrustedProxies(tc.trusted))
			ts.mtlsClient(t, in)
			r := ts.certToken(t, "proxied", map[string]string{"X-SSL-Client-Cert": tc.value})
			if r.Status != tc.status || !strings.Contains(r.str("error_description"), tc.reason) {
				t.Fatalf("%d %s, want %d %q", r.Status, r.RawBody, tc.status, tc.reason)
			}
		})
	}
}

// TestMTLSDiscovery: discovery offers the mutual-TLS methods, certificate-bound tokens and the
// endpoint aliases only when client certificates reach the server.
func TestMTLSDiscovery(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		var ts *testServer
		if mtls {
			ts = newTestServer(t, withMTLS(x509.NewCertPool(), ""))
		} else {
			ts = newTestServer(t)
		}
		req, _ := http.NewRequest("GET", ts.URL+"/.well-known/oauth-authorization-server", nil)
		r := sendWith(t, ts.http, req)
		methods, _ := json.Marshal(r.Body["token_endpoint_auth_methods_supported"])
		intro, _ := json.Marshal(r.Body["introspection_endpoint_auth_methods_supported"])
		aliases, _ := r.Body["mtls_endpoint_aliases"].(map[string]any)
		has := strings.Contains(string(methods), `"tls_client_auth"`) && strings.Contains(string(methods), `"self_signed_tls_client_auth"`) &&
			strings.Contains(string(intro), `"tls_client_auth"`)
		if has != mtls || (r.Body["tls_client_certificate_bound_access_tokens"] == true) != mtls || (aliases != nil) != mtls {
			t.Fatalf("mtls %v: %s", mtls, r.RawBody)
		}
		if mtls && aliases["token_endpoint"] != ts.URL+"/oauth2/token" {
			t.Fatalf("aliases %v", aliases)
		}
	}
}

// TestCertificateBoundSecretClient: binding follows the registration, not the method: a
// client that authenticates with its secret and asks for certificate-bound tokens gets one
// bound to the certificate it presents, and without one is refused rather than handed a
// bearer token.
func TestCertificateBoundSecretClient(t *testing.T) {
	ca := newTestCA(t, "client CA")
	ts := newTestServer(t, withMTLS(ca.pool, ""))
	id, sec := ts.client(t, registry.ClientInput{ClientID: ptr("secret-bound"), TLSClientCertificateBoundAccessTokens: ptr(true)})
	cert := ca.issue(t, leaf{subject: pkix.Name{CommonName: "anything"}})

	if r := ts.form(t, id, sec, url.Values{"grant_type": {"client_credentials"}}); r.Status != http.StatusBadRequest ||
		r.str("error") != protocol.InvalidRequest || !strings.Contains(r.str("error_description"), "bound to its TLS client certificate") {
		t.Fatalf("no certificate: %d %s, want 400 invalid_request", r.Status, r.RawBody)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, ts.tlsClient(cert))
	tok, err := (&clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: ts.URL + "/oauth2/token"}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cnf, _ := claimsOf(t, tok.AccessToken)["cnf"].(map[string]any); cnf["x5t#S256"] != thumbprint(cert) {
		t.Fatalf("cnf %v, want the presented certificate's thumbprint", cnf)
	}
}

// TestCertificateBoundPublicLogin: a public client has no secret, so its refresh token is bound
// to the certificate its login came with (RFC 8705 §4): a refresh over a connection with that
// certificate works and yields a token bound to it, one with another certificate is
// invalid_grant and rotates nothing, one without a certificate is refused.
func TestCertificateBoundPublicLogin(t *testing.T) {
	ca := newTestCA(t, "client CA")
	ts := newTestServer(t, withMTLS(ca.pool, ""))
	ts.user(t, "lena", "lena-password-1")
	ts.mtlsClient(t, registry.ClientInput{ClientID: ptr("app"), TokenEndpointAuthMethod: ptr(protocol.AuthNone),
		GrantTypes: ptr([]string{"password", "refresh_token"}), TLSClientCertificateBoundAccessTokens: ptr(true)})
	mine := ca.issue(t, leaf{subject: pkix.Name{CommonName: "app"}})
	theirs := ca.issue(t, leaf{subject: pkix.Name{CommonName: "app"}})
	post := func(v url.Values, certs ...tls.Certificate) reply {
		t.Helper()
		req, _ := http.NewRequest("POST", ts.URL+"/oauth2/token", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return sendWith(t, ts.tlsClient(certs...), req)
	}
	login := post(url.Values{"grant_type": {"password"}, "client_id": {"app"}, "username": {"lena"}, "password": {"lena-password-1"}}, mine)
	if login.Status != http.StatusOK || login.str("refresh_token") == "" {
		t.Fatalf("login: %d %s", login.Status, login.RawBody)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {login.str("refresh_token")}}
	for _, tc := range []struct {
		name   string
		certs  []tls.Certificate
		status int
		code   string
	}{
		{"another certificate", []tls.Certificate{theirs}, http.StatusBadRequest, protocol.InvalidGrant},
		{"no certificate", nil, http.StatusBadRequest, protocol.InvalidRequest},
	} {
		if r := post(refresh, tc.certs...); r.Status != tc.status || r.str("error") != tc.code {
			t.Fatalf("refresh with %s: %d %s, want %d %s", tc.name, r.Status, r.RawBody, tc.status, tc.code)
		}
	}
	r := post(refresh, mine)
	if r.Status != http.StatusOK {
		t.Fatalf("refresh with the login's certificate: %d %s (a refused refresh must rotate nothing)", r.Status, r.RawBody)
	}
	if cnf, _ := claimsOf(t, r.str("access_token"))["cnf"].(map[string]any); cnf["x5t#S256"] != thumbprint(mine) {
		t.Fatalf("cnf %v, want the login's certificate", cnf)
	}
}
