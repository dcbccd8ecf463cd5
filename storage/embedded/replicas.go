package embedded

import (
	"context"
	"errors"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// Heartbeat implements storage.Storage.
func (s *Store) Heartbeat(ctx context.Context, r storage.Replica, now time.Time) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		// A deregistration deletes: buntdb's file would keep the expired set but, on reopening,
		// skip it and bring back the heartbeat before it, so a cleanly stopped replica would
		// count again after a restart.
		if !r.ExpiresAt.After(now) {
			if _, err := tx.Delete("replica:" + r.ID); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
				return err
			}
			return nil
		}
		return put(tx, "replica:"+r.ID, r, now, r.ExpiresAt)
	})
}

// Replicas implements storage.Storage.
func (s *Store) Replicas(ctx context.Context, now time.Time) ([]storage.Replica, error) {
	all, err := list[storage.Replica](ctx, s, "replica:")
	out := all[:0]
	for _, r := range all {
		if r.ExpiresAt.After(now) {
			out = append(out, r)
		}
	}
	return out, err
}
