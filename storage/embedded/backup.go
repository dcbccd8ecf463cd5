package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// Backup and restore. One process owns an embedded store, so each Each method reads its kind
// in one read transaction: a consistent view, and nobody waits for it.

// each calls fn with the decoded value of every key matching pattern, in one read
// transaction; fn's error stops the walk.
func each[T any](ctx context.Context, s *Store, pattern string, fn func(key string, v T) error) error {
	return s.view(ctx, func(tx *buntdb.Tx) error {
		var ferr error
		err := tx.AscendKeys(pattern, func(k, raw string) bool {
			var v T
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				ferr = fmt.Errorf("embedded store: decode %s: %w", k, err)
				return false
			}
			ferr = fn(k, v)
			return ferr == nil
		})
		if err != nil {
			return err
		}
		return ferr
	})
}

// EachClient implements storage.Storage.
func (s *Store) EachClient(ctx context.Context, fn func(storage.Client) error) error {
	return each(ctx, s, "client:*", func(_ string, c storage.Client) error { return fn(c) })
}

// EachDeletedClient implements storage.Storage.
func (s *Store) EachDeletedClient(ctx context.Context, fn func(storage.DeletedClient) error) error {
	return each(ctx, s, "gone:*", func(k string, at time.Time) error {
		return fn(storage.DeletedClient{ID: strings.TrimPrefix(k, "gone:"), DeletedAt: at})
	})
}

// EachUser implements storage.Storage.
func (s *Store) EachUser(ctx context.Context, fn func(storage.User, []storage.PersonalToken) error) error {
	return s.view(ctx, func(tx *buntdb.Tx) error {
		var ferr error
		err := tx.AscendKeys("user:*", func(k, raw string) bool {
			var u storage.User
			if ferr = json.Unmarshal([]byte(raw), &u); ferr != nil {
				ferr = fmt.Errorf("embedded store: decode %s: %w", k, ferr)
				return false
			}
			var pats []storage.PersonalToken
			ids, err := userPATIDs(tx, u.ID)
			if err != nil {
				ferr = err
				return false
			}
			for _, id := range ids {
				t, err := get[storage.PersonalToken](tx, patKey(id))
				if errors.Is(err, storage.ErrNotFound) {
					continue
				} else if err != nil {
					ferr = err
					return false
				}
				pats = append(pats, t)
			}
			ferr = fn(u, pats)
			return ferr == nil
		})
		if err != nil {
			return err
		}
		return ferr
	})
}

// EachRefreshFamily implements storage.Storage.
func (s *Store) EachRefreshFamily(ctx context.Context, now time.Time, fn func(storage.RefreshFamily) error) error {
	return each(ctx, s, "fam:*", func(k string, f family) error {
		if !now.Before(f.ExpiresAt) {
			return nil
		}
		return fn(storage.RefreshFamily{ID: strings.TrimPrefix(k, "fam:"), ClientID: f.ClientID, Revoked: f.Revoked, ExpiresAt: f.ExpiresAt, Epoch: f.Epoch})
	})
}

// EachRefreshToken implements storage.Storage.
func (s *Store) EachRefreshToken(ctx context.Context, now time.Time, fn func(storage.RefreshToken) error) error {
	return each(ctx, s, "rt:*", func(_ string, t storage.RefreshToken) error {
		if !now.Before(t.ExpiresAt) {
			return nil
		}
		return fn(t)
	})
}

// EachRevokedAccessToken implements storage.Storage. Entries written before the deny-list
// recorded whom they belong to hold only "1" and a digest of the client id in their key: the
// client is found among the clients by that digest (a deleted client's tokens are refused
// anyway), and the end is the entry's time to live.
func (s *Store) EachRevokedAccessToken(ctx context.Context, now time.Time, fn func(storage.RevokedAccessToken) error) error {
	return s.view(ctx, func(tx *buntdb.Tx) error {
		var ferr error
		err := tx.AscendKeys("revoked:*", func(k, raw string) bool {
			var r storage.RevokedAccessToken
			if json.Unmarshal([]byte(raw), &r) != nil || r.JTI == "" {
				if r, ferr = legacyRevocation(tx, k); ferr != nil || r.JTI == "" {
					return ferr == nil
				}
			}
			if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
				return true
			}
			ferr = fn(r)
			return ferr == nil
		})
		if err != nil {
			return err
		}
		return ferr
	})
}

// legacyRevocation reads a deny-list entry that holds no record; an empty JTI when its client
// no longer exists.
func legacyRevocation(tx *buntdb.Tx, key string) (storage.RevokedAccessToken, error) {
	var r storage.RevokedAccessToken
	digest, jti, ok := strings.Cut(strings.TrimPrefix(key, "revoked:"), ":")
	if !ok {
		return r, nil
	}
	err := tx.AscendKeys("client:*", func(k, _ string) bool {
		if id := strings.TrimPrefix(k, "client:"); storage.KeyDigest(id) == digest {
			r.ClientID, r.JTI = id, jti
			return false
		}
		return true
	})
	if ttl, terr := tx.TTL(key); err == nil && terr == nil && ttl > 0 {
		r.ExpiresAt = time.Now().Add(ttl).UTC()
	}
	return r, err
}

