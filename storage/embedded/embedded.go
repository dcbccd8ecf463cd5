// Package embedded is the in-process storage backend behind memory: and file: URLs. It uses
// buntdb (the store go-oauth2 already ships with): one writer at a time, so every Update
// transaction is atomic, per-key TTLs for records that expire, and an append-only file with
// fsync on every commit for file:, so a token that was answered is never lost by a crash.
//
// One process owns an embedded store, so it is always exactly one replica: the change feed is
// in-process and the failed-login counts live in memory.
package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/sync/semaphore"
)

// Store implements storage.Storage on buntdb.
type Store struct {
	db *buntdb.DB
	// lock admits many readers or one writer, like buntdb's own lock, but a caller waiting
	// for it gives up when its context ends: a slow or stuck transaction turns later calls
	// into ErrUnavailable instead of hanging them (and every request, /readyz and shutdown
	// behind them). It is FIFO, so a waiting writer is not starved by readers.
	lock   *semaphore.Weighted
	logins *throttle

	mu       sync.Mutex
	watchers map[int]func(storage.Change)
	nextID   int
}

var _ storage.Storage = (*Store)(nil)

// OpenMemory opens a store that lives only as long as the process.
func OpenMemory() (*Store, error) { return open(":memory:") }

// OpenFile opens (creating if needed) a store persisted at path.
func OpenFile(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	s, err := open(path)
	if err != nil {
		return nil, err
	}
	// The file holds the signing keys: readable by this user only.
	if err := os.Chmod(path, 0o600); err != nil {
		s.Close()
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	return s, nil
}

func open(path string) (*Store, error) {
	db, err := buntdb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("embedded store %s: %w", path, err)
	}
	var cfg buntdb.Config
	if err := db.ReadConfig(&cfg); err != nil {
		return nil, err
	}
	// Every commit reaches the disk before the caller answers: a refresh token we handed out
	// must survive a crash, or its holder is locked out.
	cfg.SyncPolicy = buntdb.Always
	if err := db.SetConfig(cfg); err != nil {
		return nil, err
	}
	return &Store{db: db, lock: semaphore.NewWeighted(writerWeight), logins: newThrottle(), watchers: map[int]func(storage.Change){}}, nil
}

// writerWeight is the whole lock: a writer excludes every reader.
const writerWeight = 1 << 30

func (s *Store) acquire(ctx context.Context, n int64) error {
	if err := s.lock.Acquire(ctx, n); err != nil {
		return fmt.Errorf("%w: embedded store busy: %v", storage.ErrUnavailable, err)
	}
	return nil
}

// update runs fn in a writing transaction, or fails with ErrUnavailable when ctx ends first.
func (s *Store) update(ctx context.Context, fn func(tx *buntdb.Tx) error) error {
	if err := s.acquire(ctx, writerWeight); err != nil {
		return err
	}
	defer s.lock.Release(writerWeight)
	return s.db.Update(fn)
}

// view runs fn in a reading transaction, or fails with ErrUnavailable when ctx ends first.
func (s *Store) view(ctx context.Context, fn func(tx *buntdb.Tx) error) error {
	if err := s.acquire(ctx, 1); err != nil {
		return err
	}
	defer s.lock.Release(1)
	return s.db.View(fn)
}

// Key layout. Refresh tokens and their family share the family id in their keys, the same
// grouping the Redis backend uses as a Cluster hash tag. Client ids may hold any printable
// character, '*' and '?' included, so they never appear in a key that is matched as a pattern.
func clientKey(id string) string         { return "client:" + id }
func goneKey(id string) string           { return "gone:" + id }
func userKey(id string) string           { return "user:" + id }
func usernameKey(name string) string     { return "username:" + storage.FoldUsername(name) }
func signingKeyKey(kid string) string    { return "key:" + kid }
func familyKey(fam string) string        { return "fam:" + fam }
func refreshKey(fam, hash string) string { return "rt:" + fam + ":" + hash }
func revokedKey(client, jti string) string {
	return "revoked:" + digest(client) + ":" + jti
}

