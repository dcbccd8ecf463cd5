package storage

import (
	"context"
	"errors"
	"fmt"
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
	// ErrUnconfirmed: the write reached the backend but too few of its replicas confirmed it
	// in time, so a failover could still lose it. It is an ErrUnavailable (503, retry later);
	// each method says whether it undid the write or leaves it safe to retry.
	ErrUnconfirmed = fmt.Errorf("%w: too few replicas confirmed the write in time", ErrUnavailable)
	// ErrCredentialsChanged: a sign-in would store a session or a login, but the user's
	// credential version (User.Epoch) is no longer the one whose password the sign-in
	// checked: the password changed in between. Nothing is stored.
	ErrCredentialsChanged = errors.New("storage: the user's credentials changed")
	// ErrLimitReached: the user already holds MaxPersonalTokens personal tokens.
	ErrLimitReached = errors.New("storage: the user holds the most personal tokens allowed")
)

// MaxPersonalTokens is how many personal tokens one user may hold. CreatePersonalToken counts
// them in the same atomic step that stores a new one, so concurrent creates never pass it.
const MaxPersonalTokens = 100

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
	// OwnedClients returns the clients whose Owner is owner, in any order. The store keeps an
	// index of clients by owner, updated in the same atomic step as every client write, so the
	// console's list costs the owner's clients however many clients the store holds.
	OwnedClients(ctx context.Context, owner string) ([]Client, error)
	// LongestAccessTokenTTL is the longest AccessTokenTTL a client has been given (0 while no
	// client has its own; a backend may round it up to the millisecond), kept up to date by
	// every client write. It never decreases: a token
	// issued before its client's lifetime was shortened, or the client deleted, may still be
	// live, and the signing key that signed it must stay published until it expires.
	LongestAccessTokenTTL(ctx context.Context) (time.Duration, error)

	// CreateUser fails with ErrAlreadyExists when the id is taken or the username is, compared
	// case-insensitively (FoldUsername).
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByUsername finds a user by username, case-insensitively.
	GetUserByUsername(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// ReindexUsernames moves every user still indexed under the legacy form of its username
	// (LegacyFoldUsername, from before names were normalised) to FoldUsername's form, each in
	// one atomic step, so that a new user whose name merely looks like it is refused too. A
	// user whose normalised form another user holds (two users stored then whose names look
	// alike) keeps its legacy entry and is reported. Running it again changes nothing.
	ReindexUsernames(ctx context.Context) (Reindexed, error)
	// UpdateUser applies fn to the stored user atomically, with UpdateClient's rules for fn.
	// The id and username cannot change.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error)
	// DeleteUser removes the user and its personal tokens in one step. Other tokens of the user
	// stop working because every later use of them checks that the user exists (see
	// Rotation.UserID and TokenQuery.UserID).
	DeleteUser(ctx context.Context, id string) error

	// CreatePersonalToken stores a personal token of an existing user: ErrNotFound when the
	// user does not exist, ErrAlreadyExists when the id is taken, ErrLimitReached when the
	// user already holds MaxPersonalTokens (counted in the same atomic step).
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
	// clock; see Session. When the user's Epoch is not s.Epoch it answers
	// ErrCredentialsChanged and stores nothing, in the same atomic step.
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

	// EnsureSigningKey stores candidate only if the store holds no live signing key of its
	// algorithm (none, or only retired ones: Live), so replicas starting together agree on one
	// key per algorithm. It returns every stored key (of every algorithm) and whether
	// candidate was the one stored.
	EnsureSigningKey(ctx context.Context, candidate SigningKey) (keys []SigningKey, created bool, err error)
	// RestoreSigningKeys stores keys only if the store holds no signing key (it lost its
	// data), in one step, and reports whether it did: a running replica writes back the set
	// it signs with before a replica starting on the empty store can mint a different one.
	RestoreSigningKeys(ctx context.Context, keys []SigningKey) (bool, error)
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RotateSigningKey adds next, which signs from next.ActivatesAt on, and retires the keys
	// of next's algorithm that would sign until then, in one step: their RetiredAt becomes
	// next.ActivatesAt and their RemoveAt that plus lifetime (the longest an access token can
	// live). Keys of other algorithms are left as they are. It answers ErrAlreadyExists,
	// changing nothing, while a key of that algorithm is still waiting to take over at now.
	RotateSigningKey(ctx context.Context, next SigningKey, now time.Time, lifetime time.Duration) ([]SigningKey, error)
	// RetireSigningKeys retires, in one step, every key of alg that has not been retired yet:
	// its RetiredAt becomes at and its RemoveAt at plus lifetime. It is how the keys of an
	// algorithm the server stopped publishing stop signing. Keys of other algorithms, and
	// keys retired before, are left as they are. It returns every stored key.
	RetireSigningKeys(ctx context.Context, alg string, at time.Time, lifetime time.Duration) ([]SigningKey, error)
	// RemoveSigningKeys deletes the keys whose RemoveAt has passed at now (never a key without
	// one) and returns those that are left.
	RemoveSigningKeys(ctx context.Context, now time.Time) ([]SigningKey, error)

	// CreateRefreshToken stores the first refresh token of a new family. A login of a user
	// (t.UserID set) is stored only while that user exists (else ErrNotFound) and its Epoch
	// is t.Epoch (else ErrCredentialsChanged); see RefreshToken.
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

	// UseAssertion remembers, in one atomic step, that a client's assertion (private_key_jwt)
	// with a.JTI was accepted, until a.ExpiresAt on the caller's clock a.Now: ErrAlreadyExists,
	// changing nothing, when the same client's jti is remembered already, so an assertion is
	// accepted once on every replica. The entry expires by itself; nothing sweeps it.
	UseAssertion(ctx context.Context, a AssertionUse) error

	// EnsureServerSecret stores candidate as the server secret called name unless the store
	// holds one of that name already, in one atomic step, and returns the stored one: every
	// replica, and every restart, gets the same secret for name. It is for keys the replicas
	// must share and nobody hands them (the audit trail's username digests), and, with a fresh
	// candidate, for work that one replica does once (the first to get its own candidate back).
	EnsureServerSecret(ctx context.Context, name, candidate string) (string, error)

	// Trusted issuers of federated workload identity (see TrustedIssuers).
	TrustedIssuers
	// The clients a federated workload may act as (see FederatedClients).
	FederatedClients

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

	// Backup and restore (tokensmith export and import; see backup.go).
	//
	// The Each methods call fn with every record of their kind, one at a time, reading the
	// store as they go rather than copying it; fn's error stops them and is returned. fn must
	// not call the store. On a store that others write meanwhile (Redis under running
	// replicas) each record is read whole, but records written during the walk may be missed
	// and a record may be seen twice. Records that have expired at now are left out.

	// EachClient walks the clients.
	EachClient(ctx context.Context, fn func(Client) error) error
	// EachDeletedClient walks the notes DeleteClient left.
	EachDeletedClient(ctx context.Context, fn func(DeletedClient) error) error
	// EachUser walks the users, each with its personal tokens.
	EachUser(ctx context.Context, fn func(User, []PersonalToken) error) error
	// EachRefreshFamily walks the refresh families that are remembered at now.
	EachRefreshFamily(ctx context.Context, now time.Time, fn func(RefreshFamily) error) error
	// EachRefreshToken walks the refresh tokens that are live at now, used ones included.
	EachRefreshToken(ctx context.Context, now time.Time, fn func(RefreshToken) error) error
	// EachRevokedAccessToken walks the access-token deny-list.
	EachRevokedAccessToken(ctx context.Context, now time.Time, fn func(RevokedAccessToken) error) error

	// The Restore methods write one record as an Each method (or ListSigningKeys) read it, in
	// one atomic step, and report what changed; with r.DryRun they only report. The record
	// replaces the one the store holds under its id, except for the state the Merge functions
	// keep; restoring the same record again is Unchanged. A record that would take a name or
	// id from a different record (a username another user has, a personal token or refresh
	// token of another owner) is ErrAlreadyExists, and nothing is written.

	// RestoreClient writes a client as it was, NotBefore included.
	RestoreClient(ctx context.Context, c Client, r Restore) (Outcome, error)
	// RestoreDeletedClient writes a deletion note (MergeDeletedClient).
	RestoreDeletedClient(ctx context.Context, d DeletedClient, r Restore) (Outcome, error)
	// RestoreUser writes a user; its username must not be another user's.
	RestoreUser(ctx context.Context, u User, r Restore) (Outcome, error)
	// RestorePersonalToken writes a personal token of an existing user (ErrNotFound when the
	// user does not exist; MergePersonalToken).
	RestorePersonalToken(ctx context.Context, t PersonalToken, r Restore) (Outcome, error)
	// RestoreSigningKey writes a signing key (MergeSigningKey). Keys the store holds besides
	// it are left as they are.
	RestoreSigningKey(ctx context.Context, k SigningKey, r Restore) (Outcome, error)
	// RestoreRefreshFamily writes a refresh family (MergeRefreshFamily); a revoked one is
	// revoked wherever TokenState and reuse pools look.
	RestoreRefreshFamily(ctx context.Context, f RefreshFamily, r Restore) (Outcome, error)
	// RestoreRefreshToken writes a refresh token (MergeRefreshToken) and, when the store does
	// not hold its family, the family as the token implies it (not revoked, until the token's
	// FamilyExpiry), which it extends when needed, as a rotation would.
	RestoreRefreshToken(ctx context.Context, t RefreshToken, r Restore) (Outcome, error)
	// RestoreRevokedAccessToken puts an access token on the deny-list until t.ExpiresAt;
	// Unchanged when it is already there.
	RestoreRevokedAccessToken(ctx context.Context, t RevokedAccessToken, r Restore) (Outcome, error)

	// Ping reports whether the backend is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error
}
