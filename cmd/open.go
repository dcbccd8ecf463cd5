package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	redisstore "github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/tlscert"
)

// openStore opens the configured backend. An embedded file store is locked for this process:
// two processes writing one buntdb file would corrupt it.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, quiet *storeQuiet) (storage.Storage, error) {
	kind, rest, err := config.ParseStorage(cfg.Storage)
	if err != nil {
		return nil, err
	}
	switch kind {
	case config.StorageMemory:
		return embedded.OpenMemory()
	case config.StorageFile:
		if err := os.MkdirAll(filepath.Dir(rest), 0o700); err != nil {
			return nil, fmt.Errorf("storage %s (TOKENSMITH_STORAGE): %w", cfg.Storage, err)
		}
		lock := flock.New(rest+".lock", flock.SetPermissions(0o600))
		if ok, err := lock.TryLock(); err != nil || !ok {
			if err == nil {
				err = errors.New("another tokensmith process is using it (an embedded store has one process; to run several, share Redis)")
			}
			return nil, fmt.Errorf("storage %s (TOKENSMITH_STORAGE): %w", cfg.Storage, err)
		}
		s, err := embedded.OpenFile(rest)
		if err != nil {
			_ = lock.Unlock()
			return nil, fmt.Errorf("storage %s (TOKENSMITH_STORAGE): %w", cfg.Storage, err)
		}
		return lockedStore{s, lock}, nil
	default:
		redisstore.SetLogger(slog.New(quietHandler{log.Handler(), quiet.quiet}))
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s, err := redisstore.Open(ctx, rest)
		if err != nil {
			return nil, fmt.Errorf("storage %s (TOKENSMITH_STORAGE) is unreachable: %w", storageLabel(cfg.Storage), err)
		}
		return s, nil
	}
}

// readiness is what /readyz asks of the store: whether it answers, and on Redis with
// min_replicas, whether enough replicas are connected to confirm writes (redis.Store.Ready).
func readiness(s storage.Storage) server.Pinger {
	if rs, ok := s.(*redisstore.Store); ok {
		return readyPinger{rs}
	}
	return s
}

type readyPinger struct{ s *redisstore.Store }

func (r readyPinger) Ping(ctx context.Context) error { return r.s.Ready(ctx) }

// lockedStore releases the embedded store's lock after closing it.
type lockedStore struct {
	storage.Storage
	lock *flock.Flock
}

func (l lockedStore) Close() error {
	err := l.Storage.Close()
	_ = l.lock.Unlock()
	return err
}

// listen opens a listener; its error names the address, the setting and, for the usual
// causes, what to do.
func listen(addr, field, env string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	reason := err.Error()
	var se *os.SyscallError
	if errors.As(err, &se) {
		reason = se.Err.Error()
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		reason += ": another process is using that port; stop it or set " + env + " to a free one"
	case errors.Is(err, syscall.EACCES):
		reason += ": ports below 1024 need privileges; choose a higher port with " + env
	}
	return nil, fmt.Errorf("cannot listen on %s (%s, %s): %s", addr, field, env, reason)
}

// listenerTLS loads the certificates of both listeners: the configured files, or the dev
// certificate (created on first use). A nil config means plain HTTP.
func listenerTLS(cfg config.Config, log *slog.Logger) (pub, adm *tlscert.Files, devCert string, err error) {
	load := func(cert, key, what string) (*tlscert.Files, error) {
		f, err := tlscert.Load(cert, key, log.With("listener", what))
		if err != nil {
			return nil, err
		}
		leaf := f.Leaf()
		log.Info("TLS certificate loaded", "listener", what, "cert", cert, "dns_names", leaf.DNSNames, "not_after", leaf.NotAfter)
		if left := time.Until(leaf.NotAfter); left < 14*24*time.Hour {
			log.Warn("TLS certificate expires soon or has expired; replace the files, they are reloaded without a restart",
				"listener", what, "cert", cert, "not_after", leaf.NotAfter)
		}
		return f, nil
	}
	if cfg.DevTLS {
		certFile, keyFile, created, err := tlscert.EnsureDev(cfg.DataDir, time.Now())
		if err != nil {
			return nil, nil, "", fmt.Errorf("dev_tls (TOKENSMITH_DEV_TLS): %w", err)
		}
		if created {
			log.Info("created a self-signed development certificate for localhost", "cert", certFile)
		}
		f, err := load(certFile, keyFile, "public and admin")
		if err != nil {
			return nil, nil, "", fmt.Errorf("dev_tls (TOKENSMITH_DEV_TLS): %w", err)
		}
		return f, f, certFile, nil
	}
	if cfg.TLSCert != "" {
		if pub, err = load(cfg.TLSCert, cfg.TLSKey, "public"); err != nil {
			return nil, nil, "", fmt.Errorf("tls_cert, tls_key (TOKENSMITH_TLS_CERT, TOKENSMITH_TLS_KEY): %w", err)
		}
	}
	if cfg.AdminTLSCert != "" {
		if adm, err = load(cfg.AdminTLSCert, cfg.AdminTLSKey, "admin"); err != nil {
			return nil, nil, "", fmt.Errorf("admin_tls_cert, admin_tls_key (TOKENSMITH_ADMIN_TLS_CERT, TOKENSMITH_ADMIN_TLS_KEY): %w", err)
		}
	}
	return pub, adm, "", nil
}
