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
		if _, err := tx.Delete(clientKey(id)); err != nil {
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
