package storage

import (
	"time"
)

// RefreshToken is the stored form of one refresh token. Hash is the hex SHA-256 of the token;
// the token itself is never stored. Its family is kept until the last of its refresh tokens and
// of the access tokens they can mint (IssuedAt + AccessTTL) has expired, so a revoked family
// is remembered as long as any of its tokens could be presented.
type RefreshToken struct {
	Hash     string `json:"hash"`
	FamilyID string `json:"family_id"`
	ClientID string `json:"client_id"`
	Subject  string `json:"subject"`
	Scope    string `json:"scope,omitempty"`
	// Audience and AccessTTL let a rotation mint the same kind of access token the login did.
	Audience  []string      `json:"audience,omitempty"`
	AccessTTL time.Duration `json:"access_ttl"`
	IssuedAt  time.Time     `json:"issued_at"`
	ExpiresAt time.Time     `json:"expires_at"`
	// UsedAt is set when the token was rotated; Successor then holds the sealed new pair.
	UsedAt    time.Time `json:"used_at,omitzero"`
	Successor []byte    `json:"successor,omitempty"`
	// UserID, for a user's login, is the user whose password it checked, and Epoch that
	// user's credential version (User.Epoch) when it was checked. Every token of the family
	// carries both. The family is stored only while they match the user, and it ends
	// (rotation answers ErrRevoked, TokenState Revoked) as soon as they do not.
	UserID string `json:"user_id,omitempty"`
	Epoch  uint64 `json:"epoch,omitempty"`
	// JKT binds a public client's login to the DPoP key of the proof it came with (its RFC
	// 7638 thumbprint): every token of the family can be rotated only with a proof of that key.
	JKT string `json:"jkt,omitempty"`
	// X5T binds a public client's login to the TLS client certificate it came with (its
	// x5t#S256, RFC 8705 §4): every token of the family can be rotated only over a connection
	// presenting that certificate.
	X5T string `json:"x5t,omitempty"`
}

// FamilyExpiry is how long the family of t must be remembered: until t and the access tokens
// it can mint have expired.
func (t RefreshToken) FamilyExpiry() time.Time {
	if exp := t.IssuedAt.Add(t.AccessTTL); exp.After(t.ExpiresAt) {
		return exp
	}
	return t.ExpiresAt
}

// Rotation asks the store to consume one refresh token and record its successor.
//
// In one atomic step the store:
//   - answers ErrNotFound if the token is unknown, expired, or was issued to another client
//     (nothing changes: a foreign client cannot burn someone else's token);
//   - answers ErrRevoked if its family is revoked;
//   - if the token is unused: marks it used at Now, stores Sealed as its successor, stores Next,
//     and answers Rotated{Fresh: true};
//   - if it was used no longer than Grace ago: answers Rotated{Sealed: <the stored successor>},
//     so every caller ends with the same pair;
//   - otherwise (replay): revokes the family and answers ErrReplay.
//
// With UserID set, the rotation also requires that user to exist, the token not to predate
// the user's NotBefore and Epoch to be the user's: otherwise the family is revoked and the
// answer is ErrRevoked, so a deleted user's login, or one whose password was checked before a
// password change, ends at its next use.
type Rotation struct {
	FamilyID string
	Hash     string
	ClientID string
	UserID   string
	// IssuedAt is the presented token's, compared with the user's NotBefore.
	IssuedAt time.Time
	// Epoch is the presented token's credential version, compared with the user's.
	Epoch uint64
	Now   time.Time
	Grace time.Duration
	Next  RefreshToken
	// Sealed is the new pair encrypted with a key only the holder of the old token can derive.
	Sealed []byte
}

// Rotated is the outcome of a successful RotateRefreshToken.
type Rotated struct {
	// Fresh is true when this call performed the rotation.
	Fresh bool
	// Sealed is the successor pair stored by whichever call performed the rotation.
	Sealed []byte
}

// Pool identifies a reuse pool: the tokens of one client for one subject, scope, audience,
// signing algorithm and binding. Incarnation tells a client from an earlier one that had the same id (the
// registry uses the client's creation time): a client deleted and created again starts with
// empty pools and fresh daily counts, and never receives a token issued to its predecessor.
type Pool struct {
	ClientID    string
	Incarnation string
	Subject     string
	Scope       string
	Audience    string
	// Alg is the algorithm the pool's tokens are signed with, so that a client whose
	// access_token_signing_alg changes is never handed a token of its old algorithm. The daily
	// and hourly counts do not depend on it.
	Alg string
	// Binding is the confirmation the pool's tokens carry (Binding of a DPoP key's or a
	// certificate's thumbprint), empty for bearer tokens: a bound token is handed out again
	// only to a request that proves the same key, never to a bearer request or another key.
	Binding string
}

// Binding names a token's confirmation for Pool.Binding: the RFC 7638 thumbprint of its DPoP
// key (cnf.jkt) or the x5t#S256 of its certificate; empty when it has neither.
func Binding(jkt, x5t string) string {
	switch {
	case jkt != "":
		return "jkt:" + jkt
	case x5t != "":
		return "x5t#S256:" + x5t
	}
	return ""
}

// Digest names the pool within its client's keys (KeyDigest). RS256 (or no algorithm) and no
// binding add nothing, so the pools stored before algorithms and bindings existed keep their
// names.
func (p Pool) Digest() string {
	alg := p.Alg
	if alg == DefaultAlgorithm {
		alg = ""
	}
	switch {
	case p.Binding != "":
		return KeyDigest(p.Incarnation, p.Subject, p.Scope, p.Audience, alg, p.Binding)
	case alg != "":
		return KeyDigest(p.Incarnation, p.Subject, p.Scope, p.Audience, alg)
	}
	return KeyDigest(p.Incarnation, p.Subject, p.Scope, p.Audience)
}

