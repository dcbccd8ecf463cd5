// Package registry is the admin side of Tokensmith: creating, changing and deleting clients
// and users with every rule about them (validation, generated ids and secrets, hashing,
// secret rotation), in clients.go, users.go and personal.go. The admin HTTP API and the
// console are thin callers of it. The request and response shapes here are the admin API's
// JSON, shared with the CLI.
package registry

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// Store is the part of the store the registry uses.
type Store interface {
	CreateClient(ctx context.Context, c storage.Client) error
	GetClient(ctx context.Context, id string) (storage.Client, error)
	ListClients(ctx context.Context) ([]storage.Client, error)
	OwnedClients(ctx context.Context, owner string) ([]storage.Client, error)
	UpdateClient(ctx context.Context, id string, fn func(*storage.Client) error) (storage.Client, error)
	DeleteClient(ctx context.Context, id string, now time.Time) error
	CreateUser(ctx context.Context, u storage.User) error
	GetUser(ctx context.Context, id string) (storage.User, error)
	GetUserByUsername(ctx context.Context, username string) (storage.User, error)
	ListUsers(ctx context.Context) ([]storage.User, error)
	UpdateUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error)
	DeleteUser(ctx context.Context, id string) error
	CreatePersonalToken(ctx context.Context, t storage.PersonalToken) error
	ListPersonalTokens(ctx context.Context, userID string) ([]storage.PersonalToken, error)
	DeletePersonalToken(ctx context.Context, userID, id string) error
	storage.TrustedIssuers
}

// Announcer tells every replica that a record changed (replica.Bus implements it), so a change
// takes effect everywhere at once rather than when caches expire.
type Announcer interface {
	Announce(ctx context.Context, c storage.Change) error
}

// SigningAlgorithms are the algorithms a client's access_token_signing_alg may name: those
// the server signs with. keys.Set implements it.
type SigningAlgorithms interface {
	// Algorithms lists them, the default first.
	Algorithms() []string
	// SignsFrom reports whether alg is one of them and from when its keys sign: now, or later
	// for an algorithm whose first key is still published ahead of signing.
	SignsFrom(alg string, now time.Time) (time.Time, bool)
}

// rs256Only is the signing algorithm of a Service given none: RS256, signing now.
type rs256Only struct{}

func (rs256Only) Algorithms() []string { return []string{protocol.AlgRS256} }
func (rs256Only) SignsFrom(alg string, now time.Time) (time.Time, bool) {
	return now, alg == protocol.AlgRS256
}

// Service applies admin operations to the store.
type Service struct {
	store    Store
	now      func() time.Time
	announce Announcer
	audit    Auditor
	algs     SigningAlgorithms
	// tokenBound, when set, is the length of the longest access token a client can be issued.
	tokenBound func(storage.Client) int
}

// New returns a Service on store. Changes are announced to a, if not nil.
func New(store Store, a Announcer, opts ...Option) *Service {
	s := &Service{store: store, now: time.Now, announce: a, audit: audit.Discard, algs: rs256Only{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Option configures a Service.
type Option func(*Service)

// WithSigningAlgorithms sets what access_token_signing_alg is checked against and defaults
// to (the first algorithm); RS256 alone without it.
func WithSigningAlgorithms(a SigningAlgorithms) Option { return func(s *Service) { s.algs = a } }

// WithAccessTokenBound makes every client save check that the longest access token the client
// can be issued, as bound computes it (grants.AccessTokenBound), fits the revocation and
// introspection endpoints (protocol.MaxTokenLen): a token that cannot be revoked must not be
// issued. Without it no length is checked.
func WithAccessTokenBound(bound func(storage.Client) int) Option {
	return func(s *Service) { s.tokenBound = bound }
}

// WithClock replaces time.Now (tests share one clock between the registry and the token path).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// changed announces a change that was made; a failure to announce is logged by the caller's
// answer path only as a warning: the change itself stands.
func (s *Service) changed(ctx context.Context, kind, id string) {
	if s.announce == nil {
		return
	}
	if err := s.announce.Announce(context.WithoutCancel(ctx), storage.Change{Kind: kind, ID: id}); err != nil {
		slog.WarnContext(ctx, "announcing a change to the other replicas failed; they see it when their cached copy expires",
			"kind", kind, "id", id, "error", err)
	}
}

func invalid(format string, args ...any) error {
	return protocol.Errorf(protocol.InvalidRequest, format, args...)
}

// storeErr maps storage sentinels to admin API errors.
func storeErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return protocol.Errorf(protocol.NotFound, "%s not found", what)
	case errors.Is(err, storage.ErrAlreadyExists):
		return protocol.Errorf(protocol.AlreadyExists, "%s already exists", what)
	case errors.As(err, new(*protocol.Error)):
		return err
	default:
		return protocol.Unavailable(err)
	}
}

// printable reports whether s is valid UTF-8 without control or other non-printing characters
// (an escape sequence in a name would reach terminals and tokens).
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0
}

func uniq(field string, in []string, check func(string) error) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, v := range in {
		if strings.TrimSpace(v) == "" || len(v) > 200 {
			return nil, invalid("%s: values must be non-empty and at most 200 bytes", field)
		}
		if err := check(v); err != nil {
			return nil, err
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}
