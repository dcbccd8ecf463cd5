package redis

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// Console sessions are one key each, in the users' slot so creating one checks its user in the
// same script, with a PX lifetime to the session's end: Redis drops abandoned sessions itself,
// and signing out on any replica deletes the one record every replica reads.
func sessionKey(idHash string) string { return "ts:{users}:session:" + idHash }

// createSession. KEYS: users by-id hash, the session key. ARGV: user id, json, ttl_ms, the
// credential version the sign-in checked.
var createSession = goredis.NewScript(`
local user = redis.call('HGET', KEYS[1], ARGV[1])
if not user then return 'nouser' end
if (tonumber(cjson.decode(user).epoch) or 0) ~= tonumber(ARGV[4]) then return 'stale' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'exists' end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 'ok'`)

// ttl is how long a record that ends at end lives on now's clock; never zero, which Redis
// refuses.
func ttl(now, end time.Time) time.Duration { return max(end.Sub(now), time.Millisecond) }

// CreateSession implements storage.Storage. An unconfirmed sign-in is undone; the user signs
// in again.
func (s *Store) CreateSession(ctx context.Context, sess storage.Session, now time.Time) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	key := sessionKey(sess.IDHash)
	return s.created(ctx, createSession, []string{usersByID, key}, []any{sess.UserID, b, ttl(now, sess.End()).Milliseconds(), sess.Epoch},
		func(ctx context.Context) error { return s.rdb.Del(ctx, key).Err() })
}

// GetSession implements storage.Storage.
func (s *Store) GetSession(ctx context.Context, idHash string, now time.Time) (storage.Session, error) {
	js, err := s.rdb.Get(ctx, sessionKey(idHash)).Result()
	if err != nil {
		return storage.Session{}, fail(err)
	}
	sess, err := decode[storage.Session](js)
	if err != nil {
		return storage.Session{}, err
	}
	if !sess.Live(now) {
		return storage.Session{}, storage.ErrNotFound
	}
	return sess, nil
}

// TouchSession implements storage.Storage: read, then SET XX, so a session deleted in between
// (signed out on another replica) is not brought back. Two touches racing both write an idle
// expiry of about now + the idle timeout, so either may win. It does not wait for replicas: a
// touch lost in a failover only ends the session sooner.
func (s *Store) TouchSession(ctx context.Context, idHash string, idleUntil, now time.Time) error {
	sess, err := s.GetSession(ctx, idHash, now)
	if err != nil {
		return err
	}
	if idleUntil.Before(sess.ExpiresAt) {
		sess.IdleUntil = idleUntil
	} else {
		sess.IdleUntil = sess.ExpiresAt
	}
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	err = s.rdb.SetArgs(ctx, sessionKey(idHash), b, goredis.SetArgs{Mode: "XX", TTL: ttl(now, sess.End())}).Err()
	if errors.Is(err, goredis.Nil) {
		return storage.ErrNotFound
	}
	return fail(err)
}

// DeleteSession implements storage.Storage. An unconfirmed sign-out is left in place;
// retried, it finds the session gone.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	key := sessionKey(idHash)
	var del *goredis.IntCmd
	err := s.exec(ctx, nil, durable(key, func(p goredis.Pipeliner) { del = p.Del(ctx, key) }))
	if err != nil && !errors.Is(err, storage.ErrUnconfirmed) {
		return err
	}
	n, derr := del.Result()
	if derr != nil {
		return fail(derr)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return err
}
