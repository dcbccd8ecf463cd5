package grants

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// Request is a parsed token request. The HTTP layer fills it; nothing here reads HTTP.
type Request struct {
	GrantType string
	// Params holds every body parameter except the client credentials.
	Params       map[string]string
	ClientID     string
	ClientSecret string
	// AuthMethod is protocol.AuthSecretBasic, protocol.AuthSecretPost, or protocol.AuthNone
	// for a caller that sends no secret by design (a seed API's public app id). With
	// AuthNone, a refresh_token grant and no ClientID, the refresh token names its client,
	// which must be public (tokens.refresh sends nothing else). A client registered for a
	// mutual-TLS method sends its id as client_secret_post without a secret; once its
	// certificate authenticated it, AuthMethod is that method.
	AuthMethod string
	// DPoP holds the DPoP proofs the request came with (the DPoP header's values; RFC 9449
	// allows one). With one, the access token is bound to the proof's key.
	DPoP []string
	// ClientAssertion is the signed JWT of a private_key_jwt client (AuthMethod
	// protocol.AuthPrivateKeyJWT); ClientID may then be empty, the assertion names the client.
	ClientAssertion string
	// ClientCert is the TLS client certificate of the request: the first the caller presented
	// on the connection, or the one a trusted TLS-terminating proxy passed on; nil without
	// one. ClientCertChain holds the intermediates presented after it. They authenticate
	// tls_client_auth and self_signed_tls_client_auth clients (RFC 8705 §2) and bind
	// certificate-bound tokens (§3).
	ClientCert      *x509.Certificate
	ClientCertChain []*x509.Certificate
	// Remote is the caller's address, for the failed-login backoff.
	Remote string
	// Federated is the workload whose platform token authenticated the client (iss and sub,
	// once its signature verified), for the audit trail; nil otherwise.
	Federated *storage.FederatedIdentity
	// refresh is the refresh token's record when it was read to find the client.
	refresh *storage.RefreshToken
	// jkt is the thumbprint of the key of the request's valid DPoP proof.
	jkt string
	// x5t is the thumbprint of the client certificate the access token is bound to.
	x5t string
	// userKnown: the password grant found a user of the asked username (whatever the
	// password), so a refusal may name it in the audit trail.
	userKnown bool
}

// Token is what a successful grant returns. Times are absolute so a replayed answer (refresh
// grace window) reports the lifetime actually left.
type Token struct {
	// jti is kept for the reuse pool and the audit trail; it is not part of any answer.
	jti string
	// subject and reused are for the audit trail.
	subject string
	reused  bool
	// family is a new login's refresh family still to be stored, with the token's settlement
	// (reuse); not part of any answer.
	family           *storage.RefreshToken
	AccessToken      string    `json:"access_token"`
	IssuedAt         time.Time `json:"issued_at"`
	ExpiresAt        time.Time `json:"expires_at"`
	Scope            string    `json:"scope,omitempty"`
	RefreshToken     string    `json:"refresh_token,omitempty"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at,omitzero"`
	// JKT is the thumbprint of the DPoP key the access token is bound to (its cnf.jkt), empty
	// for a bearer token. It is kept with the answer a refresh grace window replays.
	JKT string `json:"jkt,omitempty"`
	// IssuedTokenType is RFC 8693's issued_token_type, set by token exchange.
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	// DPoPNonce is the nonce a DPoP client's next proof is to carry (the DPoP-Nonce header).
	DPoPNonce string `json:"-"`
	// RateLimit is where the caller stands against the client's tightest quota after this new
	// token; nil when the client has no limit or nothing was counted (reuse, refresh).
	RateLimit *protocol.RateLimit `json:"-"`
}

// Type is the token_type of the answer: DPoP for a token bound to a DPoP key, else Bearer.
func (t *Token) Type() string {
	if t.JKT != "" {
		return protocol.TokenTypeDPoP
	}
	return protocol.TokenTypeBearer
}

// ExpiresIn is how many seconds of the access token's life an answer reports at now. A token
// minted in this second reports its whole lifetime, even if the clock ticked over while
// answering; an earlier one (reused, or a retry in the refresh grace window) what is left.
func (t *Token) ExpiresIn(now time.Time) int64 { return max(t.ExpiresAt.Unix()-t.from(now), 0) }

// RefreshExpiresIn is ExpiresIn for the refresh token.
func (t *Token) RefreshExpiresIn(now time.Time) int64 {
	return max(t.RefreshExpiresAt.Unix()-t.from(now), 0)
}

func (t *Token) from(now time.Time) int64 {
	if n := now.Unix(); n-t.IssuedAt.Unix() > 1 {
		return n
	}
	return t.IssuedAt.Unix()
}

// Grant is one grant type.
type Grant interface {
	Type() oauth2.GrantType
	// Handle issues tokens for an authenticated client that is allowed this grant.
	Handle(ctx context.Context, c *Client, r *Request) (*Token, error)
}

// Keys signs new access tokens with a client's algorithm and finds the public key of a kid and
// the algorithm it is for, to verify tokens presented for introspection and revocation.
// keys.Set implements it.
type Keys interface {
	Sign(alg string, claims jwt.Claims) (string, error)
	PublicKey(kid string) (pub crypto.PublicKey, alg string, ok bool)
}

// ErrBusy is the cause of a 503 that comes from this server's own load, not from the store: a
// caller that gave up while waiting for a CPU slot, or a reuse pool whose every slot is held by
// issuances in flight. The HTTP layer does not report it as a store outage.
var ErrBusy = errors.New("grants: busy")
