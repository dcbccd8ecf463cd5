package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/dpop"
)

// TestProofFromAnOpenSSLKey: a key made by openssl as the docs say gives proofs that dpop.Check
// accepts for the request named, bound to the token when one is given, with the thumbprint
// -thumbprint prints; bad usage is an error.
func TestProofFromAnOpenSSLKey(t *testing.T) {
	key := filepath.Join(t.TempDir(), "dpop-key.pem")
	if out, err := exec.Command("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v %s", err, out)
	}
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
