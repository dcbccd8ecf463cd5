package grants

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// TokenOverhead is what a key set adds around a token's claims (keys.Set implements it).
type TokenOverhead interface {
	TokenOverhead() int
}

// AccessTokenBound returns the length of the longest access token a client can be issued
// under policy p with the keys of k: every registered scope, every audience (the server's when
// the client has none), the longest subject, jti and dates any grant writes, and DPoP
// and certificate bindings. Every grant's scope and audience are subsets of the client's registration (scope and resource narrow,
// token exchange intersects with the personal token's), so nothing it can ask for is longer.
// The claims go through the same struct and encoder as mint, so the bound follows any claim
// added there.
func AccessTokenBound(p Policy, k TokenOverhead) func(c storage.Client) int {
	audience := p.Audience
	if len(audience) == 0 {
		audience = []string{p.Issuer}
	}
	return func(c storage.Client) int {
		aud := c.Audience
		if len(aud) == 0 {
			aud = audience
		}
		claims := AccessClaims{
			Issuer: p.Issuer,
			// sub is the client for client_credentials, a user for the other grants.
			Subject:  strings.Repeat("x", max(len(c.ID), len(secret.NewID()))),
			Audience: protocol.Audience(aud), ClientID: c.ID, Scope: strings.Join(c.Scopes, " "),
			// Ten digits: every date until the year 2286.
			IssuedAt: 9_999_999_999, ExpiresAt: 9_999_999_999,
			ID: strings.Repeat("x", max(personalJTILen, familyJTILen, len(newJTI("")))),
			// Any client may bind its token to a DPoP key and to a TLS client certificate:
			// a 43-character thumbprint each.
			Cnf: &Confirmation{JKT: strings.Repeat("x", 43), X5TS256: strings.Repeat("x", 43)},
		}
		payload, err := json.Marshal(claims)
		if err != nil {
			return protocol.MaxTokenLen + 1 // cannot happen for strings; never pass it
		}
		return k.TokenOverhead() + base64.RawURLEncoding.EncodedLen(len(payload))
	}
}
