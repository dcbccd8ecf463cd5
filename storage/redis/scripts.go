package redis

import goredis "github.com/redis/go-redis/v9"

// Every multi-key operation is one Lua script, so it is atomic; the keys of one script share a
// hash tag, so it runs on Redis Cluster. Scripts that look at keys named from an ARGV prefix
// only ever build keys inside the slot of their KEYS.
//
// Lifetimes are set with PEXPIRE from the caller's clock (exp - now), never PEXPIREAT: the
// caller's now decides what is valid, Redis's own clock only collects garbage.

// swapField writes a hash field only if it still holds what was read (optimistic update).
// KEYS: hash. ARGV: field, expected, new.
var swapField = goredis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`)

// createClient. KEYS: clients hash, deletions hash. ARGV: id, json, the deletion time the json
// carries (” for none). Answers {'ok'}, {'exists'} or {'gone', <recorded deletion time>}.
var createClient = goredis.NewScript(clientIndexLua + `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {'exists'} end
local gone = redis.call('HGET', KEYS[2], ARGV[1]) or ''
if gone ~= ARGV[3] then return {'gone', gone} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
indexclient(KEYS[1], ARGV[1], false, ARGV[2])
return {'ok'}`)

// deleteClient. KEYS: clients hash, deletions hash. ARGV: id, now_ms.
var deleteClient = goredis.NewScript(clientIndexLua + `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
indexclient(KEYS[1], ARGV[1], cur, false)
return 1`)

// swapClient is swapField for the clients hash, which also moves the client in the owner and
// federated identity indexes. KEYS: clients hash. ARGV: id, expected, new.
var swapClient = goredis.NewScript(clientIndexLua + `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
indexclient(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1`)

// fedIndexLua maintains the federated identity index (see fedIndexKey) from a client's JSON,
// old and new, so each client script keeps it in the same atomic step as the record. Its keys
// are built under the clients hash's name, so they share its slot on a Cluster.
const fedIndexLua = `
local function fedkeys(hash, json)
  local out = {}
  if not json then return out end
  local ok, c = pcall(cjson.decode, json)
  if not ok or type(c) ~= 'table' or type(c.federated_identities) ~= 'table' then return out end
  for _, f in ipairs(c.federated_identities) do
    if type(f) == 'table' and type(f.issuer) == 'string' and type(f.subject) == 'string' then
      out[#out + 1] = hash .. ':fed:' .. f.issuer .. '\n' .. f.subject
    end
  end
  return out
end
local function reindex(hash, id, old, new)
  local keep = {}
  local add = fedkeys(hash, new)
  for _, k in ipairs(add) do keep[k] = true end
  for _, k in ipairs(fedkeys(hash, old)) do
    if not keep[k] then redis.call('SREM', k, id) end
  end
  for _, k in ipairs(add) do redis.call('SADD', k, id) end
end
`

// clientIndexLua keeps both indexes of the clients hash, the owners' and the federated
// identities', in every script that writes a client.
const clientIndexLua = ownerIndexLua + fedIndexLua + `
local function indexclient(hash, id, old, new)
  reowner(hash, id, old, new)
  reindex(hash, id, old, new)
end
`

// createUser. KEYS: by-id hash, by-name hash. ARGV: id, folded username (the form it is
// stored under), json, then any other form the name is reserved under (its legacy form).
var createUser = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
for i = 4, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1`)

// userByName. KEYS: by-name hash, by-id hash. ARGV: the forms of the username
// (storage.UsernameKeys), tried in order.
var userByName = goredis.NewScript(`
for i = 1, #ARGV do
  local id = redis.call('HGET', KEYS[1], ARGV[i])
  if id then return redis.call('HGET', KEYS[2], id) end
end
return false`)

// deleteUser removes a user, if it is unchanged since it was read, with its personal tokens.
// KEYS: by-id hash, by-name hash, personal tokens hash, their last-used hash, the user's token
// set. ARGV: id, expected json, then every form of the username (storage.UsernameKeys): the
// one naming this user goes.
var deleteUser = goredis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[i]) end
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
end
redis.call('DEL', KEYS[5])
return 1`)

// createPAT stores a personal token of an existing user.
// KEYS: users by-id hash, tokens hash, the user's token set. ARGV: user id, token id, json,
// the most tokens a user may hold.
var createPAT = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 'nouser' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'exists' end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[4]) then return 'full' end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[2])
return 'ok'`)

