package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// loginKeys name the failed-login counts of an attempt: digests only, so a 60 KB username costs
// no more than a short one.
func loginKeys(a storage.LoginAttempt) (pair, user string) {
	name := storage.FoldUsername(a.Username)
	user = "ts:{users}:lf:" + storage.KeyDigest(name)
	return user + ":" + storage.KeyDigest(name, a.Remote), user
}

// Login implements storage.Storage: the user and both counts in one script, so a successful
// login costs one round trip.
func (s *Store) Login(ctx context.Context, a storage.LoginAttempt) (storage.LoginState, error) {
	pair, user := loginKeys(a)
	res, err := login.Run(ctx, s.rdb, []string{usersByName, usersByID, pair, user},
		append([]any{ms(a.Now)}, usernameForms(a.Username)...)...).Slice()
	if err != nil {
		return storage.LoginState{}, fail(err)
	}
	var st storage.LoginState
	if v, ok := res[0].(string); ok && v != "" {
		u, err := decode[storage.User](v)
		if err != nil {
			return st, err
		}
		st.User = &u
	}
	st.Failed = res[1].(int64) > 0
	st.Wait = msDuration(res[2].(int64))
	return st, nil
}

// LoginFailed implements storage.Storage, not waiting for replicas: the wrong password is
// answered whether or not the count is stored, so a failover may forget the failures of its
// last moments (the backoff starts over for them).
func (s *Store) LoginFailed(ctx context.Context, a storage.LoginAttempt) error {
	pair, user := loginKeys(a)
	return fail(loginFailed.Run(ctx, s.rdb, []string{pair, user}, ms(a.Now), a.Limit, a.UserLimit,
		a.MaxDelay.Milliseconds(), a.Window.Milliseconds()).Err())
}

// LoginSucceeded implements storage.Storage, not waiting for replicas: failures a failover
// brings back only delay the next login.
func (s *Store) LoginSucceeded(ctx context.Context, a storage.LoginAttempt) error {
	pair, _ := loginKeys(a)
	err := s.rdb.Del(ctx, pair).Err()
	if errors.Is(err, goredis.Nil) {
		return nil
	}
	return fail(err)
}

func msDuration(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
