package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/testlog"
)

// writePair writes a fresh certificate and key to dir by rename, as renewal tools do, and
// returns the certificate's serial.
func writePair(t *testing.T, dir string) string {
	t.Helper()
	certPEM, keyPEM, err := newDev(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM} {
		tmp := filepath.Join(dir, name+".new")
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	block, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// serve runs a TLS listener on loopback with f and returns its address.
func serve(t *testing.T, f *Files) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", Config(f))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// servedSerial opens a connection and reports the serial of the certificate it was shown.
func servedSerial(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestProtocolsAndSuites: TLS 1.3, and TLS 1.2 with an ECDHE AEAD suite, connect; TLS 1.1,
// and TLS 1.2 with a CBC or ChaCha20 suite or without forward secrecy, are refused.
func TestProtocolsAndSuites(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir)
	f, err := Load(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, f)
	for _, tc := range []struct {
		name    string
		version uint16
		suite   uint16
		ok      bool
	}{
		{"TLS 1.3", tls.VersionTLS13, 0, true},
		{"TLS 1.2 ECDHE AES-128-GCM", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{"TLS 1.2 ECDHE AES-256-GCM", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, true},
		{"TLS 1.2 ECDHE AES-128-CBC-SHA", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{"TLS 1.2 ECDHE ChaCha20", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, false},
		{"TLS 1.2 RSA key exchange", tls.VersionTLS12, tls.TLS_RSA_WITH_AES_128_GCM_SHA256, false},
		{"TLS 1.1", tls.VersionTLS11, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tc.version, MaxVersion: tc.version}
			if tc.suite != 0 {
				cfg.CipherSuites = []uint16{tc.suite}
			}
			c, err := tls.Dial("tcp", addr, cfg)
			if err == nil {
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("connected %v (%v), want %v", err == nil, err, tc.ok)
			}
		})
	}
}

func TestReloadWhenFilesChange(t *testing.T) {
	dir := t.TempDir()
	first := writePair(t, dir)
	logs := &testlog.Buffer{}
	f, err := Load(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, f)
	if got := servedSerial(t, addr); got != first {
		t.Fatalf("served %s, want %s", got, first)
	}

	// A broken certificate file keeps the previous certificate in service, said once.
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "cannot be loaded") && time.Now().Before(deadline) {
		if got := servedSerial(t, addr); got != first {
			t.Fatalf("served %s after a broken write, want the previous %s", got, first)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for range 3 {
		servedSerial(t, addr)
	}
	if n := strings.Count(logs.String(), "cannot be loaded"); n != 1 {
		t.Fatalf("%d warnings about one broken write, want 1:\n%s", n, logs.String())
	}

	// A good pair is picked up without a restart.
	second := writePair(t, dir)
	deadline = time.Now().Add(5 * time.Second)
	for servedSerial(t, addr) != second {
		if time.Now().After(deadline) {
			t.Fatalf("still serving the old certificate 5s after the files were replaced\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Fatalf("no log line for the reload:\n%s", logs.String())
	}
}

func TestLoadNamesTheBadFile(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir)
	other := t.TempDir()
	writePair(t, other)
	for _, tc := range []struct{ name, cert, key, want string }{
		{"missing", filepath.Join(dir, "nope.pem"), filepath.Join(dir, "key.pem"), "nope.pem"},
		{"key of another certificate", filepath.Join(dir, "cert.pem"), filepath.Join(other, "key.pem"), "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.cert, tc.key, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDevCertificate(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	certFile, keyFile, created, err := EnsureDev(dir, now)
	if err != nil || !created {
		t.Fatalf("first EnsureDev: created=%v %v", created, err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v mode %v, want 0600", err, st.Mode().Perm())
	}
	pair, err := load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(pair.Leaf)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("a client trusting the file rejects %s: %v", name, err)
		}
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.com"}); err == nil {
		t.Error("the dev certificate is valid for example.com")
	}

	// Kept across restarts, so whatever trusts it keeps working; replaced near expiry.
	if _, _, created, err := EnsureDev(dir, now.Add(time.Hour)); err != nil || created {
		t.Fatalf("second EnsureDev: created=%v %v, want the same certificate", created, err)
	}
	if _, _, created, err := EnsureDev(dir, now.Add(devLifetime-devRenewBefore/2)); err != nil || !created {
		t.Fatalf("EnsureDev near expiry: created=%v %v, want a new certificate", created, err)
	}
}
