package redis

import (
	"crypto/sha256"
	"encoding/hex"
)

// digest names a pool or counter by its parts without putting subjects or scopes in key names.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
