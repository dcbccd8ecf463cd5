package storage

import (
	"time"
)

// SigningKey is an RSA key in PKCS#8 PEM. It lives in the store so every replica signs with
// the same set. A key is published in the JWKS from the moment it is stored; it signs from
// ActivatesAt until RetiredAt, when a newer key takes over; it leaves the JWKS at RemoveAt,
// when every token it can have signed has expired. Every replica reads the same times, so they
// all switch keys at the same moment without talking to each other.
type SigningKey struct {
	// ID is the RFC 7638 thumbprint, used as kid.
	ID         string    `json:"id"`
	PrivatePEM []byte    `json:"private_pem"`
	CreatedAt  time.Time `json:"created_at"`
	// ActivatesAt is when the key starts signing; zero means from CreatedAt.
	ActivatesAt time.Time `json:"activates_at,omitzero"`
	// RetiredAt is zero until a newer key is scheduled to take over, then that moment.
	RetiredAt time.Time `json:"retired_at,omitzero"`
	// RemoveAt is when a retired key leaves the JWKS and the store.
	RemoveAt time.Time `json:"remove_at,omitzero"`
}

// Activation is when k starts signing.
func (k SigningKey) Activation() time.Time {
	if k.ActivatesAt.IsZero() {
		return k.CreatedAt
	}
	return k.ActivatesAt
}

// Retire returns keys with every key that has not been retired yet retired at at, to be
// removed after lifetime. Backends share it so their rotations agree.
func Retire(keys []SigningKey, at time.Time, lifetime time.Duration) []SigningKey {
	out := make([]SigningKey, len(keys))
	for i, k := range keys {
		if k.RetiredAt.IsZero() {
			k.RetiredAt, k.RemoveAt = at, at.Add(lifetime)
		}
		out[i] = k
	}
	return out
}

// Pending reports whether one of keys is waiting to start signing at now.
func Pending(keys []SigningKey, now time.Time) bool {
	for _, k := range keys {
		if k.Activation().After(now) {
			return true
		}
	}
	return false
}
