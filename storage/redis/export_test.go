package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// FlushAll empties every node (tests only).
func FlushAll(s storage.Storage) error {
	ctx := context.Background()
	switch c := s.(*Store).rdb.(type) {
	case *goredis.ClusterClient:
		return c.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return n.FlushAll(ctx).Err() })
	default:
		return c.FlushAll(ctx).Err()
	}
}
