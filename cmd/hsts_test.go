package cmd

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/tlscert"
)

// TestHSTS: Strict-Transport-Security is sent by a production TLS listener only: not by the
// dev certificate's listener, never over plain HTTP.
func TestHSTS(t *testing.T) {
	t.Parallel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	certFile, keyFile, _, err := tlscert.EnsureDev(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	files, err := tlscert.Load(certFile, keyFile, quiet)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(files.Leaf())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	tests := []struct {
		name   string
		tls    *tlscert.Files
		hsts   bool
		header string
	}{
		{"production TLS", files, true, hstsValue},
		{"dev TLS", files, false, ""},
		{"plain HTTP", nil, true, ""},
	}
	var ls []listener
	for _, tc := range tests {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, listener{name: tc.name, ln: ln, tls: tc.tls, handler: ok, hsts: tc.hsts})
	}
	done := make(chan error, 1)
	go func() { done <- serveListeners(t.Context(), quiet, ls) }()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scheme := "http"
			if tc.tls != nil {
				scheme = "https"
			}
			_, port, _ := net.SplitHostPort(ls[i].ln.Addr().String())
			resp, err := client.Get(scheme + "://localhost:" + port + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Strict-Transport-Security"); got != tc.header {
				t.Errorf("Strict-Transport-Security %q, want %q", got, tc.header)
			}
		})
	}
}