// listPATs. KEYS: the user's token set, tokens hash, last-used hash. Answers {json, used} pairs.
var listPATs = goredis.NewScript(`
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out+1] = {redis.call('HGET', KEYS[2], id) or '', redis.call('HGET', KEYS[3], id) or ''}
end
return out`)

// deletePAT deletes one of a user's tokens. KEYS: the user's token set, tokens hash, last-used
// hash. ARGV: token id.
var deletePAT = goredis.NewScript(`
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1`)

// touchPATs keeps the later last-used time of each existing token.
// KEYS: tokens hash, last-used hash. ARGV: id, ms, id, ms, …
var touchPATs = goredis.NewScript(`
for i = 1, #ARGV, 2 do
  local id, at = ARGV[i], tonumber(ARGV[i+1])
  if redis.call('HEXISTS', KEYS[1], id) == 1 and at > tonumber(redis.call('HGET', KEYS[2], id) or '0') then
    redis.call('HSET', KEYS[2], id, ARGV[i+1])
  end
end
return 1`)

// Failed-login counts are strings "<fails>|<until_ms>".

// login reads a user and the backoff of an attempt (storage.LoginAttempt).
// KEYS: by-name hash, by-id hash, pair count, username count. ARGV: now_ms, then the forms of
// the username (storage.UsernameKeys), tried in order.
// Answers {user json or ”, pair fails, wait_ms}.
var login = goredis.NewScript(`
local now = tonumber(ARGV[1])
local user = ''
for i = 2, #ARGV do
  local id = redis.call('HGET', KEYS[1], ARGV[i])
  if id then
    user = redis.call('HGET', KEYS[2], id) or ''
    break
  end
end
local function read(k)
  local v = redis.call('GET', k)
  if not v then return 0, 0 end
  local f, u = string.match(v, '^(%d+)|(%d+)$')
  return tonumber(f) or 0, tonumber(u) or 0
end
local pf, pu = read(KEYS[3])
if pf == 0 then return {user, 0, 0} end
local _, uu = read(KEYS[4])
local wait = math.max(pu - now, uu - now, 0)
return {user, pf, wait}`)

// loginFailed counts a failure for the address and the username.
// KEYS: pair count, username count. ARGV: now_ms, limit, username limit, max_delay_ms, window_ms.
var loginFailed = goredis.NewScript(`
local now, maxd, window = tonumber(ARGV[1]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function bump(k, limit)
  local v = redis.call('GET', k)
  local f, u = 0, 0
  if v then
    local a, b = string.match(v, '^(%d+)|(%d+)$')
    f, u = tonumber(a) or 0, tonumber(b) or 0
  end
  f = f + 1
  local over = f - limit
  if over >= 0 then u = now + math.min(1000 * 2 ^ math.min(over, 30), maxd) end
  redis.call('SET', k, f .. '|' .. string.format('%d', u), 'PX', math.max(window, u - now, 1))
end
bump(KEYS[1], tonumber(ARGV[2]))
bump(KEYS[2], tonumber(ARGV[3]))
return 1`)

// Signing keys live in one hash; a version number beside it changes with every write, so a
// rotation computed in Go from what it read is written only if nothing changed meanwhile.

// ensureKey stores signing keys only if none exists (a first start, or a restore after the
// store lost its data). KEYS: keys hash, version. ARGV: kid, json, kid, json, …
var ensureKey = goredis.NewScript(`
if redis.call('HLEN', KEYS[1]) > 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
redis.call('INCR', KEYS[2])
return 1`)

// readKeys answers {version, json, json, …}. KEYS: keys hash, version.
var readKeys = goredis.NewScript(`
local out = {redis.call('GET', KEYS[2]) or '0'}
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do out[#out+1] = v end
return out`)

// writeKeys writes and deletes keys if the version is still the one read.
// KEYS: keys hash, version. ARGV: expected version, number of kids to delete, those kids,
// then kid, json pairs.
var writeKeys = goredis.NewScript(`
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
for i = 3, 2 + n do redis.call('HDEL', KEYS[1], ARGV[i]) end
for i = 3 + n, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
redis.call('INCR', KEYS[2])
return 1`)

