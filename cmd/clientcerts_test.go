package cmd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/tlscert"
)

// TestClientCertificatesRequested: with tls_client_auth request the public listener asks for a
// client certificate and passes on whatever the caller presents, self-signed included (the
// grants judge it), and still serves callers without one; without it no certificate reaches
// the handler.
func TestClientCertificatesRequested(t *testing.T) {
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
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "orders"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	mine := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	peers := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, len(r.TLS.PeerCertificates))
	})
	var ls []listener
	for _, request := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, listener{name: fmt.Sprint("request ", request), ln: ln, tls: files, handler: peers, clientCerts: request})
	}
	go func() { _ = serveListeners(t.Context(), quiet, ls) }()
	pool := x509.NewCertPool()
	pool.AddCert(files.Leaf())
	for _, tc := range []struct {
		name     string
		listener int
		certs    []tls.Certificate
		want     string
	}{
		{"requested, presented", 0, []tls.Certificate{mine}, "1"},
		{"requested, none presented", 0, nil, "0"},
		{"not requested", 1, []tls.Certificate{mine}, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: tc.certs}}}
			_, port, _ := net.SplitHostPort(ls[tc.listener].ln.Addr().String())
			resp, err := client.Get("https://localhost:" + port + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != tc.want {
				t.Fatalf("%d, %s certificates reached the handler, want %s", resp.StatusCode, body, tc.want)
			}
		})
	}
}
