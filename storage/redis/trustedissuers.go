package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// Trusted issuers: records by id in one hash and an index from issuer URL to id in another,
// both in one slot so creating and deleting keep them in step in one script.
const (
	trustedIssuersKey   = "ts:{issuers}"
	trustedIssuerURLKey = "ts:{issuers}:url"
)

// createTrustedIssuer. KEYS: records hash, url index. ARGV: id, issuer, json.
var createTrustedIssuer = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1`)

// trustedIssuerByURL. KEYS: records hash, url index. ARGV: issuer. Answers the json or false.
var trustedIssuerByURL = goredis.NewScript(`
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return false end
return redis.call('HGET', KEYS[1], id)`)

// deleteTrustedIssuer. KEYS: records hash, url index. ARGV: id, issuer.
var deleteTrustedIssuer = goredis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1`)

// CreateTrustedIssuer implements storage.Storage. An unconfirmed create is undone: the admin
// who asked got an error and will ask again.
func (s *Store) CreateTrustedIssuer(ctx context.Context, ti storage.TrustedIssuer) error {
	b, err := json.Marshal(ti)
	if err != nil {
		return err
	}
	keys := []string{trustedIssuersKey, trustedIssuerURLKey}
	cmd, err := s.run(ctx, createTrustedIssuer, keys, ti.ID, ti.Issuer, b)
	if cmd == nil {
		return err
	}
	if n, _ := cmd.Int(); n == 0 {
		return storage.ErrAlreadyExists
	}
	if err != nil {
		return s.undo(ctx, err, func(ctx context.Context) error {
			return deleteTrustedIssuer.Run(ctx, s.rdb, keys, ti.ID, ti.Issuer).Err()
		})
	}
	return nil
}

// GetTrustedIssuer implements storage.Storage.
func (s *Store) GetTrustedIssuer(ctx context.Context, id string) (storage.TrustedIssuer, error) {
	v, err := s.rdb.HGet(ctx, trustedIssuersKey, id).Result()
	if err != nil {
		return storage.TrustedIssuer{}, fail(err)
	}
	return decode[storage.TrustedIssuer](v)
}

// TrustedIssuerByIssuer implements storage.Storage: one round trip, index and record read
// together.
func (s *Store) TrustedIssuerByIssuer(ctx context.Context, iss string) (storage.TrustedIssuer, error) {
	v, err := trustedIssuerByURL.Run(ctx, s.rdb, []string{trustedIssuersKey, trustedIssuerURLKey}, iss).Text()
	if err != nil {
		if errors.Is(err, goredis.Nil) {
			return storage.TrustedIssuer{}, storage.ErrNotFound
		}
		return storage.TrustedIssuer{}, fail(err)
	}
	return decode[storage.TrustedIssuer](v)
}

// ListTrustedIssuers implements storage.Storage.
func (s *Store) ListTrustedIssuers(ctx context.Context) ([]storage.TrustedIssuer, error) {
	return listHash[storage.TrustedIssuer](ctx, s.rdb, trustedIssuersKey)
}

// DeleteTrustedIssuer implements storage.Storage. An unconfirmed deletion is left in place;
// retried, it finds the issuer gone.
func (s *Store) DeleteTrustedIssuer(ctx context.Context, id string) error {
	ti, err := s.GetTrustedIssuer(ctx, id)
	if err != nil {
		return err
	}
	cmd, err := s.run(ctx, deleteTrustedIssuer, []string{trustedIssuersKey, trustedIssuerURLKey}, id, ti.Issuer)
	if cmd == nil {
		return err
	}
	if n, _ := cmd.Int(); n == 0 {
		return storage.ErrNotFound
	}
	return err
}

// RestoreTrustedIssuer implements storage.Storage. The record and its issuer index are written
// by the script users are restored with: the same shape, a record by id and a unique name.
func (s *Store) RestoreTrustedIssuer(ctx context.Context, ti storage.TrustedIssuer, r storage.Restore) (storage.Outcome, error) {
	taken := func(owner string) error {
		return fmt.Errorf("%w: issuer %q is trusted issuer %s", storage.ErrAlreadyExists, ti.Issuer, owner)
	}
	keys := []string{trustedIssuersKey, trustedIssuerURLKey}
	for range maxCASAttempts {
		var rec, owner *goredis.StringCmd
		if _, err := s.pipelined(ctx, nil, func(p goredis.Pipeliner) {
			rec, owner = p.HGet(ctx, trustedIssuersKey, ti.ID), p.HGet(ctx, trustedIssuerURLKey, ti.Issuer)
		}); err != nil {
			return 0, err
		}
		old, err := rec.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return 0, fail(err)
		}
		var h *storage.TrustedIssuer
		flag, oldIssuer := "0", ""
		if err == nil {
			v, err := decode[storage.TrustedIssuer](old)
			if err != nil {
				return 0, fmt.Errorf("redis store: trusted issuer %s: %w", ti.ID, err)
			}
			h, flag, oldIssuer = &v, "1", v.Issuer
		}
		if o, err := owner.Result(); err == nil && o != ti.ID {
			return 0, taken(o)
		}
		out := storage.Restored(h, ti)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		b, err := json.Marshal(ti)
		if err != nil {
			return 0, err
		}
		cmd, err := s.run(ctx, restoreUser, keys, ti.ID, old, flag, b, ti.Issuer, oldIssuer)
		if cmd == nil {
			return 0, err
		}
		res, _ := cmd.StringSlice()
		switch res[0] {
		case "ok":
			return out, err
		case "taken":
			return 0, taken(res[1])
		}
	}
	return 0, fmt.Errorf("%w: trusted issuer %s changed concurrently too often", storage.ErrUnavailable, ti.ID)
}
