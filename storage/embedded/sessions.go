package embedded

import (
	"context"
	"errors"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// Console sessions live under session:<id hash> with a TTL to their end, so buntdb collects
// abandoned ones; whether one is live is decided on the caller's clock.
func sessionKey(idHash string) string { return "session:" + idHash }

// CreateSession implements storage.Storage.
func (s *Store) CreateSession(ctx context.Context, sess storage.Session, now time.Time) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		if err := sameEpoch(tx, sess.UserID, sess.Epoch); err != nil {
			return err
		}
		if exists(tx, sessionKey(sess.IDHash)) {
			return storage.ErrAlreadyExists
		}
		return put(tx, sessionKey(sess.IDHash), sess, now, sess.End())
	})
}

// GetSession implements storage.Storage.
func (s *Store) GetSession(ctx context.Context, idHash string, now time.Time) (storage.Session, error) {
	sess, err := getOne[storage.Session](ctx, s, sessionKey(idHash))
	if err == nil && !sess.Live(now) {
		return storage.Session{}, storage.ErrNotFound
	}
	return sess, err
}

// TouchSession implements storage.Storage.
func (s *Store) TouchSession(ctx context.Context, idHash string, idleUntil, now time.Time) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		sess, err := get[storage.Session](tx, sessionKey(idHash))
		if err != nil {
			return err
		}
		if !sess.Live(now) {
			return storage.ErrNotFound
		}
		sess.IdleUntil = minTime(idleUntil, sess.ExpiresAt)
		return put(tx, sessionKey(idHash), sess, now, sess.End())
	})
}

// DeleteSession implements storage.Storage.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		_, err := tx.Delete(sessionKey(idHash))
		if errors.Is(err, buntdb.ErrNotFound) {
			return storage.ErrNotFound
		}
		return err
	})
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
