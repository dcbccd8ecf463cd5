package storage

import (
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Client is a registered OAuth2 client. Zero durations mean "use the server default".
type Client struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// SecretHash is SHA-256 of the secret; the secret itself is never stored.
	SecretHash []byte `json:"secret_hash"`
	// PrevSecretHash keeps working until PrevSecretExpiresAt after a rotation with grace.
	PrevSecretHash      []byte    `json:"prev_secret_hash,omitempty"`
	PrevSecretExpiresAt time.Time `json:"prev_secret_expires_at,omitzero"`

	GrantTypes []string `json:"grant_types"`
	Scopes     []string `json:"scopes,omitempty"`
	Audience   []string `json:"audience,omitempty"`

	AccessTokenTTL  time.Duration `json:"access_token_ttl,omitempty"`
	RefreshTokenTTL time.Duration `json:"refresh_token_ttl,omitempty"`
	// RefreshGrace is a pointer because 0 (grace off) differs from unset (server default).
	RefreshGrace      *time.Duration `json:"refresh_grace,omitempty"`
	Reuse             bool           `json:"reuse,omitempty"`
	ReuseMinRemaining time.Duration  `json:"reuse_min_remaining,omitempty"`
	DailyLimit        int            `json:"daily_limit,omitempty"`
	// HourlyLimit caps new tokens per (client, subject) per clock hour, beside DailyLimit.
	HourlyLimit int `json:"hourly_limit,omitempty"`
	// DailyLimitShadow and HourlyLimitShadow count a limit without enforcing it: what would
	// have been refused is reported, so an operator sees who a limit would hit before it does.
	DailyLimitShadow  bool `json:"daily_limit_shadow,omitempty"`
	HourlyLimitShadow bool `json:"hourly_limit_shadow,omitempty"`
	// TokenEndpointAuthMethod restricts how the client authenticates; empty allows both
	// client_secret_basic and client_secret_post; "none" is a public client (RFC 6749 §2.1),
	// identified by its id alone and without a secret.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// JWKS (an RFC 7517 set, public keys only) or JWKSURI (where the client publishes it) hold
	// the keys of a private_key_jwt client; such a client has no secret.
	JWKS    []byte `json:"jwks,omitempty"`
	JWKSURI string `json:"jwks_uri,omitempty"`
	// TLSClientAuth is what identifies a tls_client_auth client's certificate (RFC 8705
	// §2.1.2): exactly one of its fields is set.
	TLSClientAuth TLSClientAuth `json:"tls_client_auth,omitzero"`
	// TLSClientCertificateBoundAccessTokens binds every access token of the client to the TLS
	// client certificate it asked with (RFC 8705 §3), so a token request without one is refused.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	// FederatedIdentities are the workloads (platform-issued tokens of a trusted issuer) that
	// may authenticate as this private_key_jwt client, beside or instead of its own keys.
	FederatedIdentities []FederatedIdentity `json:"federated_identities,omitempty"`
	// Owner is the id of the user who manages this client in the console.
	Owner string `json:"owner,omitempty"`
	// ResourceServer lets the client introspect tokens of every client (an API checking what
	// integrators send it), not only its own.
	ResourceServer bool `json:"resource_server,omitempty"`
	// AccessTokenSigningAlg is the JWS algorithm of the client's access tokens; empty in
	// clients stored before there was a choice, which are RS256 (SigningAlg).
	AccessTokenSigningAlg string `json:"access_token_signing_alg,omitempty"`
	// DPoPBoundAccessTokens: the client always binds its tokens to a DPoP key (RFC 9449
	// §5.2), and a token request of it without a proof is refused.
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
	// DPoPNonceRequired: the client's DPoP proofs must carry a nonce the server gave it
	// (RFC 9449 §8), so a proof made ahead of time is of no use.
	DPoPNonceRequired bool `json:"dpop_nonce_required,omitempty"`
	// NotBefore is when an earlier client with this id was deleted: tokens issued before it
	// belong to that client, not to this one. Set by the store (CreateClient).
	NotBefore time.Time `json:"not_before,omitzero"`
	// CreateRequest and RotateRequest name (as a digest) the admin request that created the
	// client and the one that last rotated its secret, so the same request retried after an
	// answer it never got finds what it did instead of doing it twice (registry).
	CreateRequest string `json:"create_request,omitempty"`
	RotateRequest string `json:"rotate_request,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TLSClientAuth names the certificate of a tls_client_auth client: its subject distinguished
// name in RFC 4514 string form, or one subject alternative name.
type TLSClientAuth struct {
	SubjectDN string `json:"subject_dn,omitempty"`
	SANDNS    string `json:"san_dns,omitempty"`
	SANURI    string `json:"san_uri,omitempty"`
	SANIP     string `json:"san_ip,omitempty"`
	SANEmail  string `json:"san_email,omitempty"`
}

// SigningAlg is the algorithm c's access tokens are signed with.
func (c Client) SigningAlg() string {
	if c.AccessTokenSigningAlg == "" {
		return DefaultAlgorithm
	}
	return c.AccessTokenSigningAlg
}

// User is a resource owner for the password grant. Usernames are unique case-insensitively.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	// Scopes bound what the user's personal tokens may carry.
	Scopes []string `json:"scopes,omitempty"`
	// NotBefore ends the logins made before it (set when the password changes): refresh and
	// access tokens issued earlier are no longer valid. Personal tokens are not logins and
	// stay.
	NotBefore time.Time `json:"not_before,omitzero"`
	// Epoch is the user's credential version: every password change adds one. A sign-in
	// reads it with the password hash it checks, and what the sign-in stores (a console
	// session, a refresh family, a pooled token) carries it; the store refuses to write it,
	// and refuses to honour it later, once the user's Epoch has moved on. Unlike NotBefore,
	// this does not depend on when the sign-in's write lands: a password checked before a
	// change can never start a login that outlives it.
	Epoch uint64 `json:"epoch,omitempty"`
	// PasswordHash is a bcrypt hash.
	PasswordHash []byte    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

// FoldUsername is the form usernames are compared in: Unicode compatibility normalisation
// (NFKC), then case folding, so "bob", "BOB", "Bob" and the fullwidth "ｂｏｂ" are one user, as
// are "ﬁ" and "fi", or "é" written as one code point or as "e" and a combining accent: two
// users cannot look alike. NFKC again after the fold, since folding can undo it, so the form is
// stable: folding it again changes nothing.
func FoldUsername(name string) string {
	return norm.NFKC.String(cases.Fold().String(norm.NFKC.String(name)))
}

// LegacyFoldUsername is the form usernames were compared in before they were normalised: case
// folding alone. Users stored then are indexed under it; it differs from FoldUsername only for
// names that were not in normal form.
func LegacyFoldUsername(name string) string { return cases.Fold().String(name) }

// UsernameKeys are the forms a username is looked up and reserved under, in the order a lookup
// tries them: the legacy form first, so a user stored before normalisation keeps signing in
// with the name it always used and no user created since can take its logins; then
// FoldUsername, under which every user is stored now. One form when both agree, which they do
// for every name already in normal form (all of ASCII).
func UsernameKeys(name string) []string {
	folded, legacy := FoldUsername(name), LegacyFoldUsername(name)
	if folded == legacy {
		return []string{folded}
	}
	return []string{legacy, folded}
}

// Reindexed is what ReindexUsernames did.
type Reindexed struct {
	// Moved is how many users it moved to their normalised form.
	Moved int
	// Conflicts are the users it could not move, each with the user that holds its normalised
	// form: {kept under the legacy form, holding the normalised form}.
	Conflicts [][2]string
}

// PersonalToken is a user's long-lived credential (livedigital's personal tokens): named, shown
// once, used instead of a password for token exchange and accepted by introspection. Hash is
// the SHA-256 of the token; the token itself is never stored.
type PersonalToken struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Name      string    `json:"name"`
	Hash      []byte    `json:"hash"`
	Scopes    []string  `json:"scopes,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// Live reports whether the token may be used at now.
func (t PersonalToken) Live(now time.Time) bool {
	return t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt)
}

