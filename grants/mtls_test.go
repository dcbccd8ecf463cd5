package grants

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

func TestNormalizeDN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"CN=orders,O=Example", "CN=orders,O=Example"},
		{"CN = orders, O = Example , C=DE", "CN=orders,O=Example,C=DE"},
		{`CN=Smith\, John,O=Example`, `CN=Smith\, John,O=Example`},
	} {
		if got := NormalizeDN(tc.in); got != tc.want {
			t.Errorf("NormalizeDN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// BenchmarkCertificateAuthentication: what authenticating a client by its TLS certificate
// costs beside a secret: a chain verification against the client CA and a subject match, or
// a public key looked up in the client's jwks. The handshake is the listener's and not here.
func BenchmarkCertificateAuthentication(b *testing.B) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	e := newEnv(b, nil, WithClientCAs(func() *x509.CertPool { return pool }))

	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "orders", Organization: []string{"Example"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &leafKey.PublicKey, caKey)
	issued, _ := x509.ParseCertificate(der)
	der, _ = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &leafKey.PublicKey, leafKey)
	self, _ := x509.ParseCertificate(der)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &leafKey.PublicKey, KeyID: "k", Algorithm: "ES256"}}})

	secID, sec := e.client(b, storage.Client{})
	caID, _ := e.client(b, storage.Client{TokenEndpointAuthMethod: protocol.AuthTLSClient, TLSClientAuth: storage.TLSClientAuth{SubjectDN: "CN=orders,O=Example"}})
	selfID, _ := e.client(b, storage.Client{TokenEndpointAuthMethod: protocol.AuthSelfSignedTLSClient, JWKS: jwks})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		r    func() *Request
	}{
		{"secret", func() *Request { return req(secID, sec, protocol.GrantClientCredentials) }},
		{"tls_client_auth", func() *Request {
			r := req(caID, "", protocol.GrantClientCredentials)
			r.AuthMethod, r.ClientCert = protocol.AuthSecretPost, issued
			return r
		}},
		{"self_signed_tls_client_auth", func() *Request {
			r := req(selfID, "", protocol.GrantClientCredentials)
			r.AuthMethod, r.ClientCert = protocol.AuthSecretPost, self
			return r
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := e.svc.core.authenticate(ctx, tc.r()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
