package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// Options tune the key lifecycle.
type Options struct {
	// Algorithms are the algorithms this replica signs with, the default (for clients that
	// choose none) first; RS256 alone when empty. Each has its own active key, rotated on its
	// own.
	Algorithms []string
	// PublishAhead is how long a new key is published in the JWKS before it signs, so that
	// resource servers holding a cached JWKS have fetched it by then. Rotate may override it.
	PublishAhead time.Duration
	// RotateEvery rotates the key on a schedule: once the signing key is this old, any replica
	// starts a rotation (the store lets exactly one through). Zero turns it off.
	RotateEvery time.Duration
	// Lifetime is the longest an access token can live; a retired key stays published that
	// long after it stops signing. Nil means a day.
	Lifetime func(ctx context.Context) (time.Duration, error)
	// Refresh is how often a replica re-reads the keys (to follow rotations made elsewhere,
	// remove expired keys and notice a store that lost them); default 2 s.
	Refresh time.Duration
	// RestoreWait is how long Open waits, when it finds a shared store without keys, for a
	// running replica to write back the keys it holds before taking it for a first start.
	// Zero for a store no other process uses.
	RestoreWait time.Duration
	// Changed, when set, tells the other replicas that the key set changed (after a rotation
	// made here), so they reload at once instead of at their next refresh.
	Changed func(ctx context.Context)
}

// lifetimeMargin covers clocks that disagree a little across replicas and resource servers.
const lifetimeMargin = time.Minute

// Manager keeps a Set in step with the store: it follows rotations made on any replica,
// rotates on schedule or on request, drops keys once every token they signed has expired, and
// writes the set back if the store loses it, so replicas never disagree on the keys.
type Manager struct {
	Set   *Set
	store Store
	opts  Options
	log   *slog.Logger
	now   func() time.Time
}

// ErrRotationPending is returned by Rotate while an earlier rotation's key of the same
// algorithm has not started signing yet.
var ErrRotationPending = errors.New("keys: a new key is already waiting to take over")

// ErrNotConfigured is returned by Rotate for an algorithm this replica does not sign with.
var ErrNotConfigured = errors.New("keys: the algorithm is not in keys.algorithms")

// ErrInUse is returned by Retire for an algorithm this replica still signs with.
var ErrInUse = errors.New("keys: the algorithm is in keys.algorithms")

// ErrNoLiveKey is returned by Retire when no key of the algorithm is left to retire.
var ErrNoLiveKey = errors.New("keys: no key of the algorithm signs")

// Open loads the keys and makes sure every configured algorithm has a key, generating those
// the store lacks. created reports that this call generated the first key of an empty store:
// the very first start of a deployment.
//
// The first key of an algorithm added to a deployment that already signs is published
// PublishAhead before it signs, as a rotation's would be; until then its clients' tokens are
// signed with the next configured algorithm. On an empty store, or when none of the configured
// algorithms has a key that signs (all were replaced at once), the new keys sign at once:
// there is nothing else to sign with.
func Open(ctx context.Context, store Store, opts Options, log *slog.Logger) (m *Manager, created bool, err error) {
	if opts.Refresh <= 0 {
		opts.Refresh = 2 * time.Second
	}
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = []string{RS256}
	}
	m = &Manager{Set: &Set{algs: slices.Clone(opts.Algorithms), log: log}, store: store, opts: opts, log: log, now: time.Now}
	stored, err := store.ListSigningKeys(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("keys: %w", err)
	}
	if len(stored) == 0 && opts.RestoreWait > 0 {
		log.Warn("the store holds no signing keys; waiting for running replicas to write back theirs before starting afresh",
			"wait", opts.RestoreWait)
		foundEmpty := m.now()
		if stored, err = m.awaitRestore(ctx); err != nil {
			return nil, false, err
		}
		switch {
		case len(stored) == 0:
		case madeSince(stored, foundEmpty):
			// Replicas started together on a new store: the one whose wait ended first made
			// the keys, which is the normal first start, not a loss.
			log.Info("another replica starting on the same empty store made the signing keys", "keys", len(stored))
		default:
			log.Error("the store had lost its signing keys and a running replica wrote them back; clients, users and tokens kept in it may be lost too: restore it from a backup")
		}
	}
	now := m.now()
	empty := len(stored) == 0
	ahead := time.Duration(0)
	if !empty && m.signsNow(stored, now) {
		ahead = opts.PublishAhead
	}
	for _, alg := range opts.Algorithms {
		if storage.Live(stored, alg) {
			continue
		}
		// Each key is dated when it is made, so the listing shows them newest first in a
		// stable order.
		candidate, err := Generate(alg, m.now())
		if err != nil {
			return nil, false, err
		}
		candidate.ActivatesAt = now.Add(ahead).UTC()
		if ahead == 0 {
			// Signing at once: from the start of this second, since a token's iat has whole
			// seconds, so that its first tokens are not signed with another algorithm's key.
			candidate.ActivatesAt = now.Truncate(time.Second).UTC()
		}
		var made bool
		if stored, made, err = store.EnsureSigningKey(ctx, candidate); err != nil {
			return nil, false, fmt.Errorf("keys: %w", err)
		}
		created = created || (made && empty)
		if made && !empty {
			log.Info("first signing key of an algorithm published", "alg", alg, "kid", candidate.ID, "signs_from", candidate.Activation())
		}
	}
	if err := m.Set.replace(stored, now); err != nil {
		return nil, false, err
	}
	return m, created, nil
}

