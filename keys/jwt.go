package keys

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// The compact JWS is assembled here rather than by golang-jwt so that the header is encoded
// once per key and the token is built in one buffer. The bytes are golang-jwt's: its header
// map marshals with sorted keys, which is this struct's field order, and the claims go
// through the same json.Marshal (TestSignMatchesGolangJWT).

var b64url = base64.RawURLEncoding

// encodeHeader returns the encoded JOSE header (RFC 7515 §4, RFC 9068 §2.1) and the dot
// that ends it.
func encodeHeader(alg, kid string) ([]byte, error) {
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, TokenType})
	if err != nil {
		return nil, err
	}
	return append(b64url.AppendEncode(nil, h), '.'), nil
}

// sign returns claims as a compact JWS (RFC 7515 §7.1) signed by k with its algorithm.
func (k *Key) sign(claims jwt.Claims) (string, error) {
	if k.signer == nil {
		return "", fmt.Errorf("keys: key %s is retired", k.ID)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("keys: encode claims: %w", err)
	}
	tok := make([]byte, 0, len(k.header)+b64url.EncodedLen(len(payload))+1+b64url.EncodedLen(k.sigSize))
	tok = append(tok, k.header...)
	tok = b64url.AppendEncode(tok, payload)
	sig, err := k.signer.sign(tok)
	if err != nil {
		return "", err
	}
	tok = append(tok, '.')
	tok = b64url.AppendEncode(tok, sig)
	return string(tok), nil
}

// TokenOverhead is the most bytes any key of the set adds around a token's encoded claims:
// its encoded header with the dot after it, the dot before the signature and the encoded
// signature. Keys of every algorithm count, since a token of one algorithm can fall back to
// another's key. A set that holds only smaller keys still counts a generated RSA key, which a
// rotation may bring at any time.
func (s *Set) TokenOverhead() int {
	// A generated RSA key's header: a kid is always a 43-character thumbprint (RFC 7638), and
	// PS256 is as long as RS256.
	most := len(`{"alg":"RS256","kid":"","typ":""}`) + 43 + len(TokenType)
	most = b64url.EncodedLen(most) + 1 + 1 + b64url.EncodedLen(Bits/8)
	for _, k := range s.state.Load().all {
		most = max(most, len(k.header)+1+b64url.EncodedLen(k.sigSize))
	}
	return most
}
