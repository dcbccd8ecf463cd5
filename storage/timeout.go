package storage

import (
	"context"
	"time"
)

// WithTimeout bounds every call the token path makes to s by d, so an unreachable or stalled
// store turns into ErrUnavailable (503) quickly. The bound is per call, not per request: CPU
// work between calls (a bcrypt check, an RSA signature) must not eat the store's budget.
func WithTimeout(s Storage, d time.Duration) Storage { return timeoutStore{Storage: s, d: d} }

type timeoutStore struct {
	Storage
	d time.Duration
}

func call[T any](t timeoutStore, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return f(ctx)
}

func (t timeoutStore) GetClient(ctx context.Context, id string) (Client, error) {
	return call(t, ctx, func(ctx context.Context) (Client, error) { return t.Storage.GetClient(ctx, id) })
}

func (t timeoutStore) GetUserByUsername(ctx context.Context, name string) (User, error) {
	return call(t, ctx, func(ctx context.Context) (User, error) { return t.Storage.GetUserByUsername(ctx, name) })
}

func (t timeoutStore) CreateRefreshToken(ctx context.Context, r RefreshToken) error {
	_, err := call(t, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, t.Storage.CreateRefreshToken(ctx, r) })
	return err
}

func (t timeoutStore) GetRefreshToken(ctx context.Context, fam, hash string) (RefreshToken, error) {
	return call(t, ctx, func(ctx context.Context) (RefreshToken, error) { return t.Storage.GetRefreshToken(ctx, fam, hash) })
}

func (t timeoutStore) RotateRefreshToken(ctx context.Context, r Rotation) (Rotated, error) {
	return call(t, ctx, func(ctx context.Context) (Rotated, error) { return t.Storage.RotateRefreshToken(ctx, r) })
}

func (t timeoutStore) Admit(ctx context.Context, a Admission) (Admitted, error) {
	return call(t, ctx, func(ctx context.Context) (Admitted, error) { return t.Storage.Admit(ctx, a) })
}

func (t timeoutStore) Settle(ctx context.Context, s Settlement) error {
	_, err := call(t, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, t.Storage.Settle(ctx, s) })
	return err
}