// Session is a signed-in console user. The browser holds the session id in a
// cookie; the store keeps only its hex SHA-256 (IDHash), so a store dump yields no session to
// take over. CSRF is the secret every console form carries back. A session ends at IdleUntil,
// which requests push forward, or at ExpiresAt, whichever comes first; the backend drops the
// record then. Deleting a user does not touch its sessions: the console reads the user on
// every request and ends a session whose user is gone or whose password changed after it
// began (User.NotBefore), or whose Epoch is no longer the user's.
type Session struct {
	IDHash string `json:"id_hash"`
	UserID string `json:"user_id"`
	// Epoch is the user's credential version whose password the sign-in checked.
	Epoch     uint64    `json:"epoch,omitempty"`
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"created_at"`
	IdleUntil time.Time `json:"idle_until"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Live reports whether the session may be used at now.
func (s Session) Live(now time.Time) bool {
	return now.Before(s.IdleUntil) && now.Before(s.ExpiresAt)
}

// End is when the session expires if it is not touched again.
func (s Session) End() time.Time {
	if s.IdleUntil.Before(s.ExpiresAt) {
		return s.IdleUntil
	}
	return s.ExpiresAt
}

// Replica is one running server process sharing the store.
type Replica struct {
	ID        string    `json:"id"`
	Hostname  string    `json:"hostname"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	ExpiresAt time.Time `json:"expires_at"`
}
