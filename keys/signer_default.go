//go:build !openssl

package keys

import (
	"crypto"
	"runtime"
)

const signerName = "go"

func signerVersion() string { return runtime.Version() }

func newSigner(alg string, priv crypto.Signer) (signer, error) {
	s, err := newGoSigner(alg, priv)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return s, nil
}
