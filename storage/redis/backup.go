package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// Backup and restore. The Each methods walk with SCAN and HSCAN, a batch at a time, so an
// export reads a live Redis without blocking it (KEYS or HGETALL of a large hash would) and
// never holds more than a batch; replicas keep serving and writing meanwhile, so a batch's
// keys may be gone by the time they are read (they are skipped) and SCAN may name a key
// twice. The Restore methods are one script each (two steps for a revoked family, like
// RevokeFamily), or a compare-and-swap of one hash field, so a record is never half written.
// Their scripts are not loaded when the store opens: a server never runs them, and they are
// loaded on their first use. Writes wait for min_replicas like every other (confirm.go); one
// that too few replicas confirmed is left in place and reported, and running the import again
// repeats it.

// scanCount is the COUNT hint of every SCAN and HSCAN: how many keys one call looks at.
const scanCount = 500

// hscan calls fn with each batch of (field, value) pairs of the hash at key.
func (s *Store) hscan(ctx context.Context, key string, fn func(kv []string) error) error {
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, key, cursor, "", scanCount).Result()
		if err != nil {
			return fail(err)
		}
		if len(kv) > 0 {
			if err := fn(kv); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// scan calls fn with each batch of keys matching match, on every master of a Cluster. The
// masters are walked at once; fn runs for one batch at a time.
func (s *Store) scan(ctx context.Context, match string, fn func(keys []string) error) error {
	var mu sync.Mutex
	walk := func(ctx context.Context, c *goredis.Client) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, match, scanCount).Result()
			if err != nil {
				return fail(err)
			}
			if len(keys) > 0 {
				mu.Lock()
				err := fn(keys)
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	switch c := s.rdb.(type) {
	case *goredis.ClusterClient:
		return c.ForEachMaster(ctx, walk)
	case *goredis.Client:
		return walk(ctx, c)
	default:
		return fmt.Errorf("redis store: cannot walk the keys of a %T", c)
	}
}

// EachClient implements storage.Storage.
func (s *Store) EachClient(ctx context.Context, fn func(storage.Client) error) error {
	return s.hscan(ctx, clientsKey, func(kv []string) error {
		for i := 0; i+1 < len(kv); i += 2 {
			c, err := decode[storage.Client](kv[i+1])
			if err != nil {
				return fmt.Errorf("redis store: client %s: %w", kv[i], err)
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		return nil
	})
}

// EachDeletedClient implements storage.Storage.
func (s *Store) EachDeletedClient(ctx context.Context, fn func(storage.DeletedClient) error) error {
	return s.hscan(ctx, goneKey, func(kv []string) error {
		for i := 0; i+1 < len(kv); i += 2 {
			at, err := strconv.ParseInt(kv[i+1], 10, 64)
			if err != nil {
				return fmt.Errorf("redis store: deleted client %s: %w", kv[i], err)
			}
			if err := fn(storage.DeletedClient{ID: kv[i], DeletedAt: time.UnixMilli(at).UTC()}); err != nil {
				return err
			}
		}
		return nil
	})
}

// EachUser implements storage.Storage: a batch of users, then their personal tokens in one
// pipeline.
func (s *Store) EachUser(ctx context.Context, fn func(storage.User, []storage.PersonalToken) error) error {
	return s.hscan(ctx, usersByID, func(kv []string) error {
		users := make([]storage.User, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			u, err := decode[storage.User](kv[i+1])
			if err != nil {
				return fmt.Errorf("redis store: user %s: %w", kv[i], err)
			}
			users = append(users, u)
		}
		cmds := make([]*goredis.Cmd, len(users))
		if _, err := s.pipelined(ctx, []*goredis.Script{listPATs}, func(p goredis.Pipeliner) {
			for i, u := range users {
				cmds[i] = listPATs.EvalSha(ctx, p, []string{userPATsKey(u.ID), patsKey, patUsedKey})
			}
		}); err != nil {
			return err
		}
		for i, u := range users {
			rows, err := cmds[i].Slice()
			if err != nil && !errors.Is(err, goredis.Nil) {
				return fail(err)
			}
			var pats []storage.PersonalToken
			for _, r := range rows {
				pair, _ := r.([]any)
				if len(pair) < 2 {
					continue
				}
				t, err := decodePAT(pair)
				if errors.Is(err, storage.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				pats = append(pats, t)
			}
			if err := fn(u, pats); err != nil {
				return err
			}
		}
		return nil
	})
}

// EachRefreshFamily implements storage.Storage.
func (s *Store) EachRefreshFamily(ctx context.Context, now time.Time, fn func(storage.RefreshFamily) error) error {
	return s.scan(ctx, "ts:{f:*}:fam", func(keys []string) error {
		cmds := make([]*goredis.SliceCmd, len(keys))
		if _, err := s.pipelined(ctx, nil, func(p goredis.Pipeliner) {
			for i, k := range keys {
				cmds[i] = p.HMGet(ctx, k, "client", "exp", "revoked", "epoch")
			}
		}); err != nil {
			return err
		}
		for i, k := range keys {
			v, err := cmds[i].Result()
			if err != nil {
				return fail(err)
			}
			client, _ := v[0].(string)
			exp, _ := v[1].(string)
			until, err := strconv.ParseInt(exp, 10, 64)
			if err != nil || until <= ms(now) {
				continue // gone meanwhile, or expired
			}
			id := strings.TrimSuffix(strings.TrimPrefix(k, "ts:{f:"), "}:fam")
			if familyKey(id) != k {
				continue
			}
			ep, _ := v[3].(string)
			epoch, _ := strconv.ParseUint(ep, 10, 64)
			f := storage.RefreshFamily{ID: id, ClientID: client, Revoked: v[2] == "1", ExpiresAt: time.UnixMilli(until).UTC(), Epoch: epoch}
			if err := fn(f); err != nil {
				return err
			}
		}
		return nil
	})
}

// EachRefreshToken implements storage.Storage: the families' hashes (their current tokens)
// and the tokens' own keys (used ones, and those of the earlier layout), in one walk of the
// families' slots.
func (s *Store) EachRefreshToken(ctx context.Context, now time.Time, fn func(storage.RefreshToken) error) error {
	return s.scan(ctx, "ts:{f:*", func(keys []string) error {
		cmds := make([]goredis.Cmder, len(keys))
		if _, err := s.pipelined(ctx, nil, func(p goredis.Pipeliner) {
			for i, k := range keys {
				if _, _, ok := usedKeyParts(k); ok {
					cmds[i] = p.Get(ctx, k)
				} else {
					cmds[i] = p.HGetAll(ctx, k)
				}
			}
		}); err != nil {
			return err
		}
		for i, k := range keys {
			var t storage.RefreshToken
			var err error
			switch c := cmds[i].(type) {
			case *goredis.StringCmd:
				v, rerr := c.Result()
				if errors.Is(rerr, goredis.Nil) {
					continue // gone meanwhile
				} else if rerr != nil {
					return fail(rerr)
				}
				fam, hash, _ := usedKeyParts(k)
				t, err = decodeUsed(v, fam, hash)
			case *goredis.MapStringStringCmd:
				m, rerr := c.Result()
				if rerr != nil {
					return fail(rerr)
				}
				if fam, ok := strings.CutSuffix(strings.TrimPrefix(k, "ts:{f:"), "}:fam"); ok && familyKey(fam) == k {
					t, err = decodeCurrent(m, fam)
				} else if fam, hash, ok := refreshKeyParts(k); ok && refreshKey(fam, hash) == k {
					t, err = decodeRefresh(m, fam, hash)
				} else {
					continue
				}
			}
			if errors.Is(err, storage.ErrNotFound) {
				continue // gone meanwhile, or a family without a current token
			} else if err != nil {
				return fmt.Errorf("redis store: %s: %w", k, err)
			}
			if !now.Before(t.ExpiresAt) {
				continue
			}
			if err := fn(t); err != nil {
				return err
			}
		}
		return nil
	})
}

// EachRevokedAccessToken implements storage.Storage. The client and the jti are read from the
// key (jtis are ours and hold no "}:rj:"); the end from the key's time to live.
func (s *Store) EachRevokedAccessToken(ctx context.Context, now time.Time, fn func(storage.RevokedAccessToken) error) error {
	return s.scan(ctx, "ts:{c:*}:rj:*", func(keys []string) error {
		cmds := make([]*goredis.DurationCmd, len(keys))
		if _, err := s.pipelined(ctx, nil, func(p goredis.Pipeliner) {
			for i, k := range keys {
				cmds[i] = p.PTTL(ctx, k)
			}
		}); err != nil {
			return err
		}
		for i, k := range keys {
			ttl, err := cmds[i].Result()
			if err != nil {
				return fail(err)
			}
			cut := strings.LastIndex(k, "}:rj:")
			client, jti := strings.TrimPrefix(k[:cut], "ts:{c:"), k[cut+len("}:rj:"):]
			if ttl == -2 || revokedJTIKey(client, jti) != k {
				continue // gone meanwhile, or another key the pattern matched
			}
			r := storage.RevokedAccessToken{ClientID: client, JTI: jti}
			if ttl > 0 {
				r.ExpiresAt = now.Add(ttl).UTC()
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// Restoring one field of a hash is a compare-and-swap: read the field, merge and compare in
// Go, write only if the field still holds what was read (or is still absent), else start over.

// putField. KEYS: hash, and a version to increment on a write (the signing keys'), if any.
// ARGV: field, what it held, 1 if it held anything, the new value.
var putField = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] == '1' then
  if cur ~= ARGV[2] then return 0 end
elseif cur then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
if KEYS[2] then redis.call('INCR', KEYS[2]) end
return 1`)

// putClient is putField for the clients hash, which also moves the client in the owner and
// federated identity indexes. KEYS: clients hash. ARGV as putField's.
var putClient = goredis.NewScript(clientIndexLua + `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] == '1' then
  if cur ~= ARGV[2] then return 0 end
elseif cur then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
indexclient(KEYS[1], ARGV[1], cur, ARGV[4])
return 1`)

// writeScript is the script that writes a field of hash: the clients hash has its own, which
// keep the owner and federated identity indexes.
func writeScript(hash string, generic *goredis.Script) *goredis.Script {
	if hash != clientsKey {
		return generic
	}
	if generic == swapField {
		return swapClient
	}
	return putClient
}

// fieldCodec is how a record is kept in a hash field.
type fieldCodec[T any] struct {
	decode func(string) (T, error)
	encode func(T) (string, error)
}

func jsonCodec[T any]() fieldCodec[T] {
	return fieldCodec[T]{decode: decode[T], encode: func(v T) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}}
}

// restoreField restores rec into field of the hash keys[0]; merge (may be nil) combines it
// with the record held, and may refuse it.
func restoreField[T any](ctx context.Context, s *Store, keys []string, field string, rec T, r storage.Restore,
	codec fieldCodec[T], merge func(held, rec T) (T, error)) (storage.Outcome, error) {
	for range maxCASAttempts {
		old, err := s.rdb.HGet(ctx, keys[0], field).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return 0, fail(err)
		}
		var h *T
		merged, flag := rec, "0"
		if err == nil {
			v, err := codec.decode(old)
			if err != nil {
				return 0, fmt.Errorf("redis store: %s %s: %w", keys[0], field, err)
			}
			h, flag = &v, "1"
			if merge != nil {
				if merged, err = merge(v, rec); err != nil {
					return 0, err
				}
			}
		}
		out := storage.Restored(h, merged)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		val, err := codec.encode(merged)
		if err != nil {
			return 0, err
		}
		cmd, err := s.run(ctx, writeScript(keys[0], putField), keys, field, old, flag, val)
		if cmd == nil {
			return 0, err
		}
		if n, _ := cmd.Int(); n == 1 {
			return out, err // an unconfirmed restore is left: running the import again repeats it
		}
	}
	return 0, fmt.Errorf("%w: %s %s changed concurrently too often", storage.ErrUnavailable, keys[0], field)
}

// RestoreClient implements storage.Storage.
func (s *Store) RestoreClient(ctx context.Context, c storage.Client, r storage.Restore) (storage.Outcome, error) {
	return restoreField(ctx, s, []string{clientsKey}, c.ID, c, r, jsonCodec[storage.Client](), nil)
}

// RestoreDeletedClient implements storage.Storage. The note is the deletion time in
// milliseconds, as DeleteClient writes it.
func (s *Store) RestoreDeletedClient(ctx context.Context, d storage.DeletedClient, r storage.Restore) (storage.Outcome, error) {
	d.DeletedAt = d.DeletedAt.Truncate(time.Millisecond).UTC()
	codec := fieldCodec[storage.DeletedClient]{
		decode: func(v string) (storage.DeletedClient, error) {
			n, err := strconv.ParseInt(v, 10, 64)
			return storage.DeletedClient{ID: d.ID, DeletedAt: time.UnixMilli(n).UTC()}, err
		},
		encode: func(d storage.DeletedClient) (string, error) { return strconv.FormatInt(ms(d.DeletedAt), 10), nil },
	}
	return restoreField(ctx, s, []string{goneKey}, d.ID, d, r, codec, func(held, d storage.DeletedClient) (storage.DeletedClient, error) {
		return storage.MergeDeletedClient(held, d), nil
	})
}

// RestoreSigningKey implements storage.Storage; the keys' version changes with the write, so
// a rotation computed from what was read before it starts over.
func (s *Store) RestoreSigningKey(ctx context.Context, k storage.SigningKey, r storage.Restore) (storage.Outcome, error) {
	return restoreField(ctx, s, []string{keysKey, keysVersion}, k.ID, k, r, jsonCodec[storage.SigningKey](), func(held, k storage.SigningKey) (storage.SigningKey, error) {
		return storage.MergeSigningKey(held, k), nil
	})
}

// restoreUser writes a user unless its username is another user's. KEYS: by-id hash, by-name
// hash. ARGV: id, the json held, 1 if one was, the new json, its folded username, the held
// one's. Answers {'ok'}, {'retry'} (the user changed since it was read) or {'taken', owner}.
var restoreUser = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] == '1' then
  if cur ~= ARGV[2] then return {'retry'} end
elseif cur then return {'retry'} end
local owner = redis.call('HGET', KEYS[2], ARGV[5])
if owner and owner ~= ARGV[1] then return {'taken', owner} end
if ARGV[3] == '1' and ARGV[6] ~= ARGV[5] and redis.call('HGET', KEYS[2], ARGV[6]) == ARGV[1] then
  redis.call('HDEL', KEYS[2], ARGV[6])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[5], ARGV[1])
return {'ok'}`)

// RestoreUser implements storage.Storage.
func (s *Store) RestoreUser(ctx context.Context, u storage.User, r storage.Restore) (storage.Outcome, error) {
	name := storage.FoldUsername(u.Username)
	taken := func(owner string) error {
		return fmt.Errorf("%w: username %q belongs to user %s", storage.ErrAlreadyExists, u.Username, owner)
	}
	for range maxCASAttempts {
		var rec, owner *goredis.StringCmd
		if _, err := s.pipelined(ctx, nil, func(p goredis.Pipeliner) {
			rec, owner = p.HGet(ctx, usersByID, u.ID), p.HGet(ctx, usersByName, name)
		}); err != nil {
			return 0, err
		}
		old, err := rec.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return 0, fail(err)
		}
		var h *storage.User
		flag, oldName := "0", ""
		if err == nil {
			v, err := decode[storage.User](old)
			if err != nil {
				return 0, fmt.Errorf("redis store: user %s: %w", u.ID, err)
			}
			h, flag, oldName = &v, "1", storage.FoldUsername(v.Username)
		}
		if o, err := owner.Result(); err == nil && o != u.ID {
			return 0, taken(o)
		}
		out := storage.Restored(h, u)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		b, err := json.Marshal(u)
		if err != nil {
			return 0, err
		}
		cmd, err := s.run(ctx, restoreUser, []string{usersByID, usersByName}, u.ID, old, flag, b, name, oldName)
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
	return 0, fmt.Errorf("%w: user %s changed concurrently too often", storage.ErrUnavailable, u.ID)
}

// restorePAT writes a personal token of an existing user. KEYS: users by-id hash, tokens hash,
// last-used hash, the user's token set. ARGV: user id, token id, the json held, 1 if one was,
// the new json, its last use in ms (” for none), kept if later than the one on record.
// Answers 'ok', 'retry' or 'nouser'.
var restorePAT = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 'nouser' end
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if ARGV[4] == '1' then
  if cur ~= ARGV[3] then return 'retry' end
elseif cur then return 'retry' end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[5])
redis.call('SADD', KEYS[4], ARGV[2])
if ARGV[6] ~= '' and tonumber(ARGV[6]) > tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0') then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[6])
end
return 'ok'`)

// RestorePersonalToken implements storage.Storage. The record is kept without its last use,
// which lives in the last-used hash (CreatePersonalToken, TouchPersonalTokens).
func (s *Store) RestorePersonalToken(ctx context.Context, t storage.PersonalToken, r storage.Restore) (storage.Outcome, error) {
	t.LastUsedAt = t.LastUsedAt.Truncate(time.Millisecond).UTC()
	if t.LastUsedAt.UnixMilli() <= 0 {
		t.LastUsedAt = time.Time{}
	}
	for range maxCASAttempts {
		var rec, used *goredis.StringCmd
		var user *goredis.BoolCmd
		if _, err := s.pipelined(ctx, nil, func(p goredis.Pipeliner) {
			rec, used, user = p.HGet(ctx, patsKey, t.ID), p.HGet(ctx, patUsedKey, t.ID), p.HExists(ctx, usersByID, t.UserID)
		}); err != nil {
			return 0, err
		}
		if ok, err := user.Result(); err != nil {
			return 0, fail(err)
		} else if !ok {
			return 0, storage.ErrNotFound
		}
		old, err := rec.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return 0, fail(err)
		}
		var h *storage.PersonalToken
		merged, flag := t, "0"
		if err == nil {
			u, _ := used.Result()
			v, err := decodePAT([]any{old, u})
			if err != nil {
				return 0, fmt.Errorf("redis store: personal token %s: %w", t.ID, err)
			}
			if v.UserID != t.UserID {
				return 0, fmt.Errorf("%w: personal token %s belongs to user %s", storage.ErrAlreadyExists, t.ID, v.UserID)
			}
			h, flag, merged = &v, "1", storage.MergePersonalToken(v, t)
		}
		out := storage.Restored(h, merged)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		rest := merged
		rest.LastUsedAt = time.Time{}
		b, err := json.Marshal(rest)
		if err != nil {
			return 0, err
		}
		lastUse := ""
		if !merged.LastUsedAt.IsZero() {
			lastUse = strconv.FormatInt(ms(merged.LastUsedAt), 10)
		}
		cmd, err := s.run(ctx, restorePAT, []string{usersByID, patsKey, patUsedKey, userPATsKey(t.UserID)},
			t.UserID, t.ID, old, flag, b, lastUse)
		if cmd == nil {
			return 0, err
		}
		res, _ := cmd.Text()
		switch res {
		case "ok":
			return out, err
		case "nouser":
			return 0, storage.ErrNotFound
		}
	}
	return 0, fmt.Errorf("%w: personal token %s changed concurrently too often", storage.ErrUnavailable, t.ID)
}

// restoreFamily is storage.MergeRefreshFamily in the family's slot. KEYS: family. ARGV: client,
// exp_ms, revoked (0/1), now_ms, dry run (0/1), credential version. Answers {outcome, client} where outcome is
// created, updated, unchanged or conflict (client: the one the family belongs to), and,
// unless a conflict, whether the family is revoked now (0/1) and its exp_ms.
var restoreFamily = goredis.NewScript(`
local now = tonumber(ARGV[4])
local fam = redis.call('HMGET', KEYS[1], 'client', 'exp', 'revoked')
if not fam[2] or tonumber(fam[2]) <= now then
  if ARGV[5] == '0' then
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], 'client', ARGV[1], 'exp', ARGV[2], 'epoch', ARGV[6])
    if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'revoked', '1') end
    redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[2]) - now, 1))
  end
  return {'created', ARGV[1], ARGV[3], ARGV[2]}