// A family's hash holds, besides its own fields (exp, client, epoch, revoked), its current
// (unused) refresh token: its hash in h and the rest in the small fields tokenFieldsLua names,
// so the hash stays listpack-encoded and a login costs one key. A rotation moves the used token
// to a string key of its own (ru:<hash>), which it needs until its expiry for the grace answer
// and replay detection: a JSON object of its fields (the family's, and C its client, U when it
// was used, G when a grace answer handed its successor out), a newline, and the sealed
// successor. One string costs a few hundred bytes less than a hash of those fields, which the
// successor (over 64 bytes) would make a full hash table. Records written before this layout
// keep the whole token in a hash rt:<hash> (data, the storedRefresh JSON, then used and succ);
// they are read, rotated, replayed and taken back as they are, and a rotation writes its
// successor in the family's hash. A restore that finds another unused token in its family's
// place writes an unused one there too, with its fields as JSON in tok.

// tokenFieldsLua names the fields of a refresh token in a family's hash (tokenFields), and
// reads and writes a used token's string.
const tokenFieldsLua = `
local TOKF = {'i', 'e', 's', 'o', 'a', 'l', 'u', 'p', 'k', 'x'}
local function tokentable(vals)
  local tok = {}
  for i, f in ipairs(TOKF) do if vals[i] then tok[f] = vals[i] end end
  return tok
end
local function pairsfrom(tok)
  local out = {}
  for _, f in ipairs(TOKF) do
    if tok[f] then out[#out+1] = f; out[#out+1] = tok[f] end
  end
  return out
end
local function argtable(from)
  local tok = {}
  for i = from, #ARGV, 2 do tok[ARGV[i]] = ARGV[i+1] end
  return tok
end
local function readused(v)
  local nl = string.find(v, '\n', 1, true)
  return cjson.decode(string.sub(v, 1, nl - 1)), string.sub(v, nl + 1)
end
local function writeused(key, head, succ, ttl)
  ttl = ttl or redis.call('PTTL', key)
  redis.call('SET', key, cjson.encode(head) .. '\n' .. succ, 'PX', math.max(ttl, 1))
end
`

// createRefresh starts a family with its first token. KEYS: family.
// ARGV: client, now_ms, family_exp_ms, the login's credential version (left out when 0, as
// readers take a missing one to be), token hash (storedHash), then the token's field/value
// pairs (tokenFields).
var createRefresh = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'exp', ARGV[3], 'client', ARGV[1], 'h', ARGV[5], unpack(ARGV, 6))
if ARGV[4] ~= '0' then redis.call('HSET', KEYS[1], 'epoch', ARGV[4]) end
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[3]) - tonumber(ARGV[2]), 1))
return 1`)

// rotate is storage.Rotation. KEYS: family, old token's hash key (rt), next token's hash key
// (rt), old token's used key (ru). ARGV: client, now_ms, grace_ms, sealed, next_exp_ms, next
// hash (” = nothing to store), next_family_exp_ms, old hash (both storedHash), then the next
// token's field/value pairs. The old token is the family's current one, a used one, or one
// with a hash key of its own (written before this layout, or restored beside the current one).
// The next one becomes the family's current token; only when another unused token holds that
// place does it get a hash key of its own. A grace answer marks the old token graced: the
// successor it hands out must not be taken back (unrotate), and the mark is a write, so the
// WAIT behind it also covers the rotation it answers, which another connection wrote.
var rotate = goredis.NewScript(tokenFieldsLua + `
local now = tonumber(ARGV[2])
local fam = redis.call('HMGET', KEYS[1], 'revoked', 'exp', 'client', 'h', 'e')
if not fam[2] then return {'notfound'} end
local cur = fam[4] == ARGV[8]
local client, exp, used, succ, head = fam[3], fam[5], nil, nil, nil
if not cur then
  local v = redis.call('GET', KEYS[4])
  if v then
    head, succ = readused(v)
    client, exp, used = head.C, head.e, head.U
  else
    local old = redis.call('HMGET', KEYS[2], 'client', 'exp', 'used', 'succ')
    client, exp, used, succ = old[1], old[2], old[3], old[4]
  end
end
if not client or client ~= ARGV[1] or not exp or tonumber(exp) <= now then return {'notfound'} end
if fam[1] == '1' then return {'revoked'} end
if used then
  local grace = tonumber(ARGV[3])
  if grace > 0 and now - tonumber(used) <= grace and succ then
    if head then
      head.G = '1'
      writeused(KEYS[4], head, succ)
    else
      redis.call('HSET', KEYS[2], 'graced', '1')
    end
    return {'grace', succ}
  end
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {'replay'}
end
if ARGV[6] == '' then return {'notfound'} end
if cur then
  local tok = tokentable(redis.call('HMGET', KEYS[1], unpack(TOKF)))
  tok.C, tok.U = client, ARGV[2]
  redis.call('HDEL', KEYS[1], 'h', unpack(TOKF))
  writeused(KEYS[4], tok, ARGV[4], math.max(tonumber(exp) - now, 1))
