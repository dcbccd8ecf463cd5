package storage

import (
	"crypto/sha256"
	"encoding/hex"
)

// KeyDigest is how backends put strings a caller chose (client ids, subjects, scopes,
// usernames, addresses) into key names: 24 hex characters whatever was sent, so a long value
// costs no more than a short one and none of its characters can act as a wildcard in a key
// pattern. Each part ends in a NUL, so ("ab", "c") and ("a", "bc") differ. Stored keys depend
// on its output: changing it orphans every reuse pool, count and deny-list entry on record.
func KeyDigest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
