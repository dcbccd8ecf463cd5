package cmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tokensmith/tokensmith/tlscert"
)

// app is what serve has started: background work and open resources, stopped in the reverse
// order they were started, each stop waiting for its work to return. serve's ordering
// guarantees are then the order of its start calls: what is started first is stopped last.
type app struct {
	// ctx ends when the app stops, or when the context it was made from ends: every piece of
	// background work started with start sees it end at the same moment.
	ctx    context.Context
	cancel context.CancelFunc
	stops  []func()
}

func newApp(parent context.Context) *app {
	ctx, cancel := context.WithCancel(parent)
	return &app{ctx: ctx, cancel: cancel}
}

// start runs run in a goroutine until the app's context ends. Its stop ends that context (for
// all the work started so, at once) before waiting, so an early return never waits for a
// signal.
func (a *app) start(run func(ctx context.Context)) {
	done := make(chan struct{})
	go func() { run(a.ctx); close(done) }()
	a.stops = append(a.stops, func() { a.cancel(); <-done })
}

// startOwn runs run in a goroutine with a context of its own, which the end of the app's context
// does not end: only its own stop does, in its turn. For work that must outlive what is
// started after it.
func (a *app) startOwn(run func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(a.ctx))
	done := make(chan struct{})
	go func() { run(ctx); close(done) }()
	a.stops = append(a.stops, func() { cancel(); <-done })
}

// onStop records what closes a resource, called in its turn.
func (a *app) onStop(fn func()) { a.stops = append(a.stops, fn) }

// stopAll stops everything in the reverse order it was started, then ends the app's context.
func (a *app) stopAll() {
	for i := len(a.stops) - 1; i >= 0; i-- {
		a.stops[i]()
	}
	a.stops = nil
	a.cancel()
}

// listener is one of serve's HTTP listeners: its socket, bound early, and the server for it.
type listener struct {
	name string // for messages: "public listener"
	ln   net.Listener
	// tls is nil for plain HTTP.
	tls     *tlscert.Files
	handler http.Handler
	// clientCerts asks every caller for a TLS client certificate without requiring one
	// (tls_client_auth request); the certificate is checked by the grants, not by crypto/tls,
	// so CA-issued and self-signed ones are both let through to be judged per client.
	clientCerts bool
	// hsts asks browsers to use HTTPS only for this host (RFC 6797). Only a production
	// certificate offers it: a browser remembers the header for a year, and the dev
	// certificate's localhost serves plain HTTP again once dev_tls is off.
	hsts bool
}

// hstsValue is a year, the span browsers' preload lists expect; no includeSubDomains, since
// the server knows nothing of the other hosts under its domain.
const hstsValue = "max-age=31536000"

// withHSTS adds Strict-Transport-Security to every answer sent over TLS (RFC 6797 §7.2: never
// over plain HTTP).
func withHSTS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", hstsValue)
		}
		h.ServeHTTP(w, r)
	})
}

// serveListeners serves every listener until ctx ends or one of them stops by itself, then
// shuts them all down and returns that listener's error (nil after ctx ended).
func serveListeners(ctx context.Context, log *slog.Logger, ls []listener) error {
	errc := make(chan error, len(ls))
	servers := make([]*http.Server, len(ls))
	for i, l := range ls {
		h := l.handler
		if l.hsts && l.tls != nil {
			h = withHSTS(h)
		}
		s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		if l.tls != nil {
			s.TLSConfig = tlscert.Config(l.tls)
			if l.clientCerts {
				s.TLSConfig.ClientAuth = tls.RequestClientCert
			}
		}
		servers[i] = s
		go func() {
			var err error
			if l.tls == nil {
				err = s.Serve(l.ln)
			} else {
				// ServeTLS offers HTTP/2 as well as HTTP/1.1 (ALPN).
				err = s.ServeTLS(l.ln, "", "")
			}
			errc <- fmt.Errorf("%s %s stopped: %w", l.name, l.ln.Addr(), err)
		}()
	}
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
		// A listener that stops by itself stops the process, with a non-zero exit.
		log.Error("shutting down: a listener failed", "error", failed)
	}
	log.Info("shutting down")
	// Requests in flight finish (a token request is bounded by store_timeout); connections
	// that were opened but never used, which Shutdown would wait 5 s for, are then closed.
	shutCtx, cancelShut := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancelShut()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if s.Shutdown(shutCtx) != nil {
				_ = s.Close()
			}
		})
	}
	wg.Wait()
	return failed
}
