package keys

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestRawSignerSignsLikeTheKeysSigner(t *testing.T) {
	priv := testKeys()[0]
	r, err := NewRawSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.SignRS256(benchMessage)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(benchMessage)
	if err := rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, digest[:], got); err != nil {
		t.Fatalf("%s raw signature does not verify: %v", SignerName, err)
	}
	r.Close()
	if _, err := r.SignRS256(benchMessage); !errors.Is(err, errSignerClosed) {
		t.Fatalf("signing after Close: err %v, want errSignerClosed", err)
	}
}
