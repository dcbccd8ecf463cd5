package tlscert

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokensmith/tokensmith/config"
)

// ClientCAs serves the CA certificates of a PEM file that client certificates (RFC 8705
// tls_client_auth) must chain to, reloading them the way Files reloads the server's
// certificate: a look at the file at most once per checkEvery, on use, and a file that fails to
// load is reported once while the previous pool stays in service.
type ClientCAs struct {
	file string
	log  *slog.Logger
	pool atomic.Pointer[x509.CertPool]

	mu         sync.Mutex
	checked    time.Time
	seen       os.FileInfo
	lastFailed bool
}

// LoadClientCAs reads the file once; an error names the file and what is wrong with it.
func LoadClientCAs(file string, log *slog.Logger) (*ClientCAs, error) {
	c := &ClientCAs{file: file, log: log}
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	pool, err := loadCAs(file)
	if err != nil {
		return nil, err
	}
	c.pool.Store(pool)
	c.seen, c.checked = st, time.Now()
	return c, nil
}

// Pool is the CA pool in service, read again first if the file changed.
func (c *ClientCAs) Pool() *x509.CertPool {
	c.refresh(time.Now())
	return c.pool.Load()
}

func (c *ClientCAs) refresh(now time.Time) {
	if !c.mu.TryLock() {
		return // another request is looking; this one uses what is loaded
	}
	defer c.mu.Unlock()
	if now.Sub(c.checked) < checkEvery {
		return
	}
	c.checked = now
	st, err := os.Stat(c.file)
	if err != nil {
		c.failed(err)
		return
	}
	if same(st, c.seen) {
		return
	}
	c.seen, c.lastFailed = st, false
	pool, err := loadCAs(c.file)
	if err != nil {
		c.failed(err)
		return
	}
	c.pool.Store(pool)
	c.log.Info("TLS client CA reloaded", "client_ca", c.file)
}

func (c *ClientCAs) failed(err error) {
	if !c.lastFailed {
		c.log.Warn("TLS client CA file changed but cannot be loaded; using the previous CAs", "error", err)
	}
	c.lastFailed = true
}

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
