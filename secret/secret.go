// Package secret generates the opaque credentials Tokensmith hands out (client secrets,
// refresh tokens, admin tokens) and compares them. Only SHA-256 digests reach the store: the
// values have 256 bits of randomness, so a fast hash is enough, and a store dump yields no
// usable credential. Comparisons are constant time.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// New returns a random value of n bytes, base64url without padding.
func New(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never fails on supported platforms (Go 1.24+ panics instead).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewSecret returns a 256-bit secret.
func NewSecret() string { return New(32) }

// Hash is the SHA-256 digest of s.
func Hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// HashHex is Hash in lower-case hex, for use inside store keys.
func HashHex(s string) string { return hex.EncodeToString(Hash(s)) }

// Matches reports, in constant time, whether presented hashes to digest.
func Matches(presented string, digest []byte) bool {
	if len(digest) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(Hash(presented), digest) == 1
}

// NewID returns a short random identifier (60 bits, 12 lower-case base32 characters) for
// clients and users. Ids are not secrets, only unique; short matters because an id appears
// twice in every access token and ATOL caps a token at 1000 characters.
func NewID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))[:12]
}
