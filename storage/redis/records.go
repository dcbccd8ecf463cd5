package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// maxCASAttempts bounds optimistic updates of one record under contention.
const maxCASAttempts = 200

// CreateClient implements storage.Storage: one script that stores the client only if its id is
// free and the deletion time it carries is still the one on record for that id; otherwise it
// answers the recorded time, and the record is sent again with it. An unconfirmed create is
// left in place: the registry makes a create retried with the same request id find it.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	c.NotBefore = time.Time{}
	expected := ""
	for range maxCASAttempts {
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		cmd, err := s.run(ctx, createClient, []string{clientsKey, goneKey}, c.ID, b, expected)
		if cmd == nil {
			return err
		}
		res, _ := cmd.StringSlice()
		switch res[0] {
		case "ok":
			return err
		case "exists":
			return storage.ErrAlreadyExists
		}
		expected = res[1]
		n, _ := strconv.ParseInt(expected, 10, 64)
		c.NotBefore = time.UnixMilli(n).UTC()
	}
	return fmt.Errorf("%w: client %s deleted concurrently too often", storage.ErrUnavailable, c.ID)
}

// GetClient implements storage.Storage.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	v, err := s.rdb.HGet(ctx, clientsKey, id).Result()
	if err != nil {
		return storage.Client{}, fail(err)
	}
	return decode[storage.Client](v)
}

// ListClients implements storage.Storage.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	return listHash[storage.Client](ctx, s.rdb, clientsKey)
}

func listHash[T any](ctx context.Context, rdb goredis.UniversalClient, key string) ([]T, error) {
	vals, err := rdb.HVals(ctx, key).Result()
	if err != nil {
		return nil, fail(err)
	}
	out := make([]T, 0, len(vals))
	for _, v := range vals {
		item, err := decode[T](v)
		if err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	return out, nil
}

// compareAndSwap is an optimistic update of one field of a hash: read, apply fn in Go, write
// only if the field still holds what was read (swapField), else start over. fn may therefore
// run more than once, which the storage contract allows. An unconfirmed update is left in
// place: applying the same change again gives the same record.
func compareAndSwap[T any](ctx context.Context, s *Store, key, field string, fn func(*T) error) (T, error) {
	var zero T
	for range maxCASAttempts {
		old, err := s.rdb.HGet(ctx, key, field).Result()
		if err != nil {
			return zero, fail(err)
		}
		v, err := decode[T](old)
		if err != nil {
			return zero, err
		}
		if err := fn(&v); err != nil {
			return zero, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return zero, err
		}
		cmd, err := s.run(ctx, writeScript(key, swapField), []string{key}, field, old, b)
		if cmd == nil {
			return zero, err
		}
		if n, _ := cmd.Int(); n == 1 {
			return v, err
		}
	}
	return zero, fmt.Errorf("%w: %s %s changed concurrently too often", storage.ErrUnavailable, key, field)
}

// UpdateClient implements storage.Storage.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(*storage.Client) error) (storage.Client, error) {
	return compareAndSwap(ctx, s, clientsKey, id, func(c *storage.Client) error {
		if err := fn(c); err != nil {
			return err
		}
		c.ID = id
		return nil
	})
}

// DeleteClient implements storage.Storage: one script removes the record and notes the time.
// The client's pools and counts are keyed by its incarnation and expire by themselves. An
// unconfirmed deletion is left in place; retried, it finds the client gone.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time) error {
	cmd, err := s.run(ctx, deleteClient, []string{clientsKey, goneKey}, id, ms(now))
	if cmd == nil {
		return err
	}
	if n, _ := cmd.Int(); n == 0 {
		return storage.ErrNotFound
	}
	return err
}

// fedIndexKey is the set of the ids of the clients that registered the federated identity
// (iss, sub), sub exact or a pattern; the scripts build the same name (fedIndexLua). Issuers
// and subjects are printable, so the newline cannot be part of either.
func fedIndexKey(iss, sub string) string { return clientsKey + ":fed:" + iss + "\n" + sub }

// ClientsByFederatedIdentity implements storage.Storage: one SUNION over the index entries sub
// can be registered under (storage.SubjectLookups), all in the clients' slot.
func (s *Store) ClientsByFederatedIdentity(ctx context.Context, iss, sub string) ([]string, error) {
	lookups := storage.SubjectLookups(sub)
	keys := make([]string, len(lookups))
	for i, l := range lookups {
		keys[i] = fedIndexKey(iss, l)
	}
	ids, err := s.rdb.SUnion(ctx, keys...).Result()
	if err != nil {
		return nil, fail(err)
	}
	return ids, nil
}

