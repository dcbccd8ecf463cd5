package embedded

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

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
		return putClient(tx, nil, c)
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
		old := c
		old.FederatedIdentities = slices.Clone(c.FederatedIdentities)
		if err := fn(&c); err != nil {
			return err
		}
		c.ID = id
		return putClient(tx, &old, c)
	})
	return c, err
}

// DeleteClient implements storage.Storage.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		old, err := get[storage.Client](tx, clientKey(id))
		if err != nil {
			return err
		}
		if err := unindex(tx, old, nil); err != nil {
			return err
		}
		if err := indexClient(tx, &old, nil); err != nil {
			return err
		}
		if _, err := tx.Delete(clientKey(id)); err != nil {
			return err
		}
		return put(tx, goneKey(id), now.UTC(), time.Time{}, time.Time{})
	})
}

// CreateUser implements storage.Storage.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		if exists(tx, userKey(u.ID)) {
			return storage.ErrAlreadyExists
		}
		for _, k := range storage.UsernameKeys(u.Username) {
			if exists(tx, usernameIndex(k)) {
				return storage.ErrAlreadyExists
			}
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

// userByName finds a user under each form of username in turn (storage.UsernameKeys), so one
// stored before names were normalised is found too.
func userByName(tx *buntdb.Tx, username string) (storage.User, error) {
	for _, k := range storage.UsernameKeys(username) {
		id, err := tx.Get(usernameIndex(k))
		if errors.Is(err, buntdb.ErrNotFound) {
			continue
		} else if err != nil {
			return storage.User{}, err
		}
		return get[storage.User](tx, userKey(id))
	}
	return storage.User{}, storage.ErrNotFound
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
		// The user is indexed under one form, the legacy one if it was stored before names
		// were normalised; either way only an entry naming this user goes.
		for _, k := range storage.UsernameKeys(u.Username) {
			if owner, err := tx.Get(usernameIndex(k)); err == nil && owner == id {
				if _, err := tx.Delete(usernameIndex(k)); err != nil {
					return err
				}
			}
		}
		return deleteUserPATs(tx, id)
	})
}

// ReindexUsernames implements storage.Storage, in one transaction.
func (s *Store) ReindexUsernames(ctx context.Context) (out storage.Reindexed, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		out = storage.Reindexed{}
		var stale [][2]string // index key, user id
		err := tx.AscendKeys(usernameIndex("*"), func(k, id string) bool {
			stale = append(stale, [2]string{k, id})
			return true
		})
		if err != nil {
			return err
		}
		for _, e := range stale {
			u, err := get[storage.User](tx, userKey(e[1]))
			if errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			to := usernameKey(u.Username)
			if e[0] == to {
				continue
			}
			if holder, err := tx.Get(to); err == nil && holder != u.ID {
				out.Conflicts = append(out.Conflicts, [2]string{u.ID, holder})
				continue
			}
			if _, _, err := tx.Set(to, u.ID, nil); err != nil {
				return err
			}
			if _, err := tx.Delete(e[0]); err != nil {
				return err
			}
			out.Moved++
		}
		return nil
	})
	return out, err
}
