package grants

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
)

// AccessClaims are the claims of an access token (RFC 9068 §2.2). Fields are in the order they
// are written; every byte counts against ATOL's 1000-character limit, which is also why the
// refresh family a token descends from travels inside jti (see FamilyOf) rather than in a
// claim of its own.
type AccessClaims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  protocol.Audience `json:"aud"`
	ClientID  string            `json:"client_id"`
	Scope     string            `json:"scope,omitempty"`
	IssuedAt  int64             `json:"iat"`
	ExpiresAt int64             `json:"exp"`
	ID        string            `json:"jti"`
	// Cnf binds the token to a DPoP key (RFC 9449 §6.1) or a TLS client certificate
	// (RFC 8705 §3.1); absent from a bearer token.
	Cnf *Confirmation `json:"cnf,omitempty"`
}

// Confirmation is the cnf claim (RFC 7800) of a sender-constrained token.
type Confirmation struct {
	// JKT is the RFC 7638 thumbprint of the DPoP key.
	JKT string `json:"jkt,omitempty"`
	// X5TS256 is the base64url SHA-256 of the DER of the client certificate (RFC 8705 §3.1).
	X5TS256 string `json:"x5t#S256,omitempty"`
}

var _ jwt.Claims = AccessClaims{}

// GetExpirationTime implements jwt.Claims.
func (c AccessClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}

// GetIssuedAt implements jwt.Claims.
func (c AccessClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}

// GetNotBefore implements jwt.Claims; access tokens carry no nbf.
func (c AccessClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer implements jwt.Claims.
func (c AccessClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c AccessClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c AccessClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings(c.Audience), nil
}

// access describes one access token to mint.
type access struct {
	clientID string
	// alg is the client's access_token_signing_alg.
	alg      string
	subject  string
	scope    string
	audience []string
	ttl      time.Duration
	family   string
	// personal is the personal token this access token is exchanged for.
	personal string
	// countLater: the token is signed before its admission (issueMinted), which counts it
	// as issued only if the admission lets it out.
	countLater bool
	// user and epoch, for a password login, are the user whose password was checked and its
	// credential version (storage.User.Epoch) read with the hash that was checked: whatever
	// the login stores is refused once the user's version has moved on.
	user  string
	epoch uint64
	// jkt binds the token to a DPoP key.
	jkt string
	// x5t binds the token to a TLS client certificate.
	x5t string
}

// minted is a signed access token.
type minted struct {
	token    string
	jti      string
	subject  string
	jkt      string
	iat, exp time.Time
}

// answer is the Token for a minted access token without refresh token.
func (m minted) answer(scope string) *Token {
	return &Token{jti: m.jti, subject: m.subject, JKT: m.jkt, AccessToken: m.token, IssuedAt: m.iat, ExpiresAt: m.exp, Scope: scope}
}

// mint signs an access token. Nothing is written: access tokens are self-contained.
func (c *core) mint(ctx context.Context, grant string, a access, now time.Time) (minted, error) {
	iat := now.Truncate(time.Second)
	exp := iat.Add(a.ttl.Truncate(time.Second))
	if a.ttl < time.Second {
		exp = iat.Add(time.Second)
	}
	claims := AccessClaims{
		Issuer: c.policy.Issuer, Subject: a.subject, Audience: a.audience,
		ClientID: a.clientID, Scope: a.scope, IssuedAt: iat.Unix(), ExpiresAt: exp.Unix(),
		ID: newJTI(a.family),
	}
	if a.personal != "" {
		claims.ID = newPersonalJTI(a.personal)
	}
	if a.jkt != "" || a.x5t != "" {
		claims.Cnf = &Confirmation{JKT: a.jkt, X5TS256: a.x5t}
	}
	var tok string
	var err error
	if gerr := c.cpu.do(ctx, spanSign, func() { tok, err = c.keys.Sign(a.alg, claims) }); gerr != nil {
		return minted{}, gerr
	}
	if err != nil {
		return minted{}, err
	}
	if c.onIssue != nil && !a.countLater {
		c.onIssue(grant)
	}
	return minted{token: tok, jti: claims.ID, subject: a.subject, jkt: a.jkt, iat: iat, exp: exp}, nil
}

// A jti is 72 random bits (12 characters): unique among the tokens alive at once, which is all
// a deny-list needs. A token of a refresh family has the 12-character family id followed by
// 48 random bits instead, 13 bytes shorter than a separate sid claim.
const (
	familyJTILen = familyIDLen + 8
)

func newJTI(family string) string {
	if family == "" {
		return secret.New(9)
	}
	return family + secret.New(6)
}

// newPersonalJTI names an access token exchanged for a personal token: the token's id, a dot
// (which neither other kind of jti contains) and 48 random bits, so introspection can check that
// the personal token still exists.
func newPersonalJTI(pat string) string { return pat + "." + secret.New(6) }

// PersonalOf returns the personal token an exchanged access token came from, read from its jti.
func PersonalOf(jti string) (string, bool) {
	if len(jti) != personalJTILen || jti[personalIDLen] != '.' {
		return "", false
	}
	return jti[:personalIDLen], true
}

const (
	personalIDLen  = 12
	personalJTILen = personalIDLen + 1 + 8
)

// FamilyOf returns the refresh family an access token descends from, read from its jti, so
// revoking the family can revoke the access tokens too (introspection).
func FamilyOf(jti string) (string, bool) {
	if len(jti) != familyJTILen {
		return "", false
	}
	return jti[:familyIDLen], true
}

// Refresh tokens look like tsr_<family>.<secret>: the family id is not secret and lets the
// store find the family (and, on Redis, keep it in one hash slot); the secret carries 256 bits.
const refreshPrefix = "tsr_"

func newRefreshToken(family string) string {
	return refreshPrefix + family + "." + secret.NewSecret()
}

// parseRefreshToken returns the family id and the store hash of a presented refresh token.
func parseRefreshToken(tok string) (family, hash string, ok bool) {
	rest, ok := strings.CutPrefix(tok, refreshPrefix)
	if !ok {
		return "", "", false
	}
	family, sec, ok := strings.Cut(rest, ".")
	if !ok || len(family) != familyIDLen || len(sec) != 43 {
		return "", "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(family); err != nil {
		return "", "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(sec); err != nil {
		return "", "", false
	}
	return family, secret.HashHex(tok), true
}

// Family ids are 72 random bits (12 characters): unique, not secret, and repeated in the sid
// claim of every access token of the family.
const familyIDLen = 12

func newFamilyID() string { return secret.New(9) }

// sealKey derives the key that protects a rotated token's successor. Only someone holding the
// old refresh token can derive it; the store keeps a different digest (secret.HashHex) of it.
func sealKey(oldToken string) []byte {
	k := sha256.Sum256([]byte("tokensmith/refresh-successor/v1\x00" + oldToken))
	return k[:]
}

// sealedToken is what a sealed successor holds: the answer and, for the audit trail of a
// retry, its access token's jti.
type sealedToken struct {
	*Token
	JTI string `json:"jti,omitempty"`
}

func seal(oldToken string, t *Token) ([]byte, error) {
	plain, err := json.Marshal(sealedToken{Token: t, JTI: t.jti})
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(oldToken)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, nil), nil
}

func unseal(oldToken string, sealed []byte) (*Token, error) {
	aead, err := newAEAD(oldToken)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed successor too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return nil, err
	}
	st := sealedToken{Token: &Token{}}
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, err
	}
	st.Token.jti = st.JTI
	return st.Token, nil
}

func newAEAD(oldToken string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(sealKey(oldToken))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