// CreateUser implements storage.Storage: one script over both user hashes. An unconfirmed
// create is undone, so a retry does not find its username taken.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	name := storage.FoldUsername(u.Username)
	args := []any{u.ID, name, b}
	for _, k := range storage.UsernameKeys(u.Username) {
		if k != name {
			args = append(args, k)
		}
	}
	cmd, err := s.run(ctx, createUser, []string{usersByID, usersByName}, args...)
	if cmd == nil {
		return err
	}
	if n, _ := cmd.Int(); n == 0 {
		return storage.ErrAlreadyExists
	}
	if err != nil {
		return s.undo(ctx, err, func(ctx context.Context) error {
			return deleteUser.Run(ctx, s.rdb, []string{usersByID, usersByName, patsKey, patUsedKey, userPATsKey(u.ID)}, u.ID, b, name).Err()
		})
	}
	return nil
}

// GetUser implements storage.Storage.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	v, err := s.rdb.HGet(ctx, usersByID, id).Result()
	if err != nil {
		return storage.User{}, fail(err)
	}
	return decode[storage.User](v)
}

// GetUserByUsername implements storage.Storage.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	v, err := userByName.Run(ctx, s.rdb, []string{usersByName, usersByID}, usernameForms(username)...).Text()
	if err != nil {
		return storage.User{}, fail(err)
	}
	return decode[storage.User](v)
}

// ListUsers implements storage.Storage.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	return listHash[storage.User](ctx, s.rdb, usersByID)
}

// UpdateUser implements storage.Storage.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*storage.User) error) (storage.User, error) {
	return compareAndSwap(ctx, s, usersByID, id, func(u *storage.User) error {
		name := u.Username
		if err := fn(u); err != nil {
			return err
		}
		u.ID, u.Username = id, name
		return nil
	})
}

// DeleteUser implements storage.Storage: one script removes the record, its username and its
// personal tokens; its failed-login counts are left to lapse. An unconfirmed deletion is left
// in place; retried, it finds the user gone.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	for range maxCASAttempts {
		old, err := s.rdb.HGet(ctx, usersByID, id).Result()
		if err != nil {
			return fail(err)
		}
		u, err := decode[storage.User](old)
		if err != nil {
			return err
		}
		cmd, err := s.run(ctx, deleteUser, []string{usersByID, usersByName, patsKey, patUsedKey, userPATsKey(id)},
			append([]any{id, old}, usernameForms(u.Username)...)...)
		if cmd == nil {
			return err
		}
		if n, _ := cmd.Int(); n == 1 {
			return err
		}
	}
	return fmt.Errorf("%w: user %s changed concurrently too often", storage.ErrUnavailable, id)
}

// usernameForms are the forms of a username a script tries in order (storage.UsernameKeys).
func usernameForms(name string) []any {
	keys := storage.UsernameKeys(name)
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out
}

// ReindexUsernames implements storage.Storage: one walk of the name index, and one script per
// user to move; a name already in its normalised form costs nothing more.
func (s *Store) ReindexUsernames(ctx context.Context) (storage.Reindexed, error) {
	var stale [][2]string // form, user id
	err := s.hscan(ctx, usersByName, func(kv []string) error {
		for i := 0; i+1 < len(kv); i += 2 {
			// A form that normalising changes is a legacy one.
			if storage.FoldUsername(kv[i]) != kv[i] {
				stale = append(stale, [2]string{kv[i], kv[i+1]})
			}
		}
		return nil
	})
	var out storage.Reindexed
	if err != nil {
		return out, err
	}
	for _, e := range stale {
		u, err := s.GetUser(ctx, e[1])
		if errors.Is(err, storage.ErrNotFound) {
			continue
		} else if err != nil {
			return out, err
		}
		to := storage.FoldUsername(u.Username)
		if to == e[0] {
			continue
		}
		cmd, err := s.run(ctx, moveUsername, []string{usersByName}, e[0], to, u.ID)
		if cmd == nil {
			return out, err
		}
		res, _ := cmd.Slice()
		if len(res) == 2 {
			switch n, _ := res[0].(int64); n {
			case 1:
				out.Moved++
			case -1:
				holder, _ := res[1].(string)
				out.Conflicts = append(out.Conflicts, [2]string{u.ID, holder})
			}
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