else
  redis.call('HSET', KEYS[2], 'used', ARGV[2], 'succ', ARGV[4])
end
local nexp = tonumber(ARGV[5])
if redis.call('HEXISTS', KEYS[1], 'h') == 0 then
  redis.call('HDEL', KEYS[1], unpack(TOKF))
  redis.call('HSET', KEYS[1], 'h', ARGV[6], unpack(ARGV, 9))
else
  redis.call('HSET', KEYS[3], 'client', ARGV[1], 'exp', ARGV[5], 'tok', cjson.encode(argtable(9)))
  redis.call('PEXPIRE', KEYS[3], math.max(nexp - now, 1))
end
local fexp = tonumber(ARGV[7])
if fexp > tonumber(fam[2]) then
  redis.call('HSET', KEYS[1], 'exp', ARGV[7])
  redis.call('PEXPIRE', KEYS[1], math.max(fexp - now, 1))
end
return {'fresh', ARGV[4]}`)

// unrotate takes back a rotation whose answer was not given (too few replicas confirmed it),
// unless a grace answer has handed its successor out since: the successor goes, and the old
// token is unused again, back in its family's hash if it came from there.
// KEYS: old token's hash key (rt), family, next token's hash key (rt), old token's used key
// (ru). ARGV: the sealed successor the rotation stored, old hash, next hash (storedHash).
var unrotate = goredis.NewScript(tokenFieldsLua + `
local v = redis.call('GET', KEYS[4])
if v then
  local head, succ = readused(v)
  if succ ~= ARGV[1] or head.G or redis.call('HGET', KEYS[2], 'h') ~= ARGV[3] then return 0 end
  redis.call('HDEL', KEYS[2], 'h', unpack(TOKF))
  redis.call('HSET', KEYS[2], 'h', ARGV[2], unpack(pairsfrom(head)))
  redis.call('DEL', KEYS[4])
  return 1
end
local old = redis.call('HMGET', KEYS[1], 'succ', 'graced')
if old[1] ~= ARGV[1] or old[2] then return 0 end
if redis.call('HGET', KEYS[2], 'h') == ARGV[3] then
  redis.call('HDEL', KEYS[2], 'h', unpack(TOKF))
else
  redis.call('DEL', KEYS[3])
end
redis.call('HDEL', KEYS[1], 'used', 'succ')
return 1`)

// revokeFamily marks a live family revoked. KEYS: family. ARGV: now_ms.
// Answers {client, exp_ms}, or {} when there is no live family.
var revokeFamily = goredis.NewScript(`
local fam = redis.call('HMGET', KEYS[1], 'client', 'exp')
if not fam[2] or tonumber(fam[2]) <= tonumber(ARGV[1]) then return {} end
redis.call('HSET', KEYS[1], 'revoked', '1')
return {fam[1] or '', fam[2]}`)

// revokeAccess denies a jti and takes it out of its pool. KEYS: deny key, pool. ARGV: ttl_ms, jti.
var revokeAccess = goredis.NewScript(`
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
return 1`)

// useAssertion remembers a client assertion's jti unless it is remembered already.
// KEYS: the jti's key. ARGV: ttl_ms. Answers 1 when stored, 0 for a replay.
var useAssertion = goredis.NewScript(`
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0`)

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

// admit is storage.Admission. KEYS: pool hash, day counter, hour counter.
// ARGV: now_ms, reuse (0/1), min_remaining_ms, capacity, reservation, reserve_until_ms, limit,
// reset_ms, the client's key prefix (for its revocation marks, in the same slot), shadow (0/1),
// hourly limit, hour reset_ms, hourly shadow (0/1), the login's credential version.
// Pool values are "<until_ms>|R" for a reservation or "<until_ms>|T|<family>|<token>" for a
// token (storage.EncodePooledToken, whose version 2 starts with the token's credential
// version); a token whose jti or family is revoked, or of an older credential version, is
// dropped, and only one of the login's own version is handed out.
// Answers {outcome, day count, hour count}.
var admit = goredis.NewScript(`
local now = tonumber(ARGV[1])
if ARGV[2] == '1' then
  local entries = redis.call('HGETALL', KEYS[1])
  local best, bestUntil, live = nil, -1, 0
  local epoch = tonumber(ARGV[14])
  for i = 1, #entries, 2 do
    local v = entries[i+1]
    local until_ms, kind = string.match(v, '^(%d+)|(%a)')
    until_ms = tonumber(until_ms)
    local dead = until_ms == nil or until_ms <= now
    local fam, payload, ep = nil, nil, 0
    if not dead and kind == 'T' then
      fam, payload = string.match(v, '^%d+|T|([^|]*)|(.*)$')
      if payload then ep = tonumber(string.match(payload, '^t2\n(%d+)\n') or '0') end
      if not payload or ep < epoch or redis.call('EXISTS', ARGV[9] .. 'rj:' .. entries[i]) == 1 or
         (fam ~= '' and redis.call('EXISTS', ARGV[9] .. 'rf:' .. fam) == 1) then dead = true end
    end
    if dead then
      redis.call('HDEL', KEYS[1], entries[i])
    else
      live = live + 1
      if kind == 'T' and ep == epoch and until_ms > bestUntil then best = payload; bestUntil = until_ms end
    end
  end
  if best and bestUntil - now >= tonumber(ARGV[3]) then return {'reused', best} end
  if live >= tonumber(ARGV[4]) then
    if best then return {'reused', best} end
    return {'busy'}
  end