end
if fam[1] ~= ARGV[1] then return {'conflict', fam[1] or ''} end
local exp, revoked, out = fam[2], '0', 'unchanged'
if fam[3] == '1' then revoked = '1' end
if tonumber(ARGV[2]) > tonumber(fam[2]) then exp, out = ARGV[2], 'updated' end
if ARGV[3] == '1' and revoked == '0' then revoked, out = '1', 'updated' end
if out == 'updated' and ARGV[5] == '0' then
  redis.call('HSET', KEYS[1], 'exp', exp)
  if revoked == '1' then redis.call('HSET', KEYS[1], 'revoked', '1') end
  redis.call('PEXPIRE', KEYS[1], math.max(tonumber(exp) - now, 1))
end
return {out, ARGV[1], revoked, exp}`)

// RestoreRefreshFamily implements storage.Storage. A revoked family is then marked in its
// client's slot too, as RevokeFamily does; that step is idempotent and taken again whenever a
// revoked family is restored, so an import that stopped between the two completes when run
// again.
func (s *Store) RestoreRefreshFamily(ctx context.Context, f storage.RefreshFamily, r storage.Restore) (storage.Outcome, error) {
	if !r.Now.Before(f.ExpiresAt) {
		return storage.Expired, nil
	}
	res, unconfirmed, err := s.restoreScript(ctx, r.DryRun, restoreFamily, []string{familyKey(f.ID)},
		f.ClientID, ms(f.ExpiresAt), flag(f.Revoked), ms(r.Now), flag(r.DryRun), f.Epoch)
	if err != nil {
		return 0, err
	}
	out, err := outcome(res[0])
	if err != nil {
		return 0, fmt.Errorf("%w: refresh family %s belongs to client %s", storage.ErrAlreadyExists, f.ID, res[1])
	}
	if res[2] == "1" && !r.DryRun {
		exp, _ := strconv.ParseInt(res[3], 10, 64)
		ttl := time.Duration(max(exp-ms(r.Now), 1)) * time.Millisecond
		key := revokedFamilyKey(f.ClientID, f.ID)
		var set *goredis.StatusCmd
		if err := s.exec(ctx, nil, durable(key, func(p goredis.Pipeliner) { set = p.Set(ctx, key, "1", ttl) })); err != nil {
			return 0, err
		}
		if err := set.Err(); err != nil {
			return 0, fail(err)
		}
	}
	return out, unconfirmed
}

// restoreScript runs a restore script: as a write whose replicas must confirm it (unconfirmed
// is then storage.ErrUnconfirmed when they did not), or as a plain read on a dry run, which
// writes nothing.
func (s *Store) restoreScript(ctx context.Context, dry bool, sc *goredis.Script, keys []string, args ...any) (res []string, unconfirmed, err error) {
	if dry {
		res, err = sc.Run(ctx, s.rdb, keys, args...).StringSlice()
		return res, nil, fail(err)
	}
	cmd, unconfirmed := s.run(ctx, sc, keys, args...)
	if cmd == nil {
		return nil, nil, unconfirmed
	}
	res, err = cmd.StringSlice()
	return res, unconfirmed, fail(err)
}

// outcome reads a restore script's answer; an error for a conflict.
func outcome(s string) (storage.Outcome, error) {
	switch s {
	case "created":
		return storage.Created, nil
	case "updated":
		return storage.Updated, nil
	case "unchanged":
		return storage.Unchanged, nil
	}
	return 0, storage.ErrAlreadyExists
}

// restoreRefresh is storage.MergeRefreshToken in the family's slot, with the family made or
// extended as the token implies. An unused token becomes its family's current one (in the
// family's hash) unless another holds that place, where it gets a hash key of its own; a used
// one is written as a rotation leaves it (see rotate), replacing a record of the earlier layout.
// KEYS: token's hash key (rt), family, token's used key (ru). ARGV: client, exp_ms, the token's
// fields as JSON (tokenJSON), used_ms (” for unused), successor, now_ms, family_exp_ms, dry
// run (0/1), credential version, token hash (storedHash), then the token's field/value pairs
// (tokenFields). Answers {outcome, client} (client: the one the family or token belongs to,
// for a conflict).
var restoreRefresh = goredis.NewScript(tokenFieldsLua + `
local now = tonumber(ARGV[6])
local fam = redis.call('HMGET', KEYS[2], 'client', 'exp', 'h')
local famNew, famLonger = false, false
if not fam[2] or tonumber(fam[2]) <= now then famNew = true
elseif fam[1] ~= ARGV[1] then return {'conflict', fam[1] or ''}
elseif tonumber(ARGV[7]) > tonumber(fam[2]) then famLonger = true end
local given = argtable(11)
local function same(tok)
  for _, f in ipairs(TOKF) do
    if tok[f] ~= given[f] then return false end
  end
  return true
