package storage

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends return them (possibly wrapped); callers match with errors.Is.
var (
	// ErrNotFound: no such record, or it has expired.
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists: a record with that id (or username) exists.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrRevoked: the refresh token's family has been revoked.
	ErrRevoked = errors.New("storage: family revoked")
	// ErrReplay: a used refresh token was presented after the grace window; the store has
	// revoked its family in the same atomic step.
	ErrReplay = errors.New("storage: refresh token replayed")
	// ErrUnavailable: the backend cannot be reached; the caller should answer 503.
	ErrUnavailable = errors.New("storage: unavailable")
)

// Storage is everything Tokensmith persists. Implementations must be safe for concurrent use.
type Storage interface {
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient applies fn to the stored client atomically and stores the result. If fn
	// returns an error nothing is written and that error is returned.
	UpdateClient(ctx context.Context, id string, fn func(*Client) error) (Client, error)
	DeleteClient(ctx context.Context, id string) error

	// CreateUser fails with ErrAlreadyExists when the id or the username is taken.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	DeleteUser(ctx context.Context, id string) error

	// EnsureSigningKey stores candidate only if the store holds no signing key yet, so
	// replicas starting together agree on one key. It returns every stored key and whether
	// candidate was the one stored.
	EnsureSigningKey(ctx context.Context, candidate SigningKey) (keys []SigningKey, created bool, err error)
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)

	// CreateRefreshToken stores the first refresh token of a new family.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// GetRefreshToken returns one refresh token record (for introspection and tests).
	GetRefreshToken(ctx context.Context, familyID, hash string) (RefreshToken, error)
	// RotateRefreshToken is the atomic consume-and-rotate of SPEC §5; see Rotation.
	RotateRefreshToken(ctx context.Context, r Rotation) (Rotated, error)
	// RevokeFamily revokes every refresh token of the family, and through it every access
	// token that carries the family id.
	RevokeFamily(ctx context.Context, familyID string) error
	// FamilyRevoked reports whether the family has been revoked.
	FamilyRevoked(ctx context.Context, familyID string) (bool, error)

	// Heartbeat records, at now, that replica r is alive until r.ExpiresAt.
	Heartbeat(ctx context.Context, r Replica, now time.Time) error
	// Replicas lists the replicas whose heartbeat has not expired at now.
	Replicas(ctx context.Context, now time.Time) ([]Replica, error)

	// Admit is the one atomic step before a token is minted for a client with token reuse or
	// a daily limit; see Admission. Settle must follow every Admitted{Allowed: true}.
	Admit(ctx context.Context, a Admission) (Admitted, error)
	// Settle completes an admission: on success the minted token joins the reuse pool in the
	// reserved slot; on failure the slot is released and the daily count given back.
	Settle(ctx context.Context, s Settlement) error

	// Ping reports whether the backend is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error
}

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
	// TokenEndpointAuthMethod restricts how the client authenticates; empty allows both
	// client_secret_basic and client_secret_post.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// Owner is the id of the user who manages this client in the console.
	Owner string `json:"owner,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// User is a resource owner for the password grant.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	// PasswordHash is a bcrypt hash.
	PasswordHash []byte    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

// SigningKey is an RSA key in PKCS#8 PEM. It lives in the store so every replica signs with
// the same set.
type SigningKey struct {
	// ID is the RFC 7638 thumbprint, used as kid.
	ID         string    `json:"id"`
	PrivatePEM []byte    `json:"private_pem"`
	CreatedAt  time.Time `json:"created_at"`
	// RetiredAt is zero for the active key; a retired key stays published until every token it
	// signed has expired.
	RetiredAt time.Time `json:"retired_at,omitzero"`
}

// RefreshToken is the stored form of one refresh token. Hash is the hex SHA-256 of the token;
// the token itself is never stored.
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
type Rotation struct {
	FamilyID string
	Hash     string
	ClientID string
	Now      time.Time
	Grace    time.Duration
	Next     RefreshToken
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

// Replica is one running server process sharing the store.
type Replica struct {
	ID        string    `json:"id"`
	Hostname  string    `json:"hostname"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Pool identifies a reuse pool: the tokens of one client for one subject, scope and audience.
type Pool struct {
	ClientID string
	Subject  string
	Scope    string
	Audience string
}

// PooledToken is an access token kept for reuse (SPEC §5). It is stored as issued: anyone who
// can read the store can also read the signing key, so sealing it would protect nothing.
type PooledToken struct {
	AccessToken string    `json:"access_token"`
	JTI         string    `json:"jti"`
	Scope       string    `json:"scope,omitempty"`
	IssuedAt    time.Time `json:"issued_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Admission asks, in one atomic step:
//   - with Reuse set: is there a pooled token with at least MinRemaining left? Then it is
//     answered (Admitted.Reused) and nothing is counted. Otherwise, if fewer than Capacity
//     tokens (or reservations) are alive in the pool, a slot is reserved under Reservation
//     until ReserveUntil. If the pool is full, the pooled token with the most time left is
//     answered, because the cap on valid tokens is the harder promise; if the pool holds only
//     reservations, Admitted.Busy is set.
//   - with Limit > 0: is the (client, subject) count for Day below Limit? Then it is counted;
//     otherwise Admitted.Limited is set and nothing changes. The count expires at ResetAt.
type Admission struct {
	Now time.Time

	Reuse        bool
	Pool         Pool
	MinRemaining time.Duration
	Capacity     int
	Reservation  string
	ReserveUntil time.Time

	Limit   int
	Day     string
	ResetAt time.Time
}

// Admitted is the answer to an Admission.
type Admitted struct {
	// Reused is set when a pooled token is to be handed out instead of minting.
	Reused *PooledToken
	// Limited: the daily limit is reached.
	Limited bool
	// Busy: every pool slot is reserved by issuances in flight; retry shortly.
	Busy bool
	// Allowed: mint a new token; Settle afterwards.
	Allowed bool
}

// Settlement closes an Admission that was Allowed. Token is nil when the issuance failed.
type Settlement struct {
	Admission Admission
	Token     *PooledToken
}