end
local limit, hlimit = tonumber(ARGV[7]), tonumber(ARGV[11])
local d, h = 0, 0
if limit > 0 then d = tonumber(redis.call('GET', KEYS[2]) or '0') end
if hlimit > 0 then h = tonumber(redis.call('GET', KEYS[3]) or '0') end
if (limit > 0 and d >= limit and ARGV[10] ~= '1') or (hlimit > 0 and h >= hlimit and ARGV[13] ~= '1') then
  return {'limited', tostring(d), tostring(h)}
end
if limit > 0 then
  d = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], math.max(tonumber(ARGV[8]) + 60000 - now, 1))
end
if hlimit > 0 then
  h = redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], math.max(tonumber(ARGV[12]) + 60000 - now, 1))
end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], ARGV[5], ARGV[6] .. '|R')
  local ttl = tonumber(ARGV[6]) - now
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], math.max(ttl, 1)) end
end
return {'allowed', tostring(d), tostring(h)}`)

// settle is storage.Settlement. KEYS: pool hash, day counter, hour counter.
// ARGV: reuse (0/1), reservation, jti, token_until_ms, token (storage.EncodePooledToken;
// ” = failed), limit, now_ms, family, hourly limit.
var settle = goredis.NewScript(`
if ARGV[1] == '1' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[1], ARGV[3], ARGV[4] .. '|T|' .. ARGV[8] .. '|' .. ARGV[5])
    local ttl = tonumber(ARGV[4]) - tonumber(ARGV[7])
    if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], math.max(ttl, 1)) end
  end
end
if ARGV[5] == '' then
  if tonumber(ARGV[6]) > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
  if tonumber(ARGV[9]) > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then redis.call('DECR', KEYS[3]) end
end
return 1`)

// ensureSecret stores a server secret unless one of that name exists, and answers the stored
// one. KEYS: the secret. ARGV: the candidate.
var ensureSecret = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]`)

// moveUsername moves a user's index entry from one form of its name to another, if the entry
// still names it. KEYS: by-name hash. ARGV: old form, new form, id. Answers 1 when moved, 0
// when the entry changed meanwhile, -1 with the id holding the new form when another user does.
var moveUsername = goredis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return {0, ''} end
local holder = redis.call('HGET', KEYS[1], ARGV[2])
if holder and holder ~= ARGV[3] then return {-1, holder} end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HDEL', KEYS[1], ARGV[1])
return {1, ''}`)

// allScripts are loaded when a store opens.
var allScripts = []*goredis.Script{
	swapField, swapClient, putClient, createClient, deleteClient, createUser, userByName, deleteUser, login, loginFailed,
	createPAT, listPATs, deletePAT, touchPATs,
	ensureKey, readKeys, writeKeys, createRefresh, rotate, unrotate, revokeFamily, revokeAccess, heartbeat, replicas, admit, settle,
	createSession, useAssertion,
	createTrustedIssuer, trustedIssuerByURL, deleteTrustedIssuer, ensureSecret, moveUsername,
	indexClients, ownedClients,
}