// signsNow reports whether one of the configured algorithms has a stored key that signs at now.
func (m *Manager) signsNow(stored []storage.SigningKey, now time.Time) bool {
	for _, k := range stored {
		if slices.Contains(m.opts.Algorithms, k.Alg()) && !k.Activation().After(now) && (k.RetiredAt.IsZero() || now.Before(k.RetiredAt)) {
			return true
		}
	}
	return false
}

// madeSince reports whether every key in stored was made after the store was found empty at
// emptyAt, give or take clocks that disagree a little: keys a running replica writes back
// existed before the store lost them, so only a replica's first start can have made them all
// since. A loss shortly after a deployment's first start may look like a first start here;
// the replica that writes the keys back still reports it as an error.
func madeSince(stored []storage.SigningKey, emptyAt time.Time) bool {
	for _, k := range stored {
		if k.CreatedAt.Before(emptyAt.Add(-lifetimeMargin)) {
			return false
		}
	}
	return true
}

func (m *Manager) awaitRestore(ctx context.Context) ([]storage.SigningKey, error) {
	deadline := time.Now().Add(m.opts.RestoreWait)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		stored, err := m.store.ListSigningKeys(ctx)
		if err != nil || len(stored) > 0 {
			return stored, err
		}
	}
	return nil, nil
}

// Reload re-reads the keys now (another replica announced a change).
func (m *Manager) Reload(ctx context.Context) error {
	stored, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		return m.restore(ctx)
	}
	return m.Set.replace(stored, m.now())
}

// restore writes the keys this replica holds back to a store that has none, before any other
// replica can mint a different set.
func (m *Manager) restore(ctx context.Context) error {
	held := m.Set.stored()
	restored, err := m.store.RestoreSigningKeys(ctx, held)
	if err != nil {
		return err
	}
	if restored {
		m.log.Error("the store had lost its signing keys; wrote back the ones this replica holds. Clients, users and tokens kept in it may be lost too: restore it from a backup",
			"keys", len(held))
		return nil
	}
	// Another replica was first; its set is the same as ours or newer.
	return m.Reload(ctx)
}

// lifetime is the longest an access token can live, plus a margin for clocks.
func (m *Manager) lifetime(ctx context.Context) (time.Duration, error) {
	lifetime := 24 * time.Hour
	if m.opts.Lifetime != nil {
		var err error
		if lifetime, err = m.opts.Lifetime(ctx); err != nil {
			return 0, err
		}
	}
	return lifetime + lifetimeMargin, nil
}

// Rotate starts a new key of alg (the default algorithm when empty): published now, signing
// after publishAhead (the configured default when negative), and retires the key of alg
// signing now at that moment. Keys of other algorithms are left as they are. It answers the
// new key.
func (m *Manager) Rotate(ctx context.Context, alg string, publishAhead time.Duration) (*Key, error) {
	if alg == "" {
		alg = m.Set.DefaultAlgorithm()
	}
	if !slices.Contains(m.Set.algorithms(), alg) {
		return nil, ErrNotConfigured
	}
	if publishAhead < 0 {
		publishAhead = m.opts.PublishAhead
	}
	lifetime, err := m.lifetime(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	next, err := Generate(alg, now)
	if err != nil {
		return nil, err
	}
	next.ActivatesAt = now.Add(publishAhead).UTC()
	stored, err := m.store.RotateSigningKey(ctx, next, now, lifetime)
	if errors.Is(err, storage.ErrAlreadyExists) {
		return nil, ErrRotationPending
	} else if err != nil {
		return nil, err
	}
	if err := m.Set.replace(stored, now); err != nil {
		return nil, err
	}
	m.log.Info("signing key rotation started", "alg", alg, "kid", next.ID, "signs_from", next.ActivatesAt)
	m.changed(ctx)
	for _, k := range m.Set.Keys() {
		if k.ID == next.ID {
			return k, nil
		}
	}
	return nil, fmt.Errorf("keys: rotated key %s is not in the set", next.ID)
}

// Retire stops the keys of alg from signing now, for an algorithm taken out of
// keys.algorithms: they stay published until every token they signed has expired, then leave
// the JWKS. It refuses an algorithm this replica still signs with (ErrInUse), so it cannot be
// done by accident while in use here. It answers the keys it retired.
func (m *Manager) Retire(ctx context.Context, alg string) ([]*Key, error) {
	if slices.Contains(m.Set.algorithms(), alg) {
		return nil, ErrInUse
	}
	stored, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	if !storage.Live(stored, alg) {
		return nil, ErrNoLiveKey
	}
	lifetime, err := m.lifetime(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	if stored, err = m.store.RetireSigningKeys(ctx, alg, now, lifetime); err != nil {
		return nil, err
	}
	if err := m.Set.replace(stored, now); err != nil {
		return nil, err
	}
	m.log.Info("signing keys of an algorithm retired", "alg", alg, "published_until", now.Add(lifetime))
	m.changed(ctx)
	var out []*Key
	for _, k := range m.Set.Keys() {
		if k.Algorithm == alg && k.RetiredAt.Equal(now) {
			out = append(out, k)
		}
	}
	return out, nil
}

func (m *Manager) changed(ctx context.Context) {
	if m.opts.Changed != nil {
		m.opts.Changed(ctx)
	}
}

// Run follows the store until ctx ends: every Refresh it re-reads the keys, writes them back if
// the store lost them, rotates on schedule and removes keys whose tokens have all expired.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.Refresh)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := m.tick(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			m.log.Warn("reading the signing keys failed; signing and publishing the ones held", "error", err)
			failing = true
		case err == nil && failing:
			m.log.Info("reading the signing keys works again")
			failing = false
		}
	}
}

