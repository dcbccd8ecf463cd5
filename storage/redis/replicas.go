package redis

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// Heartbeat implements storage.Storage.
func (s *Store) Heartbeat(ctx context.Context, r storage.Replica, now time.Time) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return fail(heartbeat.Run(ctx, s.rdb, []string{replicasLive, replicasInfo}, r.ID, ms(r.ExpiresAt), b, ms(now)).Err())
}

// Replicas implements storage.Storage.
func (s *Store) Replicas(ctx context.Context, now time.Time) ([]storage.Replica, error) {
	vals, err := replicas.Run(ctx, s.rdb, []string{replicasLive, replicasInfo}, ms(now)).Slice()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fail(err)
	}
	out := make([]storage.Replica, 0, len(vals))
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		r, err := decode[storage.Replica](str)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
