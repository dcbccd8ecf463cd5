package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/big"

	"github.com/tokensmith/tokensmith/protocol"
)

// The algorithms a key can sign with: one key type each, and a key never signs with another
// algorithm than the one it was made for (RFC 7517 §4.4).
const (
	RS256 = protocol.AlgRS256 // RSASSA-PKCS1-v1_5 with SHA-256, RSA-2048
	PS256 = protocol.AlgPS256 // RSASSA-PSS with SHA-256, MGF1 with SHA-256, 32-byte salt, RSA-2048
	ES256 = protocol.AlgES256 // ECDSA on P-256 with SHA-256
	EdDSA = protocol.AlgEdDSA // Ed25519 (RFC 8037)
)

// generateKey makes a new private key for alg.
func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case RS256, PS256:
		return rsa.GenerateKey(rand.Reader, Bits)
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("keys: %w", protocol.CheckSigningAlgorithm(alg))
}

// checkKey makes sure priv is the kind of key alg signs with: a stored key whose PEM does not
// match its algorithm is refused rather than used for another algorithm.
func checkKey(alg string, priv crypto.Signer) error {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if alg == RS256 || alg == PS256 {
			if k.N.BitLen() < Bits {
				return fmt.Errorf("an RSA key of %d bits is too short for %s", k.N.BitLen(), alg)
			}
			return nil
		}
	case *ecdsa.PrivateKey:
		if alg == ES256 {
			if k.Curve != elliptic.P256() {
				return fmt.Errorf("an ECDSA key on %s cannot sign %s, which is P-256", k.Curve.Params().Name, alg)
			}
			return nil
		}
	case ed25519.PrivateKey:
		if alg == EdDSA {
			return nil
		}
	default:
		return fmt.Errorf("a %T cannot sign", priv)
	}
	return fmt.Errorf("a %T cannot sign %s", priv, alg)
}

// signatureSize is how many bytes a signature of the key has.
func signatureSize(pub crypto.PublicKey) int {
	if k, ok := pub.(*rsa.PublicKey); ok {
		return k.Size()
	}
	return 64 // ES256: R and S of 32 bytes each (RFC 7518 §3.4); Ed25519: 64 bytes
}

// JWK is the public half of a signing key as RFC 7517 publishes it: n and e for RSA, crv, x
// and y for EC (RFC 7518 §6.2), crv and x for Ed25519 (RFC 8037 §2).
type JWK struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// publicJWK is pub's JWK without use, alg and kid: exactly the members its RFC 7638
// thumbprint hashes. It fails on a key type that is not published.
func publicJWK(pub crypto.PublicKey) (JWK, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return JWK{Kty: "RSA", N: b64(k.N.Bytes()), E: b64(big.NewInt(int64(k.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		// The coordinates are the full 32 bytes, leading zeros kept (RFC 7518 §6.2.1.2): the
		// uncompressed point is 0x04, X, Y.
		pt, err := k.Bytes()
		if err != nil || k.Curve != elliptic.P256() {
			return JWK{}, fmt.Errorf("keys: an ECDSA key not on P-256 is not published")
		}
		return JWK{Kty: "EC", Crv: "P-256", X: b64(pt[1:33]), Y: b64(pt[33:])}, nil
	case ed25519.PublicKey:
		return JWK{Kty: "OKP", Crv: "Ed25519", X: b64(k)}, nil
	}
	return JWK{}, fmt.Errorf("keys: a %T is not published", pub)
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key (RSA, P-256 or Ed25519),
// base64url without padding: the hash of the key's required members in lexicographic order
// with no white space. Every kid is one.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	j, err := publicJWK(pub)
	if err != nil {
		return "", err
	}
	var canon string
	switch j.Kty {
	case "RSA":
		canon = `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	case "EC":
		canon = `{"crv":"` + j.Crv + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	default:
		canon = `{"crv":"` + j.Crv + `","kty":"OKP","x":"` + j.X + `"}`
	}
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:]), nil
}
