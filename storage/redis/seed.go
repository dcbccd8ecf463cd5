package redis

import (
	"context"
	"encoding/json"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

var _ storage.Seeder = (*Store)(nil)

// SeedClients implements storage.Seeder: CreateClient's script, a batch of calls per
// pipeline, so a million clients cost a few hundred round trips instead of a million.
func (s *Store) SeedClients(ctx context.Context, n int, client func(i int) storage.Client) error {
	return s.seed(ctx, n, createClient, func(p goredis.Pipeliner, i int) (*goredis.Cmd, error) {
		c := client(i)
		c.NotBefore = time.Time{}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		return createClient.EvalSha(ctx, p, []string{clientsKey, goneKey}, c.ID, b, ""), nil
	}, func(cmd *goredis.Cmd) bool {
		res, _ := cmd.StringSlice()
		return len(res) > 0 && res[0] == "ok"
	})
}

// SeedRefreshTokens implements storage.Seeder with CreateRefreshToken's script.
func (s *Store) SeedRefreshTokens(ctx context.Context, n int, token func(i int) storage.RefreshToken) error {
	return s.seed(ctx, n, createRefresh, func(p goredis.Pipeliner, i int) (*goredis.Cmd, error) {
		t := token(i)
		args, err := createArgs(t)
		if err != nil {
			return nil, err
		}
		return createRefresh.EvalSha(ctx, p, []string{familyKey(t.FamilyID)}, args...), nil
	}, func(cmd *goredis.Cmd) bool {
		n, _ := cmd.Int()
		return n == 1
	})
}

// seed sends the calls queue makes in pipelines of storage.SeedBatch; a call that stored
// nothing (ok false) is ErrAlreadyExists.
func (s *Store) seed(ctx context.Context, n int, sc *goredis.Script, queue func(p goredis.Pipeliner, i int) (*goredis.Cmd, error), ok func(*goredis.Cmd) bool) error {
	for lo := 0; lo < n; lo += storage.SeedBatch {
		var cmds []*goredis.Cmd
		var qerr error
		_, err := s.pipelined(ctx, []*goredis.Script{sc}, func(p goredis.Pipeliner) {
			cmds = cmds[:0]
			for i := lo; i < min(lo+storage.SeedBatch, n) && qerr == nil; i++ {
				var cmd *goredis.Cmd
				if cmd, qerr = queue(p, i); cmd != nil {
					cmds = append(cmds, cmd)
				}
			}
		})
		if qerr != nil {
			return qerr
		}
		if err != nil {
			return err
		}
		for _, cmd := range cmds {
			if err := cmd.Err(); err != nil {
				return fail(err)
			}
			if !ok(cmd) {
				return storage.ErrAlreadyExists
			}
		}
	}
	return nil
}
