package grants

import (
	"context"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// Store is what the token path reads and writes. It is declared here, where it is used, so the
// deadline below wraps exactly these methods: a method added to Store does not compile until
// deadlineStore bounds it too.
type Store interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
	Login(ctx context.Context, a storage.LoginAttempt) (storage.LoginState, error)
	LoginFailed(ctx context.Context, a storage.LoginAttempt) error
	LoginSucceeded(ctx context.Context, a storage.LoginAttempt) error
	CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error
	GetRefreshToken(ctx context.Context, familyID, hash string) (storage.RefreshToken, error)
	RotateRefreshToken(ctx context.Context, r storage.Rotation) (storage.Rotated, error)
	RevokeFamily(ctx context.Context, familyID string, now time.Time) error
	RevokeAccessToken(ctx context.Context, r storage.AccessRevocation) error
	TokenState(ctx context.Context, q storage.TokenQuery) (storage.TokenState, error)
	Admit(ctx context.Context, a storage.Admission) (storage.Admitted, error)
	Settle(ctx context.Context, s storage.Settlement) error
	GetPersonalToken(ctx context.Context, id string) (storage.PersonalToken, error)
	DeletePersonalToken(ctx context.Context, userID, id string) error
	TouchPersonalTokens(ctx context.Context, used map[string]time.Time) error
}

// deadlineStore bounds every call by d, so an unreachable or stalled store turns into
// ErrUnavailable (503) quickly. The bound is per call, not per request: CPU work between calls
// (a bcrypt check, an RSA signature) must not eat the store's budget.
type deadlineStore struct {
	next Store
	d    time.Duration
}

var _ Store = deadlineStore{}

func bounded[T any](s deadlineStore, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return f(ctx)
}

func boundedErr(s deadlineStore, ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return f(ctx)
}

func (s deadlineStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	return bounded(s, ctx, func(ctx context.Context) (storage.Client, error) { return s.next.GetClient(ctx, id) })
}

func (s deadlineStore) Login(ctx context.Context, a storage.LoginAttempt) (storage.LoginState, error) {
	return bounded(s, ctx, func(ctx context.Context) (storage.LoginState, error) { return s.next.Login(ctx, a) })
}

func (s deadlineStore) LoginFailed(ctx context.Context, a storage.LoginAttempt) error {
	return boundedErr(s, ctx, func(ctx context.Context) error { return s.next.LoginFailed(ctx, a) })
}

func (s deadlineStore) LoginSucceeded(ctx context.Context, a storage.LoginAttempt) error {
	return boundedErr(s, ctx, func(ctx context.Context) error { return s.next.LoginSucceeded(ctx, a) })
}

func (s deadlineStore) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	return boundedErr(s, ctx, func(ctx context.Context) error { return s.next.CreateRefreshToken(ctx, t) })
}

func (s deadlineStore) GetRefreshToken(ctx context.Context, fam, hash string) (storage.RefreshToken, error) {
	return bounded(s, ctx, func(ctx context.Context) (storage.RefreshToken, error) { return s.next.GetRefreshToken(ctx, fam, hash) })
}

func (s deadlineStore) RotateRefreshToken(ctx context.Context, r storage.Rotation) (storage.Rotated, error) {
	return bounded(s, ctx, func(ctx context.Context) (storage.Rotated, error) { return s.next.RotateRefreshToken(ctx, r) })
}

func (s deadlineStore) RevokeFamily(ctx context.Context, fam string, now time.Time) error {
	return boundedErr(s, ctx, func(ctx context.Context) error { return s.next.RevokeFamily(ctx, fam, now) })
}

func (s deadlineStore) RevokeAccessToken(ctx context.Context, r storage.AccessRevocation) error {
	return boundedErr(s, ctx, func(ctx context.Context) error { return s.next.RevokeAccessToken(ctx, r) })
}

func (s deadlineStore) TokenState(ctx context.Context, q storage.TokenQuery) (storage.TokenState, error) {
	return bounded(s, ctx, func(ctx context.Context) (storage.TokenState, error) { return s.next.TokenState(ctx, q) })
}

func (s deadlineStore) Admit(ctx context.Context, a storage.Admission) (storage.Admitted, error) {
	return bounded(s, ctx, func(ctx context.Context) (storage.Admitted, error) { return s.next.Admit(ctx, a) })
}

func (s deadlineStore) Settle(ctx context.Context, st storage.Settlement) error {
	return boundedErr(s, ctx, func(ctx context.Context) error { return s.next.Settle(ctx, st) })
}

func (s deadlineStore) GetPersonalToken(ctx context.Context, id string) (storage.PersonalToken, error) {
	return bounded(s, ctx, func(ctx context.Context) (storage.PersonalToken, error) { return s.next.GetPersonalToken(ctx, id) })
}

func (s deadlineStore) DeletePersonalToken(ctx context.Context, userID, id string) error {
	return boundedErr(s, ctx, func(ctx context.Context) error { return s.next.DeletePersonalToken(ctx, userID, id) })
}

func (s deadlineStore) TouchPersonalTokens(ctx context.Context, used map[string]time.Time) error {
	return boundedErr(s, ctx, func(ctx context.Context) error { return s.next.TouchPersonalTokens(ctx, used) })
}