// restore runs one Restore method: fn reads what the store holds and writes the record
// unless dry. A dry run only reads.
func (s *Store) restore(ctx context.Context, dry bool, fn func(tx *buntdb.Tx) (storage.Outcome, error)) (out storage.Outcome, err error) {
	run := s.update
	if dry {
		run = s.view
	}
	err = run(ctx, func(tx *buntdb.Tx) error {
		out, err = fn(tx)
		return err
	})
	return out, err
}

// held is the record under key, nil when there is none.
func held[T any](tx *buntdb.Tx, key string) (*T, error) {
	v, err := get[T](tx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// RestoreClient implements storage.Storage.
func (s *Store) RestoreClient(ctx context.Context, c storage.Client, r storage.Restore) (storage.Outcome, error) {
	return s.restore(ctx, r.DryRun, func(tx *buntdb.Tx) (storage.Outcome, error) {
		h, err := held[storage.Client](tx, clientKey(c.ID))
		if err != nil {
			return 0, err
		}
		out := storage.Restored(h, c)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		return out, putClient(tx, h, c)
	})
}

// RestoreDeletedClient implements storage.Storage.
func (s *Store) RestoreDeletedClient(ctx context.Context, d storage.DeletedClient, r storage.Restore) (storage.Outcome, error) {
	return s.restore(ctx, r.DryRun, func(tx *buntdb.Tx) (storage.Outcome, error) {
		at, err := held[time.Time](tx, goneKey(d.ID))
		if err != nil {
			return 0, err
		}
		var h *storage.DeletedClient
		if at != nil {
			h = &storage.DeletedClient{ID: d.ID, DeletedAt: *at}
			d = storage.MergeDeletedClient(*h, d)
		}
		out := storage.Restored(h, d)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		return out, put(tx, goneKey(d.ID), d.DeletedAt, time.Time{}, time.Time{})
	})
}

// RestoreUser implements storage.Storage.
func (s *Store) RestoreUser(ctx context.Context, u storage.User, r storage.Restore) (storage.Outcome, error) {
	return s.restore(ctx, r.DryRun, func(tx *buntdb.Tx) (storage.Outcome, error) {
		h, err := held[storage.User](tx, userKey(u.ID))
		if err != nil {
			return 0, err
		}
		if owner, err := tx.Get(usernameKey(u.Username)); err == nil && owner != u.ID {
			return 0, fmt.Errorf("%w: username %q belongs to user %s", storage.ErrAlreadyExists, u.Username, owner)
		}
		out := storage.Restored(h, u)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		if h != nil && usernameKey(h.Username) != usernameKey(u.Username) {
			if _, err := tx.Delete(usernameKey(h.Username)); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
				return 0, err
			}
		}
		if _, _, err := tx.Set(usernameKey(u.Username), u.ID, nil); err != nil {
			return 0, err
		}
		return out, put(tx, userKey(u.ID), u, time.Time{}, time.Time{})
	})
}

// RestorePersonalToken implements storage.Storage.
func (s *Store) RestorePersonalToken(ctx context.Context, t storage.PersonalToken, r storage.Restore) (storage.Outcome, error) {
	return s.restore(ctx, r.DryRun, func(tx *buntdb.Tx) (storage.Outcome, error) {
		if !exists(tx, userKey(t.UserID)) {
			return 0, storage.ErrNotFound
		}
		h, err := held[storage.PersonalToken](tx, patKey(t.ID))
		if err != nil {
			return 0, err
		}
		if h != nil {
			if h.UserID != t.UserID {
				return 0, fmt.Errorf("%w: personal token %s belongs to user %s", storage.ErrAlreadyExists, t.ID, h.UserID)
			}
			t = storage.MergePersonalToken(*h, t)
		}
		out := storage.Restored(h, t)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		if _, _, err := tx.Set(userPATKey(t.UserID, t.ID), "", nil); err != nil {
			return 0, err
		}
		return out, put(tx, patKey(t.ID), t, time.Time{}, time.Time{})
	})
}

// RestoreSigningKey implements storage.Storage.
func (s *Store) RestoreSigningKey(ctx context.Context, k storage.SigningKey, r storage.Restore) (storage.Outcome, error) {
	return s.restore(ctx, r.DryRun, func(tx *buntdb.Tx) (storage.Outcome, error) {
		h, err := held[storage.SigningKey](tx, signingKeyKey(k.ID))
		if err != nil {
			return 0, err
		}
		if h != nil {
			k = storage.MergeSigningKey(*h, k)
		}
		out := storage.Restored(h, k)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		return out, put(tx, signingKeyKey(k.ID), k, time.Time{}, time.Time{})
	})
}

// RestoreRefreshFamily implements storage.Storage.
func (s *Store) RestoreRefreshFamily(ctx context.Context, f storage.RefreshFamily, r storage.Restore) (storage.Outcome, error) {
	if !r.Now.Before(f.ExpiresAt) {
		return storage.Expired, nil
	}
	return s.restore(ctx, r.DryRun, func(tx *buntdb.Tx) (storage.Outcome, error) {
		h, err := held[family](tx, familyKey(f.ID))
		if err != nil {
			return 0, err
		}
		if h != nil && !r.Now.Before(h.ExpiresAt) {
			h = nil // expired, not yet collected
		}
		fam := family{ClientID: f.ClientID, Revoked: f.Revoked, ExpiresAt: f.ExpiresAt, Epoch: f.Epoch}
		if h != nil {
			if h.ClientID != f.ClientID {
				return 0, fmt.Errorf("%w: refresh family %s belongs to client %s", storage.ErrAlreadyExists, f.ID, h.ClientID)
			}
			m := storage.MergeRefreshFamily(storage.RefreshFamily{Revoked: h.Revoked, ExpiresAt: h.ExpiresAt}, f)
			fam = family{ClientID: h.ClientID, Subject: h.Subject, Revoked: m.Revoked, ExpiresAt: m.ExpiresAt, Epoch: h.Epoch}
		}
		out := storage.Restored(h, fam)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		return out, put(tx, familyKey(f.ID), fam, r.Now, fam.ExpiresAt)
	})
}

// RestoreRefreshToken implements storage.Storage.
func (s *Store) RestoreRefreshToken(ctx context.Context, t storage.RefreshToken, r storage.Restore) (storage.Outcome, error) {
	if !r.Now.Before(t.ExpiresAt) {
		return storage.Expired, nil
	}
	return s.restore(ctx, r.DryRun, func(tx *buntdb.Tx) (storage.Outcome, error) {
		fam, err := held[family](tx, familyKey(t.FamilyID))
		if err != nil {
			return 0, err
		}
		famChanged := false
		switch {
		case fam == nil || !r.Now.Before(fam.ExpiresAt):
			fam, famChanged = &family{ClientID: t.ClientID, Subject: t.Subject, ExpiresAt: t.FamilyExpiry(), Epoch: t.Epoch}, true
		case fam.ClientID != t.ClientID:
			return 0, fmt.Errorf("%w: refresh family %s belongs to client %s", storage.ErrAlreadyExists, t.FamilyID, fam.ClientID)
		case t.FamilyExpiry().After(fam.ExpiresAt):
			fam.ExpiresAt, famChanged = t.FamilyExpiry(), true
		}
		h, err := held[storage.RefreshToken](tx, refreshKey(t.FamilyID, t.Hash))
		if err != nil {
			return 0, err
		}
		if h != nil {
			if h.ClientID != t.ClientID {
				return 0, fmt.Errorf("%w: refresh token of family %s belongs to client %s", storage.ErrAlreadyExists, t.FamilyID, h.ClientID)
			}
			t = storage.MergeRefreshToken(*h, t)
		}
		out := storage.Restored(h, t)
		if out == storage.Unchanged && famChanged {
			out = storage.Updated
		}
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		if famChanged {
			if err := put(tx, familyKey(t.FamilyID), *fam, r.Now, fam.ExpiresAt); err != nil {
				return 0, err
			}
		}
		return out, put(tx, refreshKey(t.FamilyID, t.Hash), t, r.Now, t.ExpiresAt)
	})
}

// RestoreRevokedAccessToken implements storage.Storage.
func (s *Store) RestoreRevokedAccessToken(ctx context.Context, t storage.RevokedAccessToken, r storage.Restore) (storage.Outcome, error) {
	if !t.ExpiresAt.IsZero() && !r.Now.Before(t.ExpiresAt) {
		return storage.Expired, nil
	}
	return s.restore(ctx, r.DryRun, func(tx *buntdb.Tx) (storage.Outcome, error) {
		if exists(tx, revokedKey(t.ClientID, t.JTI)) {
			return storage.Unchanged, nil
		}
		if r.DryRun {
			return storage.Created, nil
		}
		return storage.Created, put(tx, revokedKey(t.ClientID, t.JTI), t, r.Now, t.ExpiresAt)
	})
}

// Bulk makes commits wait for the disk about once a second rather than each one, for an
// import: a store that loses its last second to a crash is restored by running the import
// again (it is idempotent), and a write each record would cost an fsync each. The function it
// returns goes back to waiting for the disk on every commit and waits for it once, reporting
// whether everything written reached it.
func (s *Store) Bulk() (func() error, error) {
	var cfg buntdb.Config
	if err := s.db.ReadConfig(&cfg); err != nil {
		return nil, err
	}
	cfg.SyncPolicy = buntdb.EverySecond
	if err := s.db.SetConfig(cfg); err != nil {
		return nil, err
	}
	return func() error {
		cfg.SyncPolicy = buntdb.Always
		if err := s.db.SetConfig(cfg); err != nil {
			return err
		}
		// A commit under Always syncs the file, and with it every commit before.
		return s.db.Update(func(tx *buntdb.Tx) error {
			if _, _, err := tx.Set("bulk:synced", "", nil); err != nil {
				return err
			}
			_, err := tx.Delete("bulk:synced")
			return err
		})
	}, nil
}
