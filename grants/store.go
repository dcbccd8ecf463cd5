package grants

import (
	"context"
	"errors"
	"time"

	"github.com/tokensmith/tokensmith/storage"
	"go.opentelemetry.io/otel/codes"
)

// Store is what the token path reads and writes. It is declared here, where it is used, so the
// wrapper below covers exactly these methods: a method added to Store does not compile until
// guardedStore bounds and measures it too.
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
	UseAssertion(ctx context.Context, a storage.AssertionUse) error
	TrustedIssuerByIssuer(ctx context.Context, iss string) (storage.TrustedIssuer, error)
	ClientsByFederatedIdentity(ctx context.Context, iss, sub string) ([]string, error)
}

// StoreObserver is told about every store call of the token path: its operation (the Store
// method's name), how long it took, and whether it failed (the store unreachable, timed out
// or broken; an answer such as "not found" is not a failure).
type StoreObserver func(op string, took time.Duration, failed bool)

// WithStoreObserver measures every store call (metrics.Metrics.ObserveStore).
func WithStoreObserver(o StoreObserver) Option { return func(c *core) { c.observe = o } }

// guardedStore puts every call of next through call: bounded by timeout (when set), so an
// unreachable or stalled store turns into ErrUnavailable (503) quickly, measured by observe
// (when set), and traced as a span of its own (when tracing is on). The bound is per call, not
// per request: CPU work between calls (a bcrypt check, an RSA signature) must not eat the
// store's budget.
type guardedStore struct {
	next    Store
	timeout time.Duration
	observe StoreObserver
	spans   spans
}

var _ Store = guardedStore{}

// call runs one store call under the deadline and measures it, deadline included, so a call
// that timed out is measured as the failure it is. Its span ends with an error status for a
// failure only: "not found" is an answer.
func call[T any](s guardedStore, ctx context.Context, op string, f func(context.Context) (T, error)) (T, error) {
	span := noSpan
	if s.spans.tracer != nil { // not s.spans.start: the name would be built for nothing
		ctx, span = s.spans.tracer.Start(ctx, spanStore+op)
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	start := time.Now()
	v, err := f(ctx)
	bad := failed(err)
	if s.observe != nil {
		s.observe(op, time.Since(start), bad)
	}
	if bad {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	return v, err
}

// callErr is call for the methods that answer only an error.
func callErr(s guardedStore, ctx context.Context, op string, f func(context.Context) error) error {
	_, err := call(s, ctx, op, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

// failed tells a store failure from the store's answers.
func failed(err error) bool {
	return err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrAlreadyExists) &&
		!errors.Is(err, storage.ErrRevoked) && !errors.Is(err, storage.ErrReplay)
}

func (s guardedStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	return call(s, ctx, "GetClient", func(ctx context.Context) (storage.Client, error) { return s.next.GetClient(ctx, id) })
}

func (s guardedStore) Login(ctx context.Context, a storage.LoginAttempt) (storage.LoginState, error) {
	return call(s, ctx, "Login", func(ctx context.Context) (storage.LoginState, error) { return s.next.Login(ctx, a) })
}

func (s guardedStore) LoginFailed(ctx context.Context, a storage.LoginAttempt) error {
	return callErr(s, ctx, "LoginFailed", func(ctx context.Context) error { return s.next.LoginFailed(ctx, a) })
}

func (s guardedStore) LoginSucceeded(ctx context.Context, a storage.LoginAttempt) error {
	return callErr(s, ctx, "LoginSucceeded", func(ctx context.Context) error { return s.next.LoginSucceeded(ctx, a) })
}

func (s guardedStore) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	return callErr(s, ctx, "CreateRefreshToken", func(ctx context.Context) error { return s.next.CreateRefreshToken(ctx, t) })
}

func (s guardedStore) GetRefreshToken(ctx context.Context, fam, hash string) (storage.RefreshToken, error) {
	return call(s, ctx, "GetRefreshToken", func(ctx context.Context) (storage.RefreshToken, error) { return s.next.GetRefreshToken(ctx, fam, hash) })
}

func (s guardedStore) RotateRefreshToken(ctx context.Context, r storage.Rotation) (storage.Rotated, error) {
	return call(s, ctx, "RotateRefreshToken", func(ctx context.Context) (storage.Rotated, error) { return s.next.RotateRefreshToken(ctx, r) })
}

func (s guardedStore) RevokeFamily(ctx context.Context, fam string, now time.Time) error {
	return callErr(s, ctx, "RevokeFamily", func(ctx context.Context) error { return s.next.RevokeFamily(ctx, fam, now) })
}

func (s guardedStore) RevokeAccessToken(ctx context.Context, r storage.AccessRevocation) error {
	return callErr(s, ctx, "RevokeAccessToken", func(ctx context.Context) error { return s.next.RevokeAccessToken(ctx, r) })
}

func (s guardedStore) TokenState(ctx context.Context, q storage.TokenQuery) (storage.TokenState, error) {
	return call(s, ctx, "TokenState", func(ctx context.Context) (storage.TokenState, error) { return s.next.TokenState(ctx, q) })
}

func (s guardedStore) Admit(ctx context.Context, a storage.Admission) (storage.Admitted, error) {
	return call(s, ctx, "Admit", func(ctx context.Context) (storage.Admitted, error) { return s.next.Admit(ctx, a) })
}

func (s guardedStore) Settle(ctx context.Context, st storage.Settlement) error {
	return callErr(s, ctx, "Settle", func(ctx context.Context) error { return s.next.Settle(ctx, st) })
}

func (s guardedStore) GetPersonalToken(ctx context.Context, id string) (storage.PersonalToken, error) {
	return call(s, ctx, "GetPersonalToken", func(ctx context.Context) (storage.PersonalToken, error) { return s.next.GetPersonalToken(ctx, id) })
}

func (s guardedStore) DeletePersonalToken(ctx context.Context, userID, id string) error {
	return callErr(s, ctx, "DeletePersonalToken", func(ctx context.Context) error { return s.next.DeletePersonalToken(ctx, userID, id) })
}

func (s guardedStore) TouchPersonalTokens(ctx context.Context, used map[string]time.Time) error {
	return callErr(s, ctx, "TouchPersonalTokens", func(ctx context.Context) error { return s.next.TouchPersonalTokens(ctx, used) })
}

func (s guardedStore) UseAssertion(ctx context.Context, a storage.AssertionUse) error {
	return callErr(s, ctx, "UseAssertion", func(ctx context.Context) error { return s.next.UseAssertion(ctx, a) })
}

func (s guardedStore) TrustedIssuerByIssuer(ctx context.Context, iss string) (storage.TrustedIssuer, error) {
	return call(s, ctx, "TrustedIssuerByIssuer", func(ctx context.Context) (storage.TrustedIssuer, error) {
		return s.next.TrustedIssuerByIssuer(ctx, iss)
	})
}

func (s guardedStore) ClientsByFederatedIdentity(ctx context.Context, iss, sub string) ([]string, error) {
	return call(s, ctx, "ClientsByFederatedIdentity", func(ctx context.Context) ([]string, error) { return s.next.ClientsByFederatedIdentity(ctx, iss, sub) })
}
