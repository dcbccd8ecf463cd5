package server

import (
	"crypto/x509"
	"encoding/pem"
	"net/url"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/protocol"
)

// maxCertHeader bounds the client certificate header: a PEM certificate chain of a few
// certificates, URL-encoded, fits easily.
const maxCertHeader = 32 << 10

// withClientCert adds the request's TLS client certificate to req (RFC 8705): the one a
// trusted TLS-terminating proxy passed on in ClientCertHeader when there is such a header,
// else the first the caller presented on this connection. The header from anyone else is
// ignored: otherwise any caller could claim any certificate. A header that a trusted proxy sent
// but that holds no certificate is a 400, since the proxy is misconfigured and guessing would
// bind or authenticate the wrong client.
func (p *Public) withClientCert(c *gin.Context, req *grants.Request) error {
	if p.ClientCertHeader != "" && p.proxies.trusts(c.RemoteIP()) {
		if v := c.GetHeader(p.ClientCertHeader); v != "" {
			certs, err := parseCertHeader(v)
			if err != nil {
				return badRequest("the %s header from the proxy holds no URL-encoded PEM certificate", p.ClientCertHeader)
			}
			req.ClientCert, req.ClientCertChain = certs[0], certs[1:]
			return nil
		}
	}
	if tls := c.Request.TLS; tls != nil && len(tls.PeerCertificates) > 0 {
		req.ClientCert, req.ClientCertChain = tls.PeerCertificates[0], tls.PeerCertificates[1:]
	}
	return nil
}

// parseCertHeader reads a URL-encoded PEM certificate, followed by its intermediates if the
// proxy passes them. PathUnescape, not QueryUnescape: a '+' of the base64 stays a '+'.
func parseCertHeader(v string) ([]*x509.Certificate, error) {
	if len(v) > maxCertHeader {
		return nil, protocol.Errorf(protocol.InvalidRequest, "too long")
	}
	raw, err := url.PathUnescape(v)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for rest := []byte(raw); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, protocol.Errorf(protocol.InvalidRequest, "no certificate")
	}
	return certs, nil
}
