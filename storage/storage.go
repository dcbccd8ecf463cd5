package storage

import (
	"context"
	"errors"
	"time"

	"golang.org/x/text/cases"
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

// Storage is everything Tokensmith persists. Implementations must be safe for concurrent use
// and must honour the context's deadline on every call.
type Storage interface {
	// CreateClient stores a new client; ErrAlreadyExists if the id is taken. The store sets
	// c.NotBefore (whatever the caller passed) to the time a client with the same id was last
	// deleted, in the same atomic step.
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient applies fn to the stored client atomically and stores the result. If fn
	// returns an error nothing is written and that error is returned. fn must not call the
	// store (a backend may hold a lock while it runs) and may run more than once (a backend
	// may retry it after a concurrent change): resolve what it needs before the call.
	UpdateClient(ctx context.Context, id string, fn func(*Client) error) (Client, error)
	// DeleteClient removes the client and remembers that its id was deleted at now: a client
	// created later under the same id gets NotBefore = now (CreateClient), so no token of the
	// deleted one is ever taken for its own.
	DeleteClient(ctx context.Context, id string, now time.Time) error

	// CreateUser fails with ErrAlreadyExists when the id is taken or the username is, compared
	// case-insensitively (FoldUsername).
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByUsername finds a user by username, case-insensitively.
	GetUserByUsername(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser applies fn to the stored user atomically, with UpdateClient's rules for fn.
	// The id and username cannot change.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error)
	// DeleteUser removes the user and its personal tokens in one step. Other tokens of the user
	// stop working because every later use of them checks that the user exists (see
	// Rotation.UserID and TokenQuery.UserID).
	DeleteUser(ctx context.Context, id string) error

	// CreatePersonalToken stores a personal token of an existing user: ErrNotFound when the
	// user does not exist, ErrAlreadyExists when the id is taken.
	CreatePersonalToken(ctx context.Context, t PersonalToken) error
	// GetPersonalToken returns one personal token by id.
	GetPersonalToken(ctx context.Context, id string) (PersonalToken, error)
	// ListPersonalTokens returns a user's personal tokens, in any order.
	ListPersonalTokens(ctx context.Context, userID string) ([]PersonalToken, error)
	// DeletePersonalToken deletes one of a user's personal tokens; ErrNotFound when the user has
	// no token with that id.
	DeletePersonalToken(ctx context.Context, userID, id string) error
	// TouchPersonalTokens records when tokens were last used, keeping the later of the stored
	// and the given time; tokens that no longer exist are skipped. Replicas call it in batches,
	// so using a token is not a store write.
	TouchPersonalTokens(ctx context.Context, used map[string]time.Time) error

	// CreateSession stores a console session of an existing user (ErrNotFound when the user
	// does not exist, ErrAlreadyExists when the id hash is taken) until it expires on now's
	// clock; see Session.
	CreateSession(ctx context.Context, s Session, now time.Time) error
	// GetSession returns the session whose id hashes to idHash if it is live at now; an
	// unknown, signed-out or expired one is ErrNotFound.
	GetSession(ctx context.Context, idHash string, now time.Time) (Session, error)
	// TouchSession moves a live session's idle expiry to idleUntil (never past its absolute
	// expiry); ErrNotFound when it is not live at now. Callers touch at most once a minute, so
	// browsing the console is not a store write per page.
	TouchSession(ctx context.Context, idHash string, idleUntil, now time.Time) error
	// DeleteSession ends a session (sign-out); ErrNotFound when there is none.
	DeleteSession(ctx context.Context, idHash string) error

	// Login looks up the user of a password login together with the failed-login backoff
	// that applies to it, in one step; see LoginAttempt.
	Login(ctx context.Context, a LoginAttempt) (LoginState, error)
	// LoginFailed counts a wrong password (or unknown username) for a.
	LoginFailed(ctx context.Context, a LoginAttempt) error
	// LoginSucceeded forgets the failures of a's address for a's username. Callers skip it
	// when Login reported none, so a clean login costs one store call.
	LoginSucceeded(ctx context.Context, a LoginAttempt) error

	// EnsureSigningKey stores candidate only if the store holds no signing key yet, so
	// replicas starting together agree on one key. It returns every stored key and whether
	// candidate was the one stored.
	EnsureSigningKey(ctx context.Context, candidate SigningKey) (keys []SigningKey, created bool, err error)
	// RestoreSigningKeys stores keys only if the store holds no signing key (it lost its
	// data), in one step, and reports whether it did: a running replica writes back the set
	// it signs with before a replica starting on the empty store can mint a different one.
	RestoreSigningKeys(ctx context.Context, keys []SigningKey) (bool, error)
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RotateSigningKey adds next, which signs from next.ActivatesAt on, and retires the keys
	// that would sign until then, in one step: their RetiredAt becomes next.ActivatesAt and
	// their RemoveAt that plus lifetime (the longest an access token can live). It answers
	// ErrAlreadyExists, changing nothing, while a key is still waiting to take over at now.
	RotateSigningKey(ctx context.Context, next SigningKey, now time.Time, lifetime time.Duration) ([]SigningKey, error)
	// RemoveSigningKeys deletes the keys whose RemoveAt has passed at now (never a key without
	// one) and returns those that are left.
	RemoveSigningKeys(ctx context.Context, now time.Time) ([]SigningKey, error)

	// CreateRefreshToken stores the first refresh token of a new family.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// GetRefreshToken returns one refresh token record.
	GetRefreshToken(ctx context.Context, familyID, hash string) (RefreshToken, error)
	// RotateRefreshToken is the atomic consume-and-rotate of a refresh token; see Rotation.
	RotateRefreshToken(ctx context.Context, r Rotation) (Rotated, error)
	// RevokeFamily revokes every refresh token of the family and every access token that
	// carries the family id (TokenState reports them revoked and reuse pools stop handing them
	// out). Revoking a revoked family succeeds; an unknown one is ErrNotFound.
	RevokeFamily(ctx context.Context, familyID string, now time.Time) error

	// RevokeAccessToken puts one access token on the deny-list until it expires and takes it
	// out of its reuse pool, in one step.
	RevokeAccessToken(ctx context.Context, r AccessRevocation) error
	// TokenState answers, in one round trip, what introspection must know beyond a token's
	// own contents: whether it (or its family) is revoked, and its user.
	TokenState(ctx context.Context, q TokenQuery) (TokenState, error)

	// Heartbeat records, at now, that replica r is alive until r.ExpiresAt.
	Heartbeat(ctx context.Context, r Replica, now time.Time) error
	// Replicas lists the replicas whose heartbeat has not expired at now.
	Replicas(ctx context.Context, now time.Time) ([]Replica, error)

	// Admit is the one atomic step before a token is minted for a client with token reuse or
	// a daily or hourly limit; see Admission. Settle must follow every Admitted{Allowed: true}.
	Admit(ctx context.Context, a Admission) (Admitted, error)
	// Settle completes an admission: on success the minted token joins the reuse pool in the
	// reserved slot; on failure the slot is released and the daily and hourly counts given back.
	Settle(ctx context.Context, s Settlement) error

	// Publish tells every replica (this one included) that a record changed, so they drop
	// what they cached of it.
	Publish(ctx context.Context, c Change) error
	// Watch delivers every published Change to fn until ctx ends. healthy(false) says changes
	// may be missed from now on (the channel is down), healthy(true) that delivery is
	// reliable again; Watch calls one of them before the first delivery. fn must be safe for
	// concurrent use.
	Watch(ctx context.Context, fn func(Change), healthy func(bool))

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
	// Owner is the id of the user who manages this client in the console.
	Owner string `json:"owner,omitempty"`
	// ResourceServer lets the client introspect tokens of every client (an API checking what
	// integrators send it), not only its own.
	ResourceServer bool `json:"resource_server,omitempty"`
	// NotBefore is when an earlier client with this id was deleted: tokens issued before it
	// belong to that client, not to this one. Set by the store (CreateClient).
	NotBefore time.Time `json:"not_before,omitzero"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
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
	// PasswordHash is a bcrypt hash.
	PasswordHash []byte    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

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
// With UserID set, the rotation also requires that user to exist and the token not to predate
// the user's NotBefore: otherwise the family is revoked and the answer is ErrRevoked, so a
// deleted user's login, or one made before a password change, ends at its next use.
type Rotation struct {
	FamilyID string
	Hash     string
	ClientID string
	UserID   string
	// IssuedAt is the presented token's, compared with the user's NotBefore.
	IssuedAt time.Time
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
// began (User.NotBefore).
type Session struct {
	IDHash    string    `json:"id_hash"`
	UserID    string    `json:"user_id"`
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

// Pool identifies a reuse pool: the tokens of one client for one subject, scope and audience.
// Incarnation tells a client from an earlier one that had the same id (the registry uses the
// client's creation time): a client deleted and created again starts with empty pools and
// fresh daily counts, and never receives a token issued to its predecessor.
type Pool struct {
	ClientID    string
	Incarnation string
	Subject     string
	Scope       string
	Audience    string
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

// LoginAttempt is one password login (the failed-login backoff). Failures are counted per (username,
// remote address) and per username, both compared case-insensitively and stored only as
// digests, so memory does not grow with the size of what a guesser sends:
//   - an address that has failed Limit times in a row for a username waits 1 s, then 2 s, 4 s …
//     up to MaxDelay before each further attempt;
//   - a username that has failed UserLimit times from all addresses together makes every
//     address that has failed for it at least once wait the same way. An address that has not
//     failed goes through, so a guesser spread over many addresses cannot lock the real user
//     out, and each of its addresses gets one attempt per delay once the ceiling is reached.
//
// Counts lapse Window after the last failure.
type LoginAttempt struct {
	Username  string
	Remote    string
	Now       time.Time
	Limit     int
	UserLimit int
	MaxDelay  time.Duration
	Window    time.Duration
}

// LoginState is what Login answers.
type LoginState struct {
	// User is nil when no user has the username.
	User *User
	// Wait is how long this attempt must wait before it may be checked; 0 lets it through.
	Wait time.Duration
	// Failed reports that this address has failures on record for this username (a success
	// should then call LoginSucceeded).
	Failed bool
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

// Change names a record that changed, for replicas to drop their cached copy.
type Change struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Kinds of Change.
const (
	ChangeClient        = "client"
	ChangeUser          = "user"
	ChangePersonalToken = "personal_token"
	ChangeSigningKeys   = "signing_keys"
)

// FoldUsername is the form usernames are compared in: Unicode case folding, so "bob", "BOB"
// and "Bob" are one user.
func FoldUsername(name string) string { return cases.Fold().String(name) }

// Backoff is how long to wait after fails consecutive failures when limit are allowed: none
// below the limit, then 1 s, doubling with every further failure, up to max.
func Backoff(fails, limit int, max time.Duration) time.Duration {
	over := fails - limit
	switch {
	case over < 0:
		return 0
	case over >= 30:
		return max
	}
	return min(time.Second<<over, max)
}

// FamilyExpiry is how long the family of t must be remembered: until t and the access tokens
// it can mint have expired.
func (t RefreshToken) FamilyExpiry() time.Time {
	if exp := t.IssuedAt.Add(t.AccessTTL); exp.After(t.ExpiresAt) {
		return exp
	}
	return t.ExpiresAt
}
