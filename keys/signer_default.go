//go:build !openssl

package keys

import (
	"crypto/rsa"
	"runtime"
)

const signerName = "go"

func signerVersion() string { return runtime.Version() }

func newSigner(priv *rsa.PrivateKey) (rsaSigner, error) { return newGoSigner(priv), nil }
