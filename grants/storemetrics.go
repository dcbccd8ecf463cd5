package grants

import (
	"context"
	"errors"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// StoreObserver is told about every store call of the token path: its operation (the Store
// method's name), how long it took, and whether it failed (the store unreachable, timed out
// or broken; an answer such as "not found" is not a failure).
type StoreObserver func(op string, took time.Duration, failed bool)

// WithStoreObserver measures every store call (metrics.Metrics.ObserveStore).
func WithStoreObserver(o StoreObserver) Option { return func(c *core) { c.observe = o } }

// observedStore measures each call of next, method by method like deadlineStore: a method
// added to Store does not compile until it is measured too. It wraps the deadline, so a call
// that timed out is measured as the failure it is.
type observedStore struct {
	next    Store
	observe StoreObserver
}

var _ Store = observedStore{}

// failed tells a store failure from the store's answers.
func failed(err error) bool {
	return err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrAlreadyExists) &&
		!errors.Is(err, storage.ErrRevoked) && !errors.Is(err, storage.ErrReplay)
}

func observed[T any](s observedStore, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	s.observe(op, time.Since(start), failed(err))
	return v, err
}

func observedErr(s observedStore, op string, f func() error) error {
	start := time.Now()
	err := f()
	s.observe(op, time.Since(start), failed(err))
	return err
}

func (s observedStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	return observed(s, "GetClient", func() (storage.Client, error) { return s.next.GetClient(ctx, id) })
}

func (s observedStore) Login(ctx context.Context, a storage.LoginAttempt) (storage.LoginState, error) {
	return observed(s, "Login", func() (storage.LoginState, error) { return s.next.Login(ctx, a) })
}

func (s observedStore) LoginFailed(ctx context.Context, a storage.LoginAttempt) error {
	return observedErr(s, "LoginFailed", func() error { return s.next.LoginFailed(ctx, a) })
}

func (s observedStore) LoginSucceeded(ctx context.Context, a storage.LoginAttempt) error {
	return observedErr(s, "LoginSucceeded", func() error { return s.next.LoginSucceeded(ctx, a) })
}

func (s observedStore) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	return observedErr(s, "CreateRefreshToken", func() error { return s.next.CreateRefreshToken(ctx, t) })
}

func (s observedStore) GetRefreshToken(ctx context.Context, fam, hash string) (storage.RefreshToken, error) {
	return observed(s, "GetRefreshToken", func() (storage.RefreshToken, error) { return s.next.GetRefreshToken(ctx, fam, hash) })
}

func (s observedStore) RotateRefreshToken(ctx context.Context, r storage.Rotation) (storage.Rotated, error) {
	return observed(s, "RotateRefreshToken", func() (storage.Rotated, error) { return s.next.RotateRefreshToken(ctx, r) })
}

func (s observedStore) RevokeFamily(ctx context.Context, fam string, now time.Time) error {
	return observedErr(s, "RevokeFamily", func() error { return s.next.RevokeFamily(ctx, fam, now) })
}

func (s observedStore) RevokeAccessToken(ctx context.Context, r storage.AccessRevocation) error {
	return observedErr(s, "RevokeAccessToken", func() error { return s.next.RevokeAccessToken(ctx, r) })
}

func (s observedStore) TokenState(ctx context.Context, q storage.TokenQuery) (storage.TokenState, error) {
	return observed(s, "TokenState", func() (storage.TokenState, error) { return s.next.TokenState(ctx, q) })
}

func (s observedStore) Admit(ctx context.Context, a storage.Admission) (storage.Admitted, error) {
	return observed(s, "Admit", func() (storage.Admitted, error) { return s.next.Admit(ctx, a) })
}

func (s observedStore) Settle(ctx context.Context, st storage.Settlement) error {
	return observedErr(s, "Settle", func() error { return s.next.Settle(ctx, st) })
}

func (s observedStore) GetPersonalToken(ctx context.Context, id string) (storage.PersonalToken, error) {
	return observed(s, "GetPersonalToken", func() (storage.PersonalToken, error) { return s.next.GetPersonalToken(ctx, id) })
}

func (s observedStore) DeletePersonalToken(ctx context.Context, userID, id string) error {
	return observedErr(s, "DeletePersonalToken", func() error { return s.next.DeletePersonalToken(ctx, userID, id) })
}

func (s observedStore) TouchPersonalTokens(ctx context.Context, used map[string]time.Time) error {
	return observedErr(s, "TouchPersonalTokens", func() error { return s.next.TouchPersonalTokens(ctx, used) })
}
