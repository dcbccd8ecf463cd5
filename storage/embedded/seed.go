package embedded

import (
	"context"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

var _ storage.Seeder = (*Store)(nil)

// SeedClients implements storage.Seeder: one transaction, and so one fsync, per batch.
func (s *Store) SeedClients(ctx context.Context, n int, client func(i int) storage.Client) error {
	return s.seed(ctx, n, func(tx *buntdb.Tx, i int) error {
		c := client(i)
		c.NotBefore = time.Time{}
		if exists(tx, goneKey(c.ID)) || exists(tx, clientKey(c.ID)) {
			return storage.ErrAlreadyExists
		}
		return putClient(tx, nil, c)
	})
}

// SeedRefreshTokens implements storage.Seeder with CreateRefreshToken's own writes.
func (s *Store) SeedRefreshTokens(ctx context.Context, n int, token func(i int) storage.RefreshToken) error {
	return s.seed(ctx, n, func(tx *buntdb.Tx, i int) error { return createFamily(tx, token(i)) })
}

func (s *Store) seed(ctx context.Context, n int, write func(tx *buntdb.Tx, i int) error) error {
	for lo := 0; lo < n; lo += storage.SeedBatch {
		err := s.update(ctx, func(tx *buntdb.Tx) error {
			for i := lo; i < min(lo+storage.SeedBatch, n); i++ {
				if err := write(tx, i); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
