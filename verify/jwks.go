package verify

import (
	"context"
	"errors"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/tokensmith/tokensmith/internal/jwkscache"
)

// keySet is the cached JWKS of the authorization server: internal/jwkscache, which the
// server also uses for its clients' keys, so both follow one discipline (Cache-Control,
// refetch on an unknown kid at most once per interval, stale keys served while the endpoint
// is down).
type keySet struct{ *jwkscache.Cache }

// publicKey is a published key and the one algorithm it verifies.
type publicKey struct {
	pub any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	alg jose.SignatureAlgorithm
}

// key returns the public key named kid, or the refusal that says why there is none.
func (s keySet) key(ctx context.Context, kid string) (publicKey, error) {
	k, err := s.Key(ctx, kid)
	switch {
	case err == nil:
		return publicKey{pub: k.Public, alg: jose.SignatureAlgorithm(k.Alg)}, nil
	case errors.Is(err, jwkscache.ErrUnknownKey):
		return publicKey{}, refuse(ErrUnknownKey, "the token is signed with an unknown key", nil)
	default:
		// The token may name a key the endpoint would have given us: not the caller's fault.
		return publicKey{}, refuse(ErrUnavailable, "the signing keys cannot be fetched", err)
	}
}