end
local cur = not famNew and fam[3] == ARGV[10]
local usedv = redis.call('GET', KEYS[3])
local old = redis.call('HMGET', KEYS[1], 'client', 'exp', 'data', 'used', 'succ', 'tok', 'graced')
local used, succ, graced, out = ARGV[4], ARGV[5], nil, 'created'
if cur then
  out = 'updated'
  if used == '' and same(tokentable(redis.call('HMGET', KEYS[2], unpack(TOKF)))) then out = 'unchanged' end
elseif usedv then
  local head, hsucc = readused(usedv)
  if head.C ~= ARGV[1] then return {'conflict', head.C or ''} end
  used, succ, graced = head.U, hsucc, head.G
  out = 'updated'
  if same(head) then out = 'unchanged' end
elseif old[3] or old[6] then
  if old[1] ~= ARGV[1] then return {'conflict', old[1] or ''} end
  if old[4] then used, succ, graced = old[4], old[5] or '', old[7] end
  out = 'updated'
  if old[6] and old[2] == ARGV[2] and same(cjson.decode(old[6])) and (old[4] or '') == used and (old[5] or '') == succ then out = 'unchanged' end
end
if out == 'unchanged' and (famNew or famLonger) then out = 'updated' end
if ARGV[8] == '1' or out == 'unchanged' then return {out, ARGV[1]} end
if famNew then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'client', ARGV[1], 'exp', ARGV[7], 'epoch', ARGV[9])
end
if famNew or famLonger then
  redis.call('HSET', KEYS[2], 'exp', ARGV[7])
  redis.call('PEXPIRE', KEYS[2], math.max(tonumber(ARGV[7]) - now, 1))
