// Package embedded is the in-process storage backend behind memory: and file: URLs. It uses
// buntdb (the store go-oauth2 already ships with): one writer at a time, so every Update
// transaction is atomic, per-key TTLs for records that expire, and an append-only file with
// fsync on every commit for file:, so a token that was answered is never lost by a crash.
package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// Store implements storage.Storage on buntdb.
type Store struct {
	db *buntdb.DB
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
	return &Store{db: db}, nil
}

// Key layout. Refresh tokens and their family share the family id in their keys, the same
// grouping the Redis backend uses as a Cluster hash tag.
func clientKey(id string) string         { return "client:" + id }
func userKey(id string) string           { return "user:" + id }
func usernameKey(name string) string     { return "username:" + name }
func signingKeyKey(kid string) string    { return "key:" + kid }
func familyKey(fam string) string        { return "fam:" + fam }
func refreshKey(fam, hash string) string { return "rt:" + fam + ":" + hash }

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

func list[T any](s *Store, prefix string) ([]T, error) {
	var out []T
	err := s.db.View(func(tx *buntdb.Tx) error {
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

// CreateClient implements storage.Storage.
func (s *Store) CreateClient(_ context.Context, c storage.Client) error {
	return s.db.Update(func(tx *buntdb.Tx) error {
		if exists(tx, clientKey(c.ID)) {
			return storage.ErrAlreadyExists
		}
		return put(tx, clientKey(c.ID), c, time.Time{}, time.Time{})
	})
}

// GetClient implements storage.Storage.
func (s *Store) GetClient(_ context.Context, id string) (c storage.Client, err error) {
	err = s.db.View(func(tx *buntdb.Tx) error {
		c, err = get[storage.Client](tx, clientKey(id))
		return err
	})
	return c, err
}

// ListClients implements storage.Storage.
func (s *Store) ListClients(context.Context) ([]storage.Client, error) {
	return list[storage.Client](s, "client:")
}

// UpdateClient implements storage.Storage.
func (s *Store) UpdateClient(_ context.Context, id string, fn func(*storage.Client) error) (c storage.Client, err error) {
	err = s.db.Update(func(tx *buntdb.Tx) error {
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
func (s *Store) DeleteClient(_ context.Context, id string) error {
	return s.db.Update(func(tx *buntdb.Tx) error {
		_, err := tx.Delete(clientKey(id))
		if errors.Is(err, buntdb.ErrNotFound) {
			return storage.ErrNotFound
		}
		return err
	})
}

// CreateUser implements storage.Storage.
func (s *Store) CreateUser(_ context.Context, u storage.User) error {
	return s.db.Update(func(tx *buntdb.Tx) error {
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
func (s *Store) GetUser(_ context.Context, id string) (u storage.User, err error) {
	err = s.db.View(func(tx *buntdb.Tx) error {
		u, err = get[storage.User](tx, userKey(id))
		return err
	})
	return u, err
}

// GetUserByUsername implements storage.Storage.
func (s *Store) GetUserByUsername(_ context.Context, username string) (u storage.User, err error) {
	err = s.db.View(func(tx *buntdb.Tx) error {
		id, err := tx.Get(usernameKey(username))
		if errors.Is(err, buntdb.ErrNotFound) {
			return storage.ErrNotFound
		} else if err != nil {
			return err
		}
		u, err = get[storage.User](tx, userKey(id))
		return err
	})
	return u, err
}

// ListUsers implements storage.Storage.
func (s *Store) ListUsers(context.Context) ([]storage.User, error) {
	return list[storage.User](s, "user:")
}

// DeleteUser implements storage.Storage.
func (s *Store) DeleteUser(_ context.Context, id string) error {
	return s.db.Update(func(tx *buntdb.Tx) error {
		u, err := get[storage.User](tx, userKey(id))
		if err != nil {
			return err
		}
		if _, err := tx.Delete(userKey(id)); err != nil {
			return err
		}
		_, err = tx.Delete(usernameKey(u.Username))
		return err
	})
}

// EnsureSigningKey implements storage.Storage.
func (s *Store) EnsureSigningKey(_ context.Context, candidate storage.SigningKey) (keys []storage.SigningKey, created bool, err error) {
	err = s.db.Update(func(tx *buntdb.Tx) error {
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
	keys, err = s.ListSigningKeys(context.Background())
	return keys, created, err
}

// ListSigningKeys implements storage.Storage.
func (s *Store) ListSigningKeys(context.Context) ([]storage.SigningKey, error) {
	return list[storage.SigningKey](s, "key:")
}

// CreateRefreshToken implements storage.Storage.
func (s *Store) CreateRefreshToken(_ context.Context, t storage.RefreshToken) error {
	return s.db.Update(func(tx *buntdb.Tx) error {
		if exists(tx, familyKey(t.FamilyID)) {
			return storage.ErrAlreadyExists
		}
		f := family{ClientID: t.ClientID, Subject: t.Subject, ExpiresAt: t.ExpiresAt}
		if err := put(tx, familyKey(t.FamilyID), f, t.IssuedAt, t.ExpiresAt); err != nil {
			return err
		}
		return put(tx, refreshKey(t.FamilyID, t.Hash), t, t.IssuedAt, t.ExpiresAt)
	})
}

// GetRefreshToken implements storage.Storage.
func (s *Store) GetRefreshToken(_ context.Context, familyID, hash string) (t storage.RefreshToken, err error) {
	err = s.db.View(func(tx *buntdb.Tx) error {
		t, err = get[storage.RefreshToken](tx, refreshKey(familyID, hash))
		return err
	})
	return t, err
}

// RotateRefreshToken implements storage.Storage (see storage.Rotation for the contract).
func (s *Store) RotateRefreshToken(_ context.Context, r storage.Rotation) (out storage.Rotated, err error) {
	// A replay revokes the family; that write must commit even though the caller gets an
	// error, so the outcome travels out of the transaction in replay rather than as its error.
	replay := false
	err = s.db.Update(func(tx *buntdb.Tx) error {
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
		if !old.UsedAt.IsZero() {
			if r.Grace > 0 && r.Now.Sub(old.UsedAt) <= r.Grace && len(old.Successor) > 0 {
				out = storage.Rotated{Sealed: old.Successor}
				return nil
			}
			fam.Revoked = true
			replay = true
			return replace(tx, familyKey(r.FamilyID), fam)
		}
		old.UsedAt = r.Now
		old.Successor = r.Sealed
		if err := replace(tx, refreshKey(r.FamilyID, r.Hash), old); err != nil {
			return err
		}
		if r.Next.ExpiresAt.After(fam.ExpiresAt) {
			fam.ExpiresAt = r.Next.ExpiresAt
		}
		if err := put(tx, familyKey(r.FamilyID), fam, r.Now, fam.ExpiresAt); err != nil {
			return err
		}
		out = storage.Rotated{Fresh: true, Sealed: r.Sealed}
		return put(tx, refreshKey(r.Next.FamilyID, r.Next.Hash), r.Next, r.Now, r.Next.ExpiresAt)
	})
	if err == nil && replay {
		return storage.Rotated{}, storage.ErrReplay
	}
	return out, err
}

// RevokeFamily implements storage.Storage.
func (s *Store) RevokeFamily(_ context.Context, familyID string) error {
	return s.db.Update(func(tx *buntdb.Tx) error {
		fam, err := get[family](tx, familyKey(familyID))
		if err != nil {
			return err
		}
		fam.Revoked = true
		return replace(tx, familyKey(familyID), fam)
	})
}

// FamilyRevoked implements storage.Storage. An expired family counts as revoked: nothing
// descended from it may still be used.
func (s *Store) FamilyRevoked(_ context.Context, familyID string) (revoked bool, err error) {
	err = s.db.View(func(tx *buntdb.Tx) error {
		fam, err := get[family](tx, familyKey(familyID))
		if errors.Is(err, storage.ErrNotFound) {
			revoked = true
			return nil
		}
		revoked = fam.Revoked
		return err
	})
	return revoked, err
}

// Ping implements storage.Storage.
func (s *Store) Ping(context.Context) error {
	return s.db.View(func(*buntdb.Tx) error { return nil })
}

// Close implements storage.Storage.
func (s *Store) Close() error { return s.db.Close() }
