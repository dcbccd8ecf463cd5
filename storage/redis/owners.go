package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// The client index lives beside the clients hash, in its slot (keys built from KEYS[1]):
//
//	ts:{clients}:owned:<owner>   set     the ids of the owner's clients
//	ts:{clients}:longest         string  the longest access token lifetime given (ms)
//	ts:{clients}:indexed         string  present once the index covers every client
//
// A store written before the index existed has no :indexed; the first reader builds the
// index (buildClientIndex) and then marks it.
const (
	clientsIndexed = clientsKey + ":indexed"
	clientsLongest = clientsKey + ":longest"
)

// ownerIndexLua is the start of every script that writes a client: reowner(hash, id, old,
// new), given the clients hash and the client's JSON before and after (false for none), moves
// the client between owner sets and raises the longest lifetime, in the clients' slot.
const ownerIndexLua = `
local function clientOwnerTTL(json)
  if not json then return '', 0 end
  local ok, c = pcall(cjson.decode, json)
  if not ok or type(c) ~= 'table' then return '', 0 end
  local owner, ttl = c.owner, c.access_token_ttl
  if type(owner) ~= 'string' then owner = '' end
  if type(ttl) ~= 'number' then ttl = 0 end
  return owner, math.ceil(ttl / 1000000)
end
local function reowner(hash, id, old, new)
  local was = clientOwnerTTL(old)
  local owner, ttl = clientOwnerTTL(new)
  if was ~= owner then
    if was ~= '' then redis.call('SREM', hash .. ':owned:' .. was, id) end
    if owner ~= '' then redis.call('SADD', hash .. ':owned:' .. owner, id) end
  end
  local l = hash .. ':longest'
  if ttl > tonumber(redis.call('GET', l) or '0') then redis.call('SET', l, string.format('%d', ttl)) end
end
`

// indexClients indexes clients of a store written before the index existed, each only if it
// still holds what was read (a later write indexed it itself), and with ARGV[1] = '1' marks
// the index complete. KEYS: clients hash. ARGV: mark, then id and json of each client.
var indexClients = goredis.NewScript(ownerIndexLua + `
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i+1] then reowner(KEYS[1], ARGV[i], false, ARGV[i+1]) end
end
if ARGV[1] == '1' then redis.call('SET', KEYS[1] .. ':indexed', '1') end
return 1`)

// ownedClients answers the records of an owner's clients, or false while the index is not
// complete. KEYS: clients hash. ARGV: owner.
var ownedClients = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1] .. ':indexed') == 0 then return false end
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1] .. ':owned:' .. ARGV[1])) do
  local v = redis.call('HGET', KEYS[1], id)
  if v then out[#out+1] = v end
end
return out`)

// OwnedClients implements storage.Storage: one script reads the owner's set and its clients.
func (s *Store) OwnedClients(ctx context.Context, owner string) ([]storage.Client, error) {
	if owner == "" {
		return nil, nil
	}
	for range 2 {
		vals, err := ownedClients.Run(ctx, s.rdb, []string{clientsKey}, owner).StringSlice()
		if errors.Is(err, goredis.Nil) {
			if err := s.awaitClientIndex(ctx); err != nil {
				return nil, err
			}
			continue
		} else if err != nil {
			return nil, fail(err)
		}
		out := make([]storage.Client, 0, len(vals))
		for _, v := range vals {
			c, err := decode[storage.Client](v)
			if err != nil {
				return nil, err
			}
			if c.Owner == owner {
				out = append(out, c)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: the client index is not complete", storage.ErrUnavailable)
}

// LongestAccessTokenTTL implements storage.Storage.
func (s *Store) LongestAccessTokenTTL(ctx context.Context) (time.Duration, error) {
	for range 2 {
		vals, err := s.rdb.MGet(ctx, clientsIndexed, clientsLongest).Result()
		if err != nil {
			return 0, fail(err)
		}
		if vals[0] == nil {
			if err := s.awaitClientIndex(ctx); err != nil {
				return 0, err
			}
			continue
		}
		if vals[1] == nil {
			return 0, nil
		}
		n, err := strconv.ParseInt(vals[1].(string), 10, 64)
		return time.Duration(n) * time.Millisecond, err
	}
	return 0, fmt.Errorf("%w: the client index is not complete", storage.ErrUnavailable)
}

// indexBuild is the one build of the client index a store runs at a time.
type indexBuild struct {
	mu   sync.Mutex
	done chan struct{} // closed when the build ends; nil before the first
	err  error
}

// indexBuildTimeout bounds one build: a million clients take tens of seconds.
const indexBuildTimeout = 10 * time.Minute

// awaitClientIndex builds the client index of a store written before it existed, or waits
// for the build under way. The build does not end with ctx: a request's deadline (half a
// second) is far shorter than indexing a large store, so the request answers ErrUnavailable
// and the build carries on for the requests after it.
func (s *Store) awaitClientIndex(ctx context.Context) error {
	b := &s.index
	b.mu.Lock()
	running := false
	if b.done != nil {
		select {
		case <-b.done:
		default:
			running = true
		}
	}
	if !running {
		done := make(chan struct{})
		b.done = done
		go func() {
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), indexBuildTimeout)
			defer cancel()
			err := s.buildClientIndex(bctx)
			b.mu.Lock()
			b.err = err
			b.mu.Unlock()
			close(done)
		}()
	}
	done := b.done
	b.mu.Unlock()
	select {
	case <-done:
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("%w: indexing the clients stored by an earlier version (once, after an upgrade): %v", storage.ErrUnavailable, ctx.Err())
	}
}

// buildClientIndex indexes the clients of a store written before the index existed, a
// batch per script, and marks the index complete. Clients written meanwhile are indexed by
// their own writes; running it twice (two replicas at once) indexes nothing twice.
func (s *Store) buildClientIndex(ctx context.Context) error {
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, clientsKey, cursor, "", scanCount).Result()
		if err != nil {
			return fail(err)
		}
		args := []any{"0"}
		if next == 0 {
			args[0] = "1"
		}
		for _, v := range kv {
			args = append(args, v)
		}
		if _, err := s.run(ctx, indexClients, []string{clientsKey}, args...); err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