func (m *Manager) tick(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, m.opts.Refresh)
	defer cancel()
	stored, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		return m.restore(ctx)
	}
	now := m.now()
	if m.opts.RotateEvery > 0 {
		rotated := false
		for _, alg := range m.Set.algorithms() {
			if storage.Pending(stored, alg, now) || !m.due(stored, alg, now) {
				continue
			}
			// Each rotation has a Refresh of its own: generating an RSA key takes a good part
			// of it on a busy machine. A rotation that fails is tried again at the next tick.
			rctx, cancel := context.WithTimeout(parent, m.opts.Refresh)
			_, err := m.Rotate(rctx, alg, -1)
			cancel()
			if err != nil && !errors.Is(err, ErrRotationPending) {
				return err
			}
			rotated = true
		}
		if rotated {
			return nil
		}
	}
	for _, k := range stored {
		if !k.RemoveAt.IsZero() && !now.Before(k.RemoveAt) {
			if stored, err = m.store.RemoveSigningKeys(ctx, now); err != nil {
				return err
			}
			m.log.Info("removed signing keys whose tokens have all expired")
			break
		}
	}
	return m.Set.replace(stored, now)
}

// due reports whether the key of alg signing now has signed for RotateEvery.
func (m *Manager) due(stored []storage.SigningKey, alg string, now time.Time) bool {
	var newest time.Time
	for _, k := range stored {
		if a := k.Activation(); k.Alg() == alg && !a.After(now) && a.After(newest) {
			newest = a
		}
	}
	return !newest.IsZero() && !now.Before(newest.Add(m.opts.RotateEvery))
}

// State names where a key is in its life at some moment.
const (
	StateNext     = "next"     // published, not signing yet
	StateActive   = "active"   // signing
	StateRetiring = "retiring" // no longer signing, published until its tokens expire
	// StateIdle is a key of an algorithm this replica does not sign with (taken out of
	// keys.algorithms, or added on another replica only): published, signing nothing here
	// until it is retired (Manager.Retire) or its algorithm configured again.
	StateIdle = "idle"
)

// View is a key as the admin API shows it: never its private half.
type View struct {
	Kid         string    `json:"kid"`
	Alg         string    `json:"alg"`
	State       string    `json:"state"`
	CreatedAt   time.Time `json:"created_at"`
	ActivatesAt time.Time `json:"activates_at"`
	RetiresAt   time.Time `json:"retires_at,omitzero"`
	RemovedAt   time.Time `json:"removed_at,omitzero"`
}

// Views describes every published key at now, newest first.
func (s *Set) Views(now time.Time) []View {
	st := s.state.Load()
	var out []View
	for _, k := range st.all {
		v := View{Kid: k.ID, Alg: k.Algorithm, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiresAt: k.RetiredAt, RemovedAt: k.RemoveAt}
		switch {
		case st.keyAt(k.Algorithm, now) == k:
			v.State = StateActive
		case !k.RetiredAt.IsZero() && !now.Before(k.RetiredAt):
			v.State = StateRetiring
		case !slices.Contains(st.algs, k.Algorithm):
			v.State = StateIdle
		case k.ActivatesAt.After(now):
			v.State = StateNext
		default:
			v.State = StateRetiring
		}
		out = append(out, v)
	}
	return out
}