// PooledToken is an access token kept for reuse. It is stored as issued: anyone who
// can read the store can also read the signing key, so sealing it would protect nothing.
type PooledToken struct {
	AccessToken string `json:"access_token"`
	JTI         string `json:"jti"`
	// Family is the refresh family the token descends from, if any: revoking the family takes
	// the token out of reuse.
	Family    string    `json:"family,omitempty"`
	Scope     string    `json:"scope,omitempty"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Epoch is the credential version (User.Epoch) of the token's user when its login
	// checked the password; 0 for a client's own token. Admission hands the token only to a
	// login of the same version.
	Epoch uint64 `json:"epoch,omitempty"`
}

// Admission asks, in one atomic step:
//   - with Reuse set: is there a pooled token, neither revoked nor of a revoked family, with at
//     least MinRemaining left? Then it is
//     answered (Admitted.Reused) and nothing is counted. Otherwise, if fewer than Capacity
//     tokens (or reservations) are alive in the pool, a slot is reserved under Reservation
//     until ReserveUntil. If the pool is full, the pooled token with the most time left is
//     answered, because the cap on valid tokens is the harder promise; if the pool holds only
//     reservations, Admitted.Busy is set.
//   - with Limit > 0 (the day) and HourlyLimit > 0 (the clock hour): each such (client,
//     subject) count is read, for Day and for Hour. If an enforced count is at its limit,
//     Admitted.Limited is set and neither count changes. Otherwise every count with a limit is
//     incremented, a shadow one (Shadow, HourlyShadow) even past its limit: shadow limits are
//     counted and reported, never refused. A count expires a minute after its window
//     (ResetAt, HourResetAt). Admitted.DailyCount and HourlyCount report the counts.
//   - with UserID set (a user's login): the user must exist (else ErrNotFound) and its Epoch
//     be Epoch (else ErrCredentialsChanged); then nothing is counted, reserved, stored or
//     handed out. Only pooled tokens of that Epoch are handed out; those of an older one are
//     dropped, as revoked ones are.
type Admission struct {
	Now time.Time

	// UserID and Epoch are the user whose password the login checked and the credential
	// version it checked it against (User.Epoch).
	UserID string
	Epoch  uint64

	Reuse        bool
	Pool         Pool
	MinRemaining time.Duration
	Capacity     int
	Reservation  string
	ReserveUntil time.Time

	Limit   int
	Day     string
	ResetAt time.Time
	// Shadow makes the daily limit count without refusing.
	Shadow bool

	HourlyLimit  int
	Hour         string
	HourResetAt  time.Time
	HourlyShadow bool

	// Family, when set (an admission without Reuse), is the first refresh token of a new
	// login, stored in the same call if and only if the admission is Allowed: a limited
	// password grant then costs no round trip of its own for its refresh token.
	Family *RefreshToken
}

// Admitted is the answer to an Admission.
type Admitted struct {
	// Reused is set when a pooled token is to be handed out instead of minting.
	Reused *PooledToken
	// Limited: an enforced limit (daily or hourly) is reached.
	Limited bool
	// Busy: every pool slot is reserved by issuances in flight; retry shortly.
	Busy bool
	// Allowed: mint a new token; Settle afterwards.
	Allowed bool
	// DailyCount and HourlyCount are the counts of the admission's day and hour, this
	// admission included when Allowed, as they stand when Limited; 0 for a window without a
	// limit, and when a token is Reused (nothing is counted).
	DailyCount  int
	HourlyCount int
}

// Settlement closes an Admission that was Allowed. Token is nil when the issuance failed.
type Settlement struct {
	Admission Admission
	Token     *PooledToken
	// Family, with a Token, is the first refresh token of the login the token belongs to,
	// stored in the same call: a password login with reuse stores its family and its pooled
	// token together. An error then means the family may not be stored.
	Family *RefreshToken
}

// AccessRevocation revokes one access token (RFC 7009): its jti is denied until ExpiresAt and it
// leaves its reuse pool.
type AccessRevocation struct {
	Pool      Pool
	JTI       string
	ExpiresAt time.Time
	Now       time.Time
}

// TokenQuery asks about a token that verified: JTI (access tokens) and FamilyID (when it has one)
// are checked against revocations of ClientID's tokens; PersonalTokenID, when set, names the
// personal token an exchanged token came from, which must still exist; UserID, when set, is
// looked up.
type TokenQuery struct {
	ClientID        string
	JTI             string
	FamilyID        string
	PersonalTokenID string
	UserID          string
	Now             time.Time
}

// TokenState is the answer to a TokenQuery.
type TokenState struct {
	// Revoked: the jti is denied, the family is revoked, expired or unknown, or the personal
	// token is deleted or expired.
	Revoked bool
	// User is the queried user; nil when it does not exist (or none was asked for).
	User *User
}

// AssertionUse is a one-time JWT being accepted: a client assertion (ClientID its client) or a
// DPoP proof (ClientID "dpop " and its key's thumbprint), its jti, and the time until which
// the jti is remembered.
type AssertionUse struct {
	ClientID  string
	JTI       string
	ExpiresAt time.Time
	Now       time.Time
}
