package redis

import (
	"context"
	"encoding/json"

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

// ShardOf names the Cluster master that holds the deny-list mark of a client's access token
// (tests only).
func ShardOf(s storage.Storage, client, jti string) (string, error) {
	n, err := s.(*Store).rdb.(*goredis.ClusterClient).MasterForKey(context.Background(), revokedJTIKey(client, jti))
	if err != nil {
		return "", err
	}
	return n.Options().Addr, nil
}

// PutLegacyUser stores u as a store written before usernames were normalised did: indexed
// under its case-folded name alone (tests only).
func PutLegacyUser(s storage.Storage, u storage.User) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	ctx := context.Background()
	rdb := s.(*Store).rdb
	if err := rdb.HSet(ctx, usersByID, u.ID, b).Err(); err != nil {
		return err
	}
	return rdb.HSet(ctx, usersByName, storage.LegacyFoldUsername(u.Username), u.ID).Err()
}
