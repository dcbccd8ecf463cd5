package grants

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/tokensmith/tokensmith/internal/jwkscache"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// WithClientCAs sets where the CAs of tls_client_auth clients come from (tlscert.ClientCAs):
// asked at every such authentication, so a reloaded CA file counts at once. Without it, or
// while it returns nil, tls_client_auth refuses every client.
func WithClientCAs(pool func() *x509.CertPool) Option { return func(c *core) { c.clientCAs = pool } }

// CertificateMethod reports whether m is one of the mutual-TLS client authentication methods
// (RFC 8705 §2), which use no secret.
func CertificateMethod(m string) bool {
	return m == protocol.AuthTLSClient || m == protocol.AuthSelfSignedTLSClient
}

// CertificateThumbprint is the x5t#S256 confirmation of a certificate (RFC 8705 §3.1): the
// base64url SHA-256 of its DER encoding.
func CertificateThumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authenticateCertificate authenticates a client of a mutual-TLS method by the certificate of
// the request (RFC 8705 §2). tls_client_auth: the certificate chains to the client CA, for
// client authentication, at the service clock's time, and names the one subject or SAN the
// client registered. self_signed_tls_client_auth: no chain; the certificate is within its
// validity dates and its public key is one of the client's registered keys. Each refusal
// names the check that failed.
func (c *core) authenticateCertificate(ctx context.Context, cl *Client, r *Request) error {
	method := cl.TokenEndpointAuthMethod
	fail := func(format string, args ...any) error {
		return protocol.Errorf(protocol.InvalidClient, method+": "+format, args...)
	}
	cert := r.ClientCert
	if cert == nil {
		return fail("no client certificate was presented on the TLS connection")
	}
	now := c.now()
	if method == protocol.AuthSelfSignedTLSClient {
		if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
			return fail("the client certificate has expired or is not yet valid")
		}
		return c.certificateKeyRegistered(ctx, cl, cert, fail)
	}
	var pool *x509.CertPool
	if c.clientCAs != nil {
		pool = c.clientCAs()
	}
	if pool == nil {
		return fail("the server has no client CA configured (tls_client_ca)")
	}
	inter := x509.NewCertPool()
	for _, ic := range r.ClientCertChain {
		inter.AddCert(ic)
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	var invalid x509.CertificateInvalidError
	switch {
	case err == nil:
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fail("the client certificate has expired or is not yet valid")
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return fail("the client certificate is not for client authentication (extended key usage)")
	case errors.As(err, new(x509.UnknownAuthorityError)):
		return fail("the client certificate does not chain to the client CA")
	default:
		return fail("the client certificate does not verify against the client CA")
	}
	if what, ok := certificateNames(cl.TLSClientAuth, cert); !ok {
		return fail("the client certificate's %s is not the one registered for the client", what)
	}
	return nil
}

// certificateNames matches a certificate against the one name a tls_client_auth client
// registered (RFC 8705 §2.1.2), and says which kind of name it compared. The subject is
// compared in RFC 4514 string form (SubjectDN, as openssl's -nameopt RFC2253 prints it), ignoring
// case, which is what distinguishedNameMatch does for the usual attribute types; DNS names
// ignore case; URIs, IP addresses and email addresses compare exactly (IPs as addresses, so
// ::ffff:10.0.0.1 is 10.0.0.1).
func certificateNames(want storage.TLSClientAuth, cert *x509.Certificate) (string, bool) {
	switch {
	case want.SubjectDN != "":
		return "subject DN", strings.EqualFold(NormalizeDN(SubjectDN(cert)), NormalizeDN(want.SubjectDN))
	case want.SANDNS != "":
		return "DNS SAN", slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, want.SANDNS) })
	case want.SANURI != "":
		return "URI SAN", slices.ContainsFunc(cert.URIs, func(u *url.URL) bool { return u.String() == want.SANURI })
	case want.SANIP != "":
		ip := net.ParseIP(want.SANIP)
		return "IP SAN", ip != nil && slices.ContainsFunc(cert.IPAddresses, ip.Equal)
	case want.SANEmail != "":
		return "email SAN", slices.Contains(cert.EmailAddresses, want.SANEmail)
	}
	return "subject", false
}

// SubjectDN is a certificate's subject in RFC 4514 string form, its attributes in the
// certificate's own order (last first, as the RFC and openssl's -nameopt RFC2253 print them).
// pkix.Name.String would reorder them into Go's fixed order, which is not what the client's
// operator sees when reading the certificate.
func SubjectDN(cert *x509.Certificate) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || len(rest) > 0 {
		return cert.Subject.String()
	}
	return seq.String()
}

// NormalizeDN is the form subject DNs are stored and compared in: RFC 4514 string form with
// the spaces some tools print after the commas between attributes, and around their equals
// signs, removed ("CN = orders, O = Example" is "CN=orders,O=Example"). Escaped characters
// ("\,") are left as they are.
func NormalizeDN(dn string) string {
	var b strings.Builder
	parts := splitUnescaped(dn, ',')
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			b.WriteString(strings.TrimSpace(p))
			continue
		}
		b.WriteString(strings.TrimSpace(k) + "=" + strings.TrimSpace(v))
	}
	return b.String()
}

// splitUnescaped splits s at every sep not escaped by a backslash.
func splitUnescaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// certificateKeyRegistered finds the certificate's public key among the client's keys: its
// inline jwks, or the set at its jwks_uri (fetched again, at most once per interval, when no
// cached key matches).
func (c *core) certificateKeyRegistered(ctx context.Context, cl *Client, cert *x509.Certificate, fail func(string, ...any) error) error {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return fail("the client certificate's key type is not supported")
	}
	match := func(k jwkscache.Key) bool { return pub.Equal(k.Public) }
	if len(cl.JWKS) > 0 {
		keys, err := jwkscache.Parse(cl.JWKS)
		if err != nil {
			return fail("the client's registered keys cannot be read")
		}
		for _, k := range keys {
			if match(k) {
				return nil
			}
		}
		return fail("the client certificate's public key is not in the client's jwks")
	}
	if cl.JWKSURI == "" {
		return fail("the client has no keys registered")
	}
	_, err := c.clientKeys.Get(cl.JWKSURI).Find(ctx, match)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwkscache.ErrUnknownKey):
		return fail("the client certificate's public key is not in the set at the client's jwks_uri")
	default:
		c.log.Warn("a client's JWKS cannot be fetched", "client_id", cl.ID, "jwks_uri", cl.JWKSURI, "error", err)
		return fail("the client's jwks_uri cannot be fetched and no cached key matches the client certificate")
	}
}

// bindCertificate binds the request's access token to its client certificate (RFC 8705 §3)
// when the client asked for that with tls_client_certificate_bound_access_tokens. Binding
// follows the client's registration, not how it authenticated: a tls_client_auth client
// without the flag gets bearer tokens its resource servers need not check a certificate for,
// and a private_key_jwt client with the flag gets bound tokens all the same. A client with the
// flag that sends no certificate is refused rather than given a bearer token it did not want.
func (c *core) bindCertificate(cl *Client, r *Request) error {
	if !cl.TLSClientCertificateBoundAccessTokens {
		return nil
	}
	if r.ClientCert == nil {
		return protocol.Errorf(protocol.InvalidRequest, "this client's tokens are bound to its TLS client certificate: present it on the TLS connection")
	}
	r.x5t = CertificateThumbprint(r.ClientCert)
	return nil
}
