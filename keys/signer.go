package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
)

// signer makes the signatures of one algorithm with one private key.
//
// RS256 (RSASSA-PKCS1-v1_5) is deterministic, so every implementation returns the same bytes
// for the same key and message: that is what lets a faster one replace crypto/rsa unnoticed.
// PS256 and ES256 are randomized (a fresh salt or nonce each time), so implementations are
// compared by what verifies, not by bytes. Ed25519 is deterministic.
//
// Each parsed Key owns one, created by newSigner when the key is loaded and closed when the
// key stops signing (retired, dropped from the set, or the Set closed).
type signer interface {
	// sign returns the JWS signature of message (the signing input, not its digest: each
	// implementation hashes where it is cheapest). It is safe for concurrent use.
	sign(message []byte) ([]byte, error)
	// close releases what the signer holds outside the Go heap, after the signatures in
	// progress have finished. Later calls of sign return errSignerClosed; close is idempotent.
	close()
}

// errSignerClosed is returned by a signer used after its key stopped signing; Set.Sign then
// signs again with the key that is active now.
var errSignerClosed = errors.New("keys: signing key closed")

// goSigner signs with the standard library: pure Go, so the default build needs no C
// toolchain and links statically. ES256 and EdDSA use it in every build.
type goSigner struct {
	alg    string
	priv   crypto.Signer
	closed atomic.Bool
}

// newGoSigner returns a standard-library signer of alg; priv must be alg's key type (checkKey).
func newGoSigner(alg string, priv crypto.Signer) (*goSigner, error) {
	if err := checkKey(alg, priv); err != nil {
		return nil, err
	}
	return &goSigner{alg: alg, priv: priv}, nil
}

// pssOptions are RFC 7518 §3.5's: the salt is as long as the SHA-256 digest, and MGF1 uses
// SHA-256 too (crypto/rsa's MGF1 always uses the signature's hash).
var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}

func (s *goSigner) sign(message []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, errSignerClosed
	}
	if s.alg == EdDSA {
		// Ed25519 hashes the message itself (RFC 8032 §5.1.6): no digest first.
		return ed25519.Sign(s.priv.(ed25519.PrivateKey), message), nil
	}
	digest := sha256.Sum256(message)
	switch s.alg {
	case RS256:
		// crypto/rsa ignores the random source: its arithmetic is constant-time, and
		// PKCS #1 v1.5 padding needs none.
		return rsa.SignPKCS1v15(nil, s.priv.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	case PS256:
		return rsa.SignPSS(rand.Reader, s.priv.(*rsa.PrivateKey), crypto.SHA256, digest[:], pssOptions)
	case ES256:
		// JWS carries R and S as two 32-byte big-endian numbers (RFC 7518 §3.4), not ASN.1.
		r, ss, err := ecdsa.Sign(rand.Reader, s.priv.(*ecdsa.PrivateKey), digest[:])
		if err != nil {
			return nil, err
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		return sig, nil
	}
	return nil, fmt.Errorf("keys: no signer for %s", s.alg)
}

// close only marks the signer closed: the key lives on the Go heap, and its public half is
// still needed to publish and verify.
func (s *goSigner) close() { s.closed.Store(true) }

// SignerName is the RSA implementation (RS256 and PS256) this binary signs with: "go"
// (crypto/rsa, the default) or "openssl" (libcrypto 3 through cgo, built with -tags openssl).
// ES256 and EdDSA always use the Go standard library.
const SignerName = signerName

// SignerVersion is the version of that implementation: the Go release, or the OpenSSL
// library loaded at run time (which may be newer than the headers it was built against).
func SignerVersion() string { return signerVersion() }
