package tlscert

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/tokensmith/tokensmith/config"
)

// ClientCAs serves the CA certificates of a PEM file that client certificates (RFC 8705
// tls_client_auth) must chain to, reloading them the way Files reloads the server's
// certificate: a look at the file at most once per checkEvery, on use, and a file that fails to
// load is reported once while the previous pool stays in service.
type ClientCAs struct {
	r reloading[x509.CertPool]
}

// LoadClientCAs reads the file once; an error names the file and what is wrong with it.
func LoadClientCAs(file string, log *slog.Logger) (*ClientCAs, error) {
	c := &ClientCAs{r: reloading[x509.CertPool]{
		files: []string{file},
		load:  func() (*x509.CertPool, error) { return loadCAs(file) },
		log:   log,
		loaded: func(log *slog.Logger, _ *x509.CertPool) {
			log.Info("TLS client CA reloaded", "client_ca", file)
		},
		failure: "TLS client CA file changed but cannot be loaded; using the previous CAs",
	}}
	if err := c.r.start(); err != nil {
		return nil, err
	}
	return c, nil
}

// Pool is the CA pool in service, read again first if the file changed.
func (c *ClientCAs) Pool() *x509.CertPool { return c.r.current() }

func loadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := config.ParseCAs(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return pool, nil
}
