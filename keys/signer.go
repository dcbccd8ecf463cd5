package keys

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"sync/atomic"
)

// rsaSigner makes RS256 signatures (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3) with one
// private key. PKCS #1 v1.5 is deterministic, so every implementation returns the same bytes
// for the same key and message; that is what lets a faster one replace crypto/rsa unnoticed.
//
// Each parsed Key owns one, created by newSigner when the key is loaded and closed when the
// key stops signing (retired, dropped from the set, or the Set closed).
type rsaSigner interface {
	// signRS256 returns the signature of message (the JWS signing input, not its digest:
	// each implementation hashes where it is cheapest). It is safe for concurrent use.
	signRS256(message []byte) ([]byte, error)
	// close releases what the signer holds outside the Go heap, after the signatures in
	// progress have finished. Later calls of signRS256 return errSignerClosed; close is
	// idempotent.
	close()
}

// errSignerClosed is returned by a signer used after its key stopped signing; Set.Sign then
// signs again with the key that is active now.
var errSignerClosed = errors.New("keys: signing key closed")

// goSigner signs with crypto/rsa: pure Go, so the default build needs no C toolchain and
// links statically.
type goSigner struct {
	priv   *rsa.PrivateKey
	closed atomic.Bool
}

func newGoSigner(priv *rsa.PrivateKey) *goSigner { return &goSigner{priv: priv} }

func (s *goSigner) signRS256(message []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, errSignerClosed
	}
	digest := sha256.Sum256(message)
	// crypto/rsa ignores the random source: its arithmetic is constant-time, and
	// PKCS #1 v1.5 padding needs none.
	return rsa.SignPKCS1v15(nil, s.priv, crypto.SHA256, digest[:])
}

// close only marks the signer closed: the key lives on the Go heap, and its public half is
// still needed to publish and verify.
func (s *goSigner) close() { s.closed.Store(true) }

// SignerName is the RS256 implementation this binary signs with: "go" (crypto/rsa, the
// default) or "openssl" (libcrypto 3 through cgo, built with -tags openssl).
const SignerName = signerName

// SignerVersion is the version of that implementation: the Go release, or the OpenSSL
// library loaded at run time (which may be newer than the headers it was built against).
func SignerVersion() string { return signerVersion() }
