package redis

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// Personal tokens share the users' slot, so creating one checks its user and deleting a user
// deletes its tokens in the same script. Last-used times live in a hash of their own, so a
// batch of them is written without rewriting records.
const (
	patsKey    = "ts:{users}:pat"
	patUsedKey = "ts:{users}:patused"
)

func userPATsKey(user string) string { return "ts:{users}:pats:" + user }

// CreatePersonalToken implements storage.Storage. An unconfirmed create is undone: its secret
// was never shown, and a retry makes a token of its own.
func (s *Store) CreatePersonalToken(ctx context.Context, t storage.PersonalToken) error {
	t.LastUsedAt = time.Time{}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	keys := []string{usersByID, patsKey, userPATsKey(t.UserID)}
	return s.created(ctx, createPAT, keys, []any{t.UserID, t.ID, b, storage.MaxPersonalTokens}, func(ctx context.Context) error {
		return deletePAT.Run(ctx, s.rdb, []string{userPATsKey(t.UserID), patsKey, patUsedKey}, t.ID).Err()
	})
}

// created runs a script that creates a record of a user (a personal token, a console session)
// and maps its answer: "nouser" when the user is gone, "exists" when the record is, "stale"
// when the user's credential version is not the one the record was made under. A create
// too few replicas confirmed is taken back with remove.
func (s *Store) created(ctx context.Context, sc *goredis.Script, keys []string, args []any, remove func(context.Context) error) error {
	cmd, err := s.run(ctx, sc, keys, args...)
	if cmd == nil {
		return err
	}
	switch res, _ := cmd.Text(); res {
	case "nouser":
		return storage.ErrNotFound
	case "exists":
		return storage.ErrAlreadyExists
	case "stale":
		return storage.ErrCredentialsChanged
	case "full":
		return storage.ErrLimitReached
	}
	if err != nil {
		return s.undo(ctx, err, remove)
	}
	return nil
}

func decodePAT(v []any) (storage.PersonalToken, error) {
	js, ok := v[0].(string)
	if !ok || js == "" {
		return storage.PersonalToken{}, storage.ErrNotFound
	}
	t, err := decode[storage.PersonalToken](js)
	if err != nil {
		return t, err
	}
	if used, ok := v[1].(string); ok {
		if n, err := strconv.ParseInt(used, 10, 64); err == nil {
			t.LastUsedAt = time.UnixMilli(n).UTC()
		}
	}
	return t, nil
}

// GetPersonalToken implements storage.Storage.
func (s *Store) GetPersonalToken(ctx context.Context, id string) (storage.PersonalToken, error) {
	var rec, used *goredis.StringCmd
	if _, err := s.pipelined(ctx, nil, func(p goredis.Pipeliner) {
		rec, used = p.HGet(ctx, patsKey, id), p.HGet(ctx, patUsedKey, id)
	}); err != nil {
		return storage.PersonalToken{}, err
	}
	js, err := rec.Result()
	if err != nil {
		return storage.PersonalToken{}, fail(err)
	}
	u, _ := used.Result()
	return decodePAT([]any{js, u})
}

// ListPersonalTokens implements storage.Storage.
func (s *Store) ListPersonalTokens(ctx context.Context, userID string) ([]storage.PersonalToken, error) {
	rows, err := listPATs.Run(ctx, s.rdb, []string{userPATsKey(userID), patsKey, patUsedKey}).Slice()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fail(err)
	}
	out := make([]storage.PersonalToken, 0, len(rows))
	for _, r := range rows {
		pair, _ := r.([]any)
		if len(pair) < 2 {
			continue
		}
		t, err := decodePAT(pair)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// DeletePersonalToken implements storage.Storage. An unconfirmed deletion is left in place;
// retried, it finds the token gone.
func (s *Store) DeletePersonalToken(ctx context.Context, userID, id string) error {
	cmd, err := s.run(ctx, deletePAT, []string{userPATsKey(userID), patsKey, patUsedKey}, id)
	if cmd == nil {
		return err
	}
	if n, _ := cmd.Int(); n == 0 {
		return storage.ErrNotFound
	}
	return err
}

// TouchPersonalTokens implements storage.Storage: one script for the whole batch, not waiting
// for replicas (a last-used time lost in a failover only shows an earlier use).
func (s *Store) TouchPersonalTokens(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(used))
	for id, at := range used {
		args = append(args, id, ms(at))
	}
	return fail(touchPATs.Run(ctx, s.rdb, []string{patsKey, patUsedKey}, args...).Err())
}
