package storage

import (
	"time"
)

// SigningKey is a private key in PKCS#8 PEM and the JWS algorithm it signs with. It lives in
// the store so every replica signs with the same set. A key is published in the JWKS from the
// moment it is stored; it signs from ActivatesAt until RetiredAt, when a newer key of its
// algorithm takes over; it leaves the JWKS at RemoveAt, when every token it can have signed has
// expired. Every replica reads the same times, so they all switch keys at the same moment
// without talking to each other. Each algorithm has its own succession of keys: rotating one
// leaves the others as they are.
type SigningKey struct {
	// ID is the RFC 7638 thumbprint, used as kid.
	ID string `json:"id"`
	// Algorithm is the JWS alg (RS256, PS256, ES256, EdDSA); empty in keys stored before
	// there was a choice, which are RS256 (Alg).
	Algorithm  string    `json:"alg,omitempty"`
	PrivatePEM []byte    `json:"private_pem"`
	CreatedAt  time.Time `json:"created_at"`
	// ActivatesAt is when the key starts signing; zero means from CreatedAt.
	ActivatesAt time.Time `json:"activates_at,omitzero"`
	// RetiredAt is zero until a newer key is scheduled to take over, then that moment.
	RetiredAt time.Time `json:"retired_at,omitzero"`
	// RemoveAt is when a retired key leaves the JWKS and the store.
	RemoveAt time.Time `json:"remove_at,omitzero"`
}

// DefaultAlgorithm is the algorithm of a key stored without one.
const DefaultAlgorithm = "RS256"

// Alg is the algorithm k signs with.
func (k SigningKey) Alg() string {
	if k.Algorithm == "" {
		return DefaultAlgorithm
	}
	return k.Algorithm
}

// Activation is when k starts signing.
func (k SigningKey) Activation() time.Time {
	if k.ActivatesAt.IsZero() {
		return k.CreatedAt
	}
	return k.ActivatesAt
}

// Retire returns keys with every key of alg that has not been retired yet retired at at, to
// be removed after lifetime; keys of other algorithms are returned as they are. Backends
// share it so their rotations agree.
func Retire(keys []SigningKey, alg string, at time.Time, lifetime time.Duration) []SigningKey {
	out := make([]SigningKey, len(keys))
	for i, k := range keys {
		if k.Alg() == alg && k.RetiredAt.IsZero() {
			k.RetiredAt, k.RemoveAt = at, at.Add(lifetime)
		}
		out[i] = k
	}
	return out
}

// Pending reports whether one of keys of alg is waiting to start signing at now.
func Pending(keys []SigningKey, alg string, now time.Time) bool {
	for _, k := range keys {
		if k.Alg() == alg && k.Activation().After(now) {
			return true
		}
	}
	return false
}

// Live reports whether keys hold a key of alg that has not been retired: one that signs, or
// will once it activates. EnsureSigningKey adds a key only to an algorithm without one.
func Live(keys []SigningKey, alg string) bool {
	for _, k := range keys {
		if k.Alg() == alg && k.RetiredAt.IsZero() {
			return true
		}
	}
	return false
}
