package embedded

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// Personal tokens: the record under pat:<id>, and an index entry upat:<user>:<id> (user ids are
// generated, so safe in a key pattern). Expired tokens stay listed until they are deleted, as on
// Redis.
func patKey(id string) string           { return "pat:" + id }
func userPATKey(user, id string) string { return "upat:" + user + ":" + id }

// CreatePersonalToken implements storage.Storage.
func (s *Store) CreatePersonalToken(ctx context.Context, t storage.PersonalToken) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		if !exists(tx, userKey(t.UserID)) {
			return storage.ErrNotFound
		}
		if exists(tx, patKey(t.ID)) {
			return storage.ErrAlreadyExists
		}
		held, err := userPATIDs(tx, t.UserID)
		if err != nil {
			return err
		}
		if len(held) >= storage.MaxPersonalTokens {
			return storage.ErrLimitReached
		}
		if _, _, err := tx.Set(userPATKey(t.UserID, t.ID), "", nil); err != nil {
			return err
		}
		return put(tx, patKey(t.ID), t, time.Time{}, time.Time{})
	})
}

// GetPersonalToken implements storage.Storage.
func (s *Store) GetPersonalToken(ctx context.Context, id string) (storage.PersonalToken, error) {
	return getOne[storage.PersonalToken](ctx, s, patKey(id))
}

// userPATIDs lists the ids of a user's personal tokens.
func userPATIDs(tx *buntdb.Tx, userID string) ([]string, error) {
	var ids []string
	prefix := userPATKey(userID, "")
	err := tx.AscendKeys(prefix+"*", func(k, _ string) bool {
		ids = append(ids, strings.TrimPrefix(k, prefix))
		return true
	})
	return ids, err
}

// ListPersonalTokens implements storage.Storage.
func (s *Store) ListPersonalTokens(ctx context.Context, userID string) (out []storage.PersonalToken, err error) {
	err = s.view(ctx, func(tx *buntdb.Tx) error {
		ids, err := userPATIDs(tx, userID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			t, err := get[storage.PersonalToken](tx, patKey(id))
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// DeletePersonalToken implements storage.Storage.
func (s *Store) DeletePersonalToken(ctx context.Context, userID, id string) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		t, err := get[storage.PersonalToken](tx, patKey(id))
		if err != nil {
			return err
		}
		if t.UserID != userID {
			return storage.ErrNotFound
		}
		return deletePAT(tx, t.UserID, id)
	})
}

func deletePAT(tx *buntdb.Tx, userID, id string) error {
	if _, err := tx.Delete(userPATKey(userID, id)); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
		return err
	}
	_, err := tx.Delete(patKey(id))
	if errors.Is(err, buntdb.ErrNotFound) {
		return nil
	}
	return err
}

// deleteUserPATs removes every personal token of a user (inside DeleteUser's transaction).
func deleteUserPATs(tx *buntdb.Tx, userID string) error {
	ids, err := userPATIDs(tx, userID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := deletePAT(tx, userID, id); err != nil {
			return err
		}
	}
	return nil
}

// TouchPersonalTokens implements storage.Storage.
func (s *Store) TouchPersonalTokens(ctx context.Context, used map[string]time.Time) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		for id, at := range used {
			t, err := get[storage.PersonalToken](tx, patKey(id))
			if errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if at.After(t.LastUsedAt) {
				t.LastUsedAt = at.UTC()
				if err := put(tx, patKey(id), t, time.Time{}, time.Time{}); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
