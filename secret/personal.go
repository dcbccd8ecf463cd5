package secret

import (
	"crypto/rand"
	"hash/crc32"
	"strings"
)

// Personal tokens look like GitHub's: a prefix secret scanners can search for, then the
// token's id (NewID, 12 characters), 43 random base62 characters (256 bits), and 6 base62
// characters of the CRC-32 of everything before them. The checksum lets a scanner or the server
// tell a real token from a typo without a store lookup: CRC-32 catches every change of one
// character. Base62 keeps the whole token one double-clickable word.
const (
	PersonalPrefix = "tsp_"
	personalIDLen  = 12
	personalSecLen = 43
	checksumLen    = 6
	// PersonalTokenLen is the length of every personal token.
	PersonalTokenLen = len(PersonalPrefix) + personalIDLen + personalSecLen + checksumLen
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewPersonalToken returns a new personal token with the given id (from NewID).
func NewPersonalToken(id string) string {
	var b strings.Builder
	b.Grow(PersonalTokenLen)
	b.WriteString(PersonalPrefix)
	b.WriteString(id)
	b.WriteString(randomBase62(personalSecLen))
	b.WriteString(checksum(b.String()))
	return b.String()
}

// ParsePersonalToken returns the id of a well-formed personal token; ok is false for anything
// else, including a token with one character changed.
func ParsePersonalToken(tok string) (id string, ok bool) {
	if len(tok) != PersonalTokenLen || !strings.HasPrefix(tok, PersonalPrefix) {
		return "", false
	}
	body := tok[:len(tok)-checksumLen]
	if checksum(body) != tok[len(body):] {
		return "", false
	}
	for i := len(PersonalPrefix); i < len(body); i++ {
		if strings.IndexByte(base62, tok[i]) < 0 {
			return "", false
		}
	}
	return tok[len(PersonalPrefix) : len(PersonalPrefix)+personalIDLen], true
}

// checksum is the CRC-32 (IEEE) of s in 6 base62 digits (62^6 > 2^32).
func checksum(s string) string {
	n := crc32.ChecksumIEEE([]byte(s))
	out := make([]byte, checksumLen)
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return string(out)
}

// randomBase62 draws n uniform base62 characters, rejecting bytes that would bias them.
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		_, _ = rand.Read(buf)
		for _, c := range buf {
			if c < 248 && len(out) < n { // 248 = 4 × 62: keeps the draw uniform
				out = append(out, base62[c%62])
			}
		}
	}
	return string(out)
}
