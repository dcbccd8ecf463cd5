//go:build openssl && cgo

package keys

import (
	"crypto/sha256"
	"strings"
	"testing"
)

func opensslImplementation() (implementation, bool) {
	return implementation{
		name:    "openssl",
		new:     newSigner,
		offHeap: true,
	}, true
}

// OpenSSL failures come back as Go errors carrying OpenSSL's own reason, never as a crash.
func TestOpenSSLErrorsAreGoErrors(t *testing.T) {
	tests := []struct {
		name string
		run  func() error
		want string // in the error text
	}{
		{"garbage DER", func() error { _, err := importKey([]byte("not a key"), false); return err }, "d2i_PrivateKey"},
		{"empty DER", func() error { _, err := importKey(nil, true); return err }, "d2i_PrivateKey"},
		{"short digest", func() error {
			s, _ := opensslImplementation()
			_, err := mustSigner(t, s, RS256, testKeys()[0]).(*opensslSigner).key.signDigest(make([]byte, sha256.Size-1))
			return err
		}, "invalid digest length"},
		{"no digest", func() error {
			s, _ := opensslImplementation()
			_, err := mustSigner(t, s, RS256, testKeys()[0]).(*opensslSigner).key.signDigest(nil)
			return err
		}, "EVP_PKEY_sign"},
		{"short PSS digest", func() error {
			s, _ := opensslImplementation()
			_, err := mustSigner(t, s, PS256, testKeys()[0]).(*opensslSigner).key.signDigest(make([]byte, sha256.Size+1))
			return err
		}, "EVP_PKEY_sign"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			t.Logf("%v", err)
		})
	}
}

func TestOpenSSLVersion(t *testing.T) {
	if v := SignerVersion(); !strings.HasPrefix(v, "OpenSSL 3.") {
		t.Fatalf("SignerVersion() = %q, want OpenSSL 3.x", v)
	}
	if SignerName != "openssl" {
		t.Fatalf("SignerName = %q", SignerName)
	}
}