type family struct {
	ClientID  string    `json:"client_id"`
	Subject   string    `json:"subject"`
	Revoked   bool      `json:"revoked,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

func get[T any](tx *buntdb.Tx, key string) (T, error) {
	var v T
	s, err := tx.Get(key)
	if errors.Is(err, buntdb.ErrNotFound) {
		return v, storage.ErrNotFound
	}
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return v, fmt.Errorf("embedded store: decode %s: %w", key, err)
	}
	return v, nil
}

// put stores v under key. A non-zero expiresAt makes buntdb drop it expiresAt-now later: the
// lifetime is measured on the caller's clock (now), never on the wall clock, so a caller that
// passes its own time (tests, a replica with a skewed clock) gets the lifetime it asked for.
// Whether a record is still valid is always decided against the caller's now as well; buntdb's
// expiry only collects garbage.
func put(tx *buntdb.Tx, key string, v any, now, expiresAt time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, _, err = tx.Set(key, string(b), expiry(now, expiresAt))
	return err
}

// expiry is the buntdb option for a record that lives until expiresAt on a clock reading now;
// nil (kept for good) when expiresAt is zero.
func expiry(now, expiresAt time.Time) *buntdb.SetOptions {
	if expiresAt.IsZero() {
		return nil
	}
	return &buntdb.SetOptions{Expires: true, TTL: max(expiresAt.Sub(now), time.Millisecond)}
}

// replace overwrites the record under key and keeps the time it has left.
func replace(tx *buntdb.Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var opts *buntdb.SetOptions
	if ttl, err := tx.TTL(key); err == nil && ttl > 0 {
		opts = &buntdb.SetOptions{Expires: true, TTL: ttl}
	}
	_, _, err = tx.Set(key, string(b), opts)
	return err
}

func exists(tx *buntdb.Tx, key string) bool {
	_, err := tx.Get(key)
	return err == nil
}

func list[T any](ctx context.Context, s *Store, prefix string) ([]T, error) {
	var out []T
	err := s.view(ctx, func(tx *buntdb.Tx) error {
		var derr error
		err := tx.AscendKeys(prefix+"*", func(k, v string) bool {
			var item T
			if derr = json.Unmarshal([]byte(v), &item); derr != nil {
				return false
			}
			out = append(out, item)
			return true
		})
		if err != nil {
			return err
		}
		return derr
	})
	return out, err
}

func getOne[T any](ctx context.Context, s *Store, key string) (v T, err error) {
	err = s.view(ctx, func(tx *buntdb.Tx) error {
		v, err = get[T](tx, key)
		return err
	})
	return v, err
}

// CreateClient implements storage.Storage.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		if exists(tx, clientKey(c.ID)) {
			return storage.ErrAlreadyExists
		}
		c.NotBefore = time.Time{}
		if gone, err := get[time.Time](tx, goneKey(c.ID)); err == nil {
			c.NotBefore = gone
		}
		return put(tx, clientKey(c.ID), c, time.Time{}, time.Time{})
	})
}

// GetClient implements storage.Storage.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	return getOne[storage.Client](ctx, s, clientKey(id))
}

// ListClients implements storage.Storage.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	return list[storage.Client](ctx, s, "client:")
}

// UpdateClient implements storage.Storage.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(*storage.Client) error) (c storage.Client, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		if c, err = get[storage.Client](tx, clientKey(id)); err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return err
		}
		c.ID = id
		return put(tx, clientKey(id), c, time.Time{}, time.Time{})
	})
	return c, err
}

// DeleteClient implements storage.Storage.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		_, err := tx.Delete(clientKey(id))
		if errors.Is(err, buntdb.ErrNotFound) {
			return storage.ErrNotFound
		} else if err != nil {
			return err
		}
		return put(tx, goneKey(id), now.UTC(), time.Time{}, time.Time{})
	})
}

// CreateUser implements storage.Storage.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		if exists(tx, userKey(u.ID)) || exists(tx, usernameKey(u.Username)) {
			return storage.ErrAlreadyExists
		}
		if _, _, err := tx.Set(usernameKey(u.Username), u.ID, nil); err != nil {
			return err
		}
		return put(tx, userKey(u.ID), u, time.Time{}, time.Time{})
	})
}

// GetUser implements storage.Storage.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	return getOne[storage.User](ctx, s, userKey(id))
}

func userByName(tx *buntdb.Tx, username string) (storage.User, error) {
	id, err := tx.Get(usernameKey(username))
	if errors.Is(err, buntdb.ErrNotFound) {
		return storage.User{}, storage.ErrNotFound
	} else if err != nil {
		return storage.User{}, err
	}
	return get[storage.User](tx, userKey(id))
}

// GetUserByUsername implements storage.Storage.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (u storage.User, err error) {
	err = s.view(ctx, func(tx *buntdb.Tx) error {
		u, err = userByName(tx, username)
		return err
	})
	return u, err
}

// ListUsers implements storage.Storage.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	return list[storage.User](ctx, s, "user:")
}

// UpdateUser implements storage.Storage.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*storage.User) error) (u storage.User, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		if u, err = get[storage.User](tx, userKey(id)); err != nil {
			return err
		}
		name := u.Username
		if err := fn(&u); err != nil {
			return err
		}
		u.ID, u.Username = id, name
		return put(tx, userKey(id), u, time.Time{}, time.Time{})
	})
	return u, err
}

// DeleteUser implements storage.Storage.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		u, err := get[storage.User](tx, userKey(id))
		if err != nil {
			return err
		}
		if _, err := tx.Delete(userKey(id)); err != nil {
			return err
		}
		if _, err := tx.Delete(usernameKey(u.Username)); err != nil {
			return err
		}
		return deleteUserPATs(tx, id)
	})
}

// Login implements storage.Storage.
func (s *Store) Login(ctx context.Context, a storage.LoginAttempt) (storage.LoginState, error) {
	st := s.logins.state(a)
	u, err := s.GetUserByUsername(ctx, a.Username)
	switch {
	case err == nil:
		st.User = &u
	case !errors.Is(err, storage.ErrNotFound):
		return storage.LoginState{}, err
	}
	return st, nil
}

// LoginFailed implements storage.Storage.
func (s *Store) LoginFailed(_ context.Context, a storage.LoginAttempt) error {
	s.logins.fail(a)
	return nil
}

// LoginSucceeded implements storage.Storage.
func (s *Store) LoginSucceeded(_ context.Context, a storage.LoginAttempt) error {
	s.logins.succeed(a)
	return nil
}

// EnsureSigningKey implements storage.Storage.
func (s *Store) EnsureSigningKey(ctx context.Context, candidate storage.SigningKey) (keys []storage.SigningKey, created bool, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		n := 0
		if err := tx.AscendKeys("key:*", func(string, string) bool { n++; return false }); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		created = true
		return put(tx, signingKeyKey(candidate.ID), candidate, time.Time{}, time.Time{})
	})
	if err != nil {
		return nil, false, err
	}
	keys, err = s.ListSigningKeys(ctx)
	return keys, created, err
}

// RestoreSigningKeys implements storage.Storage.
func (s *Store) RestoreSigningKeys(ctx context.Context, keys []storage.SigningKey) (restored bool, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		n := 0
		if err := tx.AscendKeys("key:*", func(string, string) bool { n++; return false }); err != nil || n > 0 {
			return err
		}
		for _, k := range keys {
			if err := put(tx, signingKeyKey(k.ID), k, time.Time{}, time.Time{}); err != nil {
				return err
			}
		}
		restored = len(keys) > 0
		return nil
	})
	return restored, err
}

// RotateSigningKey implements storage.Storage.
func (s *Store) RotateSigningKey(ctx context.Context, next storage.SigningKey, now time.Time, lifetime time.Duration) (out []storage.SigningKey, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		keys, err := signingKeys(tx)
		if err != nil {
			return err
		}
		if storage.Pending(keys, now) {
			return storage.ErrAlreadyExists
		}
		out = append(storage.Retire(keys, next.Activation(), lifetime), next)
		for _, k := range out {
			if err := put(tx, signingKeyKey(k.ID), k, time.Time{}, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// RemoveSigningKeys implements storage.Storage.
func (s *Store) RemoveSigningKeys(ctx context.Context, now time.Time) (left []storage.SigningKey, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		keys, err := signingKeys(tx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if !k.RemoveAt.IsZero() && !now.Before(k.RemoveAt) {
				if _, err := tx.Delete(signingKeyKey(k.ID)); err != nil {
					return err
				}
				continue
			}
			left = append(left, k)
		}
		return nil
	})
	return left, err
}

func signingKeys(tx *buntdb.Tx) ([]storage.SigningKey, error) {
	var out []storage.SigningKey
	var derr error
	err := tx.AscendKeys("key:*", func(_, v string) bool {
		var k storage.SigningKey
		if derr = json.Unmarshal([]byte(v), &k); derr != nil {
			return false
		}
		out = append(out, k)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, derr
}

// ListSigningKeys implements storage.Storage.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	return list[storage.SigningKey](ctx, s, "key:")
}

// CreateRefreshToken implements storage.Storage.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	return s.update(ctx, func(tx *buntdb.Tx) error { return createFamily(tx, t) })
}

// createFamily stores the first refresh token of a new family.
func createFamily(tx *buntdb.Tx, t storage.RefreshToken) error {
	if exists(tx, familyKey(t.FamilyID)) {
		return storage.ErrAlreadyExists
	}
	f := family{ClientID: t.ClientID, Subject: t.Subject, ExpiresAt: t.FamilyExpiry()}
	if err := put(tx, familyKey(t.FamilyID), f, t.IssuedAt, f.ExpiresAt); err != nil {
		return err
	}
	return put(tx, refreshKey(t.FamilyID, t.Hash), t, t.IssuedAt, t.ExpiresAt)
}

// GetRefreshToken implements storage.Storage.
func (s *Store) GetRefreshToken(ctx context.Context, familyID, hash string) (storage.RefreshToken, error) {
	return getOne[storage.RefreshToken](ctx, s, refreshKey(familyID, hash))
}

// RotateRefreshToken implements storage.Storage (see storage.Rotation for the contract).
func (s *Store) RotateRefreshToken(ctx context.Context, r storage.Rotation) (out storage.Rotated, err error) {
	// A replay or a deleted user revokes the family; that write must commit even though the
	// caller gets an error, so the outcome travels out of the transaction rather than as its
	// error.
	var outcome error
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		old, err := get[storage.RefreshToken](tx, refreshKey(r.FamilyID, r.Hash))
		if err != nil {
			return err
		}
		if old.ClientID != r.ClientID || !r.Now.Before(old.ExpiresAt) {
			return storage.ErrNotFound
		}
		fam, err := get[family](tx, familyKey(r.FamilyID))
		if err != nil {
			return err
		}
		if fam.Revoked {
			return storage.ErrRevoked
		}
		if r.UserID != "" {
			u, err := get[storage.User](tx, userKey(r.UserID))
			if errors.Is(err, storage.ErrNotFound) || (err == nil && old.IssuedAt.Before(u.NotBefore)) {
				fam.Revoked, outcome = true, storage.ErrRevoked
				return replace(tx, familyKey(r.FamilyID), fam)
			} else if err != nil {
				return err
			}
		}
		if !old.UsedAt.IsZero() {
			if r.Grace > 0 && r.Now.Sub(old.UsedAt) <= r.Grace && len(old.Successor) > 0 {
				out = storage.Rotated{Sealed: old.Successor}
				return nil
			}
			fam.Revoked, outcome = true, storage.ErrReplay
			return replace(tx, familyKey(r.FamilyID), fam)
		}
		old.UsedAt = r.Now
		old.Successor = r.Sealed
		if err := replace(tx, refreshKey(r.FamilyID, r.Hash), old); err != nil {
			return err
		}
		if exp := r.Next.FamilyExpiry(); exp.After(fam.ExpiresAt) {
			fam.ExpiresAt = exp
			if err := put(tx, familyKey(r.FamilyID), fam, r.Now, fam.ExpiresAt); err != nil {
				return err
			}
		}
		out = storage.Rotated{Fresh: true, Sealed: r.Sealed}
		return put(tx, refreshKey(r.Next.FamilyID, r.Next.Hash), r.Next, r.Now, r.Next.ExpiresAt)
	})
	if err == nil && outcome != nil {
		return storage.Rotated{}, outcome
	}
	return out, err
}

// RevokeFamily implements storage.Storage. Pools check the family when they hand out a token,
// so marking it is all revocation takes here.
func (s *Store) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		fam, err := get[family](tx, familyKey(familyID))
		if err != nil {
			return err
		}
		if !now.Before(fam.ExpiresAt) {
			return storage.ErrNotFound
		}
		if fam.Revoked {
			return nil
		}
		fam.Revoked = true
		return replace(tx, familyKey(familyID), fam)
	})
}

// RevokeAccessToken implements storage.Storage.
func (s *Store) RevokeAccessToken(ctx context.Context, r storage.AccessRevocation) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		if _, _, err := tx.Set(revokedKey(r.Pool.ClientID, r.JTI), "1", expiry(r.Now, r.ExpiresAt)); err != nil {
			return err
		}
		_, err := tx.Delete(poolPrefix(r.Pool) + r.JTI)
		if errors.Is(err, buntdb.ErrNotFound) {
			return nil
		}
		return err
	})
}

// TokenState implements storage.Storage.
func (s *Store) TokenState(ctx context.Context, q storage.TokenQuery) (st storage.TokenState, err error) {
	err = s.view(ctx, func(tx *buntdb.Tx) error {
		st.Revoked = revoked(tx, q.ClientID, q.JTI, q.FamilyID, q.Now)
		if q.PersonalTokenID != "" {
			pat, err := get[storage.PersonalToken](tx, patKey(q.PersonalTokenID))
			st.Revoked = st.Revoked || err != nil || !pat.Live(q.Now)
		}
		if q.UserID != "" {
			u, err := get[storage.User](tx, userKey(q.UserID))
			switch {
			case err == nil:
				st.User = &u
			case !errors.Is(err, storage.ErrNotFound):
				return err
			}
		}
		return nil
	})
	return st, err
}

// revoked reports whether an access token with jti (and family, if any) may no longer be used
// at now. An expired or unknown family counts as revoked: nothing descended from it is valid.
func revoked(tx *buntdb.Tx, client, jti, familyID string, now time.Time) bool {
	if jti != "" && exists(tx, revokedKey(client, jti)) {
		return true
	}
	if familyID == "" {
		return false
	}
	fam, err := get[family](tx, familyKey(familyID))
	return err != nil || fam.Revoked || !now.Before(fam.ExpiresAt)
}

// Publish implements storage.Storage: the one replica of an embedded store hears its own
// changes at once.
func (s *Store) Publish(_ context.Context, c storage.Change) error {
	s.mu.Lock()
	fns := make([]func(storage.Change), 0, len(s.watchers))
	for _, fn := range s.watchers {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
	return nil
}

// Watch implements storage.Storage. The in-process feed never loses a change.
func (s *Store) Watch(ctx context.Context, fn func(storage.Change), healthy func(bool)) {
	healthy(true)
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.watchers[id] = fn
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	delete(s.watchers, id)
	s.mu.Unlock()
}

// Ping implements storage.Storage.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, func(*buntdb.Tx) error { return nil })
}

// Close implements storage.Storage.
func (s *Store) Close() error { return s.db.Close() }
