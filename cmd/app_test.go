package cmd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAppStopsInReverse: what serve starts stops last-started first; start's work is told to
// stop at once, startOwn's only in its turn, and a resource closes after everything started
// after it has returned.
func TestAppStopsInReverse(t *testing.T) {
	t.Parallel()
	a := newApp(t.Context())
	var (
		steps      []string // appended by the stops, which run one after another
		ownCtx     context.Context
		ownBusy    atomic.Bool // the startOwn work is running
		firstEnded atomic.Bool
	)
	a.start(func(ctx context.Context) { <-ctx.Done(); firstEnded.Store(true) })
	a.onStop(func() {
		steps = append(steps, "close")
		if ownBusy.Load() {
			t.Error("the resource closed while the work started after it was still running")
		}
	})
	a.startOwn(func(ctx context.Context) {
		ownCtx = ctx
		ownBusy.Store(true)
		<-ctx.Done()
		ownBusy.Store(false)
	})
	a.start(func(ctx context.Context) {
		<-ctx.Done()
		// The app's context has ended; the startOwn work's has not.
		for !ownBusy.Load() {
			time.Sleep(time.Millisecond)
		}
		if ownCtx.Err() != nil {
			t.Error("ending the app's context ended the startOwn work's too")
		}
	})
	done := make(chan struct{})
	go func() { a.stopAll(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stopAll waits: the work was not told to stop")
	}
	if got, want := strings.Join(steps, ","), "close"; got != want {
		t.Errorf("steps %s, want %s", got, want)
	}
	if !firstEnded.Load() || a.ctx.Err() == nil || ownCtx.Err() == nil {
		t.Errorf("after stopAll: first work ended %v, app context %v, own context %v; want all ended",
			firstEnded.Load(), a.ctx.Err(), ownCtx.Err())
	}
}

// TestAppStopsOnEarlyReturn: with nothing started (an error before anything ran), stopAll still
// ends the app's context, and stopping twice is harmless.
func TestAppStopsOnEarlyReturn(t *testing.T) {
	t.Parallel()
	a := newApp(t.Context())
	a.stopAll()
	a.stopAll()
	if a.ctx.Err() == nil {
		t.Fatal("the app's context is still live after stopAll")
	}
}

// refusing is a listener whose Accept fails, as a listener that stops by itself.
type refusing struct{ net.Listener }

func (refusing) Accept() (net.Conn, error) { return nil, errors.New("accept refused") }

func TestServeListeners(t *testing.T) {
	t.Parallel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	bind := func(t *testing.T) net.Listener {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	// closed waits for addr to refuse connections: a server whose Serve had not begun when it
	// was shut down closes its socket as Serve begins.
	closed := func(t *testing.T, addr string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return
			}
			c.Close()
		}
		t.Errorf("%s still accepts connections after serveListeners returned", addr)
	}

	t.Run("serves until the context ends, then shuts down", func(t *testing.T) {
		t.Parallel()
		pub, adm := bind(t), bind(t)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			errc <- serveListeners(ctx, quiet, []listener{{name: "public listener", ln: pub, handler: ok}, {name: "admin listener", ln: adm, handler: ok}})
		}()
		for _, ln := range []net.Listener{pub, adm} {
			resp, err := http.Get("http://" + ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "ok" {
				t.Fatalf("%s answered %q, want ok", ln.Addr(), body)
			}
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("after the context ended: %v, want nil", err)
		}
		closed(t, pub.Addr().String())
		closed(t, adm.Addr().String())
	})

	t.Run("a listener that stops stops both, with its error", func(t *testing.T) {
		t.Parallel()
		pub, adm := bind(t), bind(t)
		err := serveListeners(t.Context(), quiet, []listener{{name: "public listener", ln: pub, handler: ok},
			{name: "admin listener", ln: refusing{adm}, handler: ok}})
		if err == nil || !strings.Contains(err.Error(), "admin listener "+adm.Addr().String()+" stopped: accept refused") {
			t.Fatalf("error %v, want the admin listener's", err)
		}
		closed(t, pub.Addr().String())
	})
}
