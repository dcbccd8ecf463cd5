// Package tlscert gives the listeners their certificates: a certificate and key read from PEM
// files and read again when the files change on disk, so a renewed certificate is served
// without a restart, and a self-signed certificate for localhost for trying TLS on one machine.
package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
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
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]

	mu         sync.Mutex
	checked    time.Time
	seen       [2]os.FileInfo
	lastFailed bool
}

// Load reads the pair once; an error names the file and what is wrong with it.
func Load(certFile, keyFile string, log *slog.Logger) (*Files, error) {
	f := &Files{certFile: certFile, keyFile: keyFile, log: log}
	seen, err := f.stat()
	if err != nil {
		return nil, err
	}
	cert, err := load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	f.cert.Store(cert)
	f.seen, f.checked = seen, time.Now()
	return f, nil
}

// Leaf is the certificate being served.
func (f *Files) Leaf() *x509.Certificate { return f.cert.Load().Leaf }

// GetCertificate implements tls.Config.GetCertificate.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.refresh(time.Now())
	return f.cert.Load(), nil
}

// refresh reloads the pair if a file changed since the last look, at most once per checkEvery.
func (f *Files) refresh(now time.Time) {
	if !f.mu.TryLock() {
		return // another handshake is looking; this one serves what is loaded
	}
	defer f.mu.Unlock()
	if now.Sub(f.checked) < checkEvery {
		return
	}
	f.checked = now
	seen, err := f.stat()
	if err != nil {
		f.failed(err)
		return
	}
	if same(seen[0], f.seen[0]) && same(seen[1], f.seen[1]) {
		return
	}
	f.seen, f.lastFailed = seen, false
	cert, err := load(f.certFile, f.keyFile)
	if err != nil {
		f.failed(err)
		return
	}
	f.cert.Store(cert)
	f.log.Info("TLS certificate reloaded", "cert", f.certFile, "subject", cert.Leaf.Subject.String(),
		"dns_names", cert.Leaf.DNSNames, "not_after", cert.Leaf.NotAfter)
}

func (f *Files) failed(err error) {
	if !f.lastFailed {
		f.log.Warn("TLS certificate files changed but cannot be loaded; serving the previous certificate", "error", err)
	}
	f.lastFailed = true
}

func (f *Files) stat() ([2]os.FileInfo, error) {
	var out [2]os.FileInfo
	for i, name := range []string{f.certFile, f.keyFile} {
		st, err := os.Stat(name)
		if err != nil {
			return out, err
		}
		out[i] = st
	}
	return out, nil
}

// same reports whether two looks at a file saw the same content: the same file (a rename or
// a symlink swap gives a new one), modified at the same time, of the same size.
func same(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
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
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: f.GetCertificate}
}
