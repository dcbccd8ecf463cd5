package redis

import goredis "github.com/redis/go-redis/v9"

// Every multi-key operation is one Lua script, so it is atomic; the keys of one script share a
// hash tag, so it runs on Redis Cluster.

// ensureKey stores a signing key only if none exists. KEYS: keys hash. ARGV: kid, json.
var ensureKey = goredis.NewScript(`
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0`)

// Lifetimes are set with PEXPIRE from the caller's clock (exp - now), never PEXPIREAT: the
// caller's now decides what is valid, Redis's own clock only collects garbage.

// createRefresh starts a family. KEYS: family, token. ARGV: client, exp_ms, data, now_ms.
var createRefresh = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = math.max(tonumber(ARGV[2]) - tonumber(ARGV[4]), 1)
redis.call('HSET', KEYS[1], 'exp', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('HSET', KEYS[2], 'client', ARGV[1], 'exp', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1`)

// rotate is storage.Rotation. KEYS: old token, family, next token.
// ARGV: client, now_ms, grace_ms, sealed, next_exp_ms, next_data (empty: nothing to store).
var rotate = goredis.NewScript(`
local now = tonumber(ARGV[2])
local old = redis.call('HMGET', KEYS[1], 'client', 'exp', 'used', 'succ')
if not old[1] or old[1] ~= ARGV[1] or tonumber(old[2]) <= now then return {'notfound'} end
local fam = redis.call('HMGET', KEYS[2], 'revoked', 'exp')
if not fam[2] then return {'notfound'} end
if fam[1] == '1' then return {'revoked'} end
if old[3] then
  local grace = tonumber(ARGV[3])
  if grace > 0 and now - tonumber(old[3]) <= grace and old[4] then return {'grace', old[4]} end
  redis.call('HSET', KEYS[2], 'revoked', '1')
  return {'replay'}
end
if ARGV[6] == '' then return {'notfound'} end
redis.call('HSET', KEYS[1], 'used', ARGV[2], 'succ', ARGV[4])
local nexp = tonumber(ARGV[5])
redis.call('HSET', KEYS[3], 'client', ARGV[1], 'exp', ARGV[5], 'data', ARGV[6])
redis.call('PEXPIRE', KEYS[3], math.max(nexp - now, 1))
if nexp > tonumber(fam[2]) then
  redis.call('HSET', KEYS[2], 'exp', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], math.max(nexp - now, 1))
end
return {'fresh', ARGV[4]}`)

// revokeFamily. KEYS: family.
var revokeFamily = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
return 1`)

// heartbeat. KEYS: live zset, info hash. ARGV: id, exp_ms, json, now_ms.
var heartbeat = goredis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
return 1`)

// replicas lists live replicas. KEYS: live zset, info hash. ARGV: now_ms.
var replicas = goredis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))`)

// admit is storage.Admission. KEYS: pool hash, day counter.
// ARGV: now_ms, reuse (0/1), min_remaining_ms, capacity, reservation, reserve_until_ms, limit, reset_ms.
// Pool values are "<until_ms>|R" for a reservation or "<until_ms>|T|<json>" for a token.
var admit = goredis.NewScript(`
local now = tonumber(ARGV[1])
if ARGV[2] == '1' then
  local entries = redis.call('HGETALL', KEYS[1])
  local best, bestUntil, live = nil, -1, 0
  for i = 1, #entries, 2 do
    local until_ms, kind = string.match(entries[i+1], '^(%d+)|(%a)')
    until_ms = tonumber(until_ms)
    if until_ms == nil or until_ms <= now then
      redis.call('HDEL', KEYS[1], entries[i])
    else
      live = live + 1
      if kind == 'T' and until_ms > bestUntil then best = entries[i+1]; bestUntil = until_ms end
    end
  end
  if best and bestUntil - now >= tonumber(ARGV[3]) then return {'reused', best} end
  if live >= tonumber(ARGV[4]) then
    if best then return {'reused', best} end
    return {'busy'}
  end
end
local limit = tonumber(ARGV[7])
if limit > 0 then
  local n = tonumber(redis.call('GET', KEYS[2]) or '0')
  if n >= limit then return {'limited'} end
  redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], math.max(tonumber(ARGV[8]) + 60000 - now, 1))
end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], ARGV[5], ARGV[6] .. '|R')
  local ttl = tonumber(ARGV[6]) - now
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], math.max(ttl, 1)) end
end
return {'allowed'}`)

// settle is storage.Settlement. KEYS: pool hash, day counter.
// ARGV: reuse (0/1), reservation, jti, token_until_ms, token_json ('' = failed), limit, now_ms.
var settle = goredis.NewScript(`
if ARGV[1] == '1' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[1], ARGV[3], ARGV[4] .. '|T|' .. ARGV[5])
    local ttl = tonumber(ARGV[4]) - tonumber(ARGV[7])
    if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], math.max(ttl, 1)) end
  end
end
if ARGV[5] == '' and tonumber(ARGV[6]) > 0 then
  if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
end
return 1`)
