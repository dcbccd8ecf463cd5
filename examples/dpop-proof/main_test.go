package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/dpop"
)

// TestProofFromAKeyFile: a P-256 key in the PEM forms openssl writes (SEC 1, as "openssl
// ecparam -genkey" makes it with its EC PARAMETERS block, and PKCS #8) gives proofs that
// dpop.Check accepts for the request named, bound to the token when one is given, with the
// thumbprint -thumbprint prints; bad usage is an error.
func TestProofFromAKeyFile(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	dir := t.TempDir()
	files := map[string][]byte{
		"sec1.pem":  append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...),
		"pkcs8.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key := filepath.Join(dir, "sec1.pem")
	run1 := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(args, &out, &errOut)
		return strings.TrimSpace(out.String()), err
	}
	jkt, err := run1("-key", key, "-thumbprint")
	if err != nil || len(jkt) != 43 {
		t.Fatalf("thumbprint %q %v", jkt, err)
	}
	for _, tc := range []struct{ method, url, token string }{
		{"POST", "http://localhost:8080/oauth2/token", ""},
		{"GET", "http://localhost:9090/bound/orders", "eyJ.the.token"},
	} {
		proof, err := run1("-key", key, tc.method, tc.url, tc.token)
		if err != nil {
			t.Fatal(err)
		}
		p, err := dpop.Check(proof, dpop.Expect{Method: tc.method, URL: tc.url, AccessToken: tc.token, Now: time.Now()})
		if err != nil || p.Thumbprint != jkt {
			t.Fatalf("%s %s: %v (%+v), want thumbprint %s", tc.method, tc.url, err, p, jkt)
		}
	}
	if other, err := run1("-key", filepath.Join(dir, "pkcs8.pem"), "-thumbprint"); err != nil || other != jkt {
		t.Fatalf("the same key in PKCS #8: %q %v, want %s", other, err, jkt)
	}
	if _, err := run1("-key", key, "POST"); err == nil {
		t.Fatal("a method without a URL was taken")
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run1("-key", empty, "-thumbprint"); err == nil || !strings.Contains(err.Error(), "no PEM private key") {
		t.Fatalf("a file without a key: %v", err)
	}
}
