// Package tlscert gives the listeners their certificates: a certificate and key read from PEM
// files and read again when the files change on disk, so a renewed certificate is served
// without a restart, and a self-signed certificate for localhost for trying TLS on one machine.
package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"
)

// checkEvery is how often a handshake looks at the files. A stat per second costs nothing,
// and needs no file watcher, which would lose track of files replaced by rename or by a
// Kubernetes secret's symlink swap.
const checkEvery = time.Second

// Files serves the certificate in a pair of PEM files, reloading it when either file changes.
// A pair that fails to load (a half-written renewal, a key that does not match) is reported
// once and the previous certificate stays in service until a good pair appears.
type Files struct {
	r reloading[tls.Certificate]
}

// Load reads the pair once; an error names the file and what is wrong with it.
func Load(certFile, keyFile string, log *slog.Logger) (*Files, error) {
	f := &Files{r: reloading[tls.Certificate]{
		files: []string{certFile, keyFile},
		load:  func() (*tls.Certificate, error) { return load(certFile, keyFile) },
		log:   log,
		loaded: func(log *slog.Logger, cert *tls.Certificate) {
			log.Info("TLS certificate reloaded", "cert", certFile, "subject", cert.Leaf.Subject.String(),
				"dns_names", cert.Leaf.DNSNames, "not_after", cert.Leaf.NotAfter)
		},
		failure: "TLS certificate files changed but cannot be loaded; serving the previous certificate",
	}}
	if err := f.r.start(); err != nil {
		return nil, err
	}
	return f, nil
}

// Leaf is the certificate being served.
func (f *Files) Leaf() *x509.Certificate { return f.r.value.Load().Leaf }

// GetCertificate implements tls.Config.GetCertificate.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.r.current(), nil
}

func load(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	// Since Go 1.23 LoadX509KeyPair fills Leaf.
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// Config is a TLS server configuration serving f, with HTTP/2 offered by net/http.
func Config(f *Files) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: CipherSuites, GetCertificate: f.GetCertificate}
}

// CipherSuites are the TLS 1.2 suites the listeners accept: ephemeral key exchange with an AEAD
// cipher only, the suites RFC 9325 (BCP 195) recommends, which FAPI 2.0 deployments must keep
// to (Go's defaults also allow CBC with SHA-1). TLS 1.3, preferred by every current client,
// has only suites of that kind and ignores this list.
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
}