end
if used == '' and (cur or (not old[3] and not old[6] and redis.call('HEXISTS', KEYS[2], 'h') == 0)) then
  redis.call('HDEL', KEYS[2], unpack(TOKF))
  redis.call('HSET', KEYS[2], 'h', ARGV[10], unpack(ARGV, 11))
  return {out, ARGV[1]}
end
if cur then redis.call('HDEL', KEYS[2], 'h', unpack(TOKF)) end
local ttl = math.max(tonumber(ARGV[2]) - now, 1)
if used ~= '' then
  given.C, given.U, given.G = ARGV[1], used, graced or nil
  writeused(KEYS[3], given, succ, ttl)
  redis.call('DEL', KEYS[1])
  return {out, ARGV[1]}
end
redis.call('HDEL', KEYS[1], 'data')
redis.call('HSET', KEYS[1], 'client', ARGV[1], 'exp', ARGV[2], 'tok', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
return {out, ARGV[1]}`)

// RestoreRefreshToken implements storage.Storage.
func (s *Store) RestoreRefreshToken(ctx context.Context, t storage.RefreshToken, r storage.Restore) (storage.Outcome, error) {
	if !r.Now.Before(t.ExpiresAt) {
		return storage.Expired, nil
	}
	fields, err := tokenFields(t)
	if err != nil {
		return 0, err
	}
	tok, err := tokenJSON(fields)
	if err != nil {
		return 0, err
	}
	used := ""
	if !t.UsedAt.IsZero() {
		used = strconv.FormatInt(ms(t.UsedAt), 10)
	}
	args := append([]any{t.ClientID, ms(t.ExpiresAt), tok, used, t.Successor, ms(r.Now), ms(t.FamilyExpiry()), flag(r.DryRun), t.Epoch, storedHash(t.Hash)}, fields...)
	res, unconfirmed, err := s.restoreScript(ctx, r.DryRun, restoreRefresh, []string{refreshKey(t.FamilyID, t.Hash), familyKey(t.FamilyID), usedKey(t.FamilyID, t.Hash)}, args...)
	if err != nil {
		return 0, err
	}
	out, err := outcome(res[0])
	if err != nil {
		return 0, fmt.Errorf("%w: refresh family %s belongs to client %s", storage.ErrAlreadyExists, t.FamilyID, res[1])
	}
	return out, unconfirmed
}

// RestoreRevokedAccessToken implements storage.Storage.
func (s *Store) RestoreRevokedAccessToken(ctx context.Context, t storage.RevokedAccessToken, r storage.Restore) (storage.Outcome, error) {
	if !t.ExpiresAt.IsZero() && !r.Now.Before(t.ExpiresAt) {
		return storage.Expired, nil
	}
	key := revokedJTIKey(t.ClientID, t.JTI)
	if r.DryRun {
		n, err := s.rdb.Exists(ctx, key).Result()
		if err != nil {
			return 0, fail(err)
		}
		if n > 0 {
			return storage.Unchanged, nil
		}
		return storage.Created, nil
	}
	var ttl time.Duration
	if !t.ExpiresAt.IsZero() {
		ttl = time.Duration(max(ms(t.ExpiresAt)-ms(r.Now), 1)) * time.Millisecond
	}
	var set *goredis.BoolCmd
	unconfirmed := s.exec(ctx, nil, durable(key, func(p goredis.Pipeliner) { set = p.SetNX(ctx, key, "1", ttl) }))
	if unconfirmed != nil && !errors.Is(unconfirmed, storage.ErrUnconfirmed) {
		return 0, unconfirmed
	}
	created, err := set.Result()
	if err != nil {
		return 0, fail(err)
	}
	if created {
		return storage.Created, unconfirmed
	}
	return storage.Unchanged, unconfirmed
}
