// Package redis is the shared storage backend for many replicas: Redis single node, Sentinel
// or Cluster through go-redis's UniversalClient. Every multi-key operation is one Lua script
// whose keys share a hash tag ({c:<client>}, {f:<family>}, …), so it is atomic and Cluster-safe.
// Any failure to reach Redis is reported as storage.ErrUnavailable, which callers answer with 503.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// Store implements storage.Storage on Redis.
type Store struct {
	rdb goredis.UniversalClient
}

var _ storage.Storage = (*Store)(nil)

// Default timeouts keep a token request's answer within a second when Redis is unreachable.
const (
	DefaultDialTimeout = 500 * time.Millisecond
	DefaultIOTimeout   = 500 * time.Millisecond
)

// Options parses a storage URL into go-redis options:
//
//	redis://[user:pass@]host:port[/db]          single node (rediss:// for TLS)
//	redis+sentinel://[user:pass@]h1:p1,h2:p2/master-name[?db=N]
//	redis+cluster://[user:pass@]h1:p1,h2:p2
//
// Query parameters dial_timeout, read_timeout, write_timeout, pool_timeout (Go durations),
// pool_size and max_retries tune the client.
func Options(raw string) (*goredis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("redis URL %q: missing scheme", raw)
	}
	u, err := url.Parse("redis://" + rest)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	o := &goredis.UniversalOptions{
		Addrs:        strings.Split(u.Host, ","),
		DialTimeout:  DefaultDialTimeout,
		ReadTimeout:  DefaultIOTimeout,
		WriteTimeout: DefaultIOTimeout,
		PoolTimeout:  DefaultIOTimeout,
		// A retry would double the time to a 503; the caller retries instead.
		MaxRetries: -1,
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	path := strings.Trim(u.Path, "/")
	switch scheme {
	case "redis", "rediss":
		if len(o.Addrs) != 1 {
			return nil, fmt.Errorf("redis URL: %s:// takes one host; use redis+cluster:// or redis+sentinel:// for several", scheme)
		}
		if path != "" {
			if o.DB, err = strconv.Atoi(path); err != nil {
				return nil, fmt.Errorf("redis URL: database %q is not a number", path)
			}
		}
		if scheme == "rediss" {
			full, err := goredis.ParseURL(raw)
			if err != nil {
				return nil, err
			}
			o.TLSConfig = full.TLSConfig
		}
	case "redis+sentinel":
		if path == "" {
			return nil, errors.New("redis URL: redis+sentinel:// needs the master name as its path")
		}
		o.MasterName = path
	case "redis+cluster":
		o.IsClusterMode = true
	default:
		return nil, fmt.Errorf("redis URL: unknown scheme %q", scheme)
	}
	q := u.Query()
	for name, dst := range map[string]*time.Duration{"dial_timeout": &o.DialTimeout, "read_timeout": &o.ReadTimeout,
		"write_timeout": &o.WriteTimeout, "pool_timeout": &o.PoolTimeout} {
		if v := q.Get(name); v != "" {
			if *dst, err = time.ParseDuration(v); err != nil {
				return nil, fmt.Errorf("redis URL: %s: %w", name, err)
			}
		}
	}
	for name, dst := range map[string]*int{"pool_size": &o.PoolSize, "max_retries": &o.MaxRetries, "db": &o.DB} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("redis URL: %s: %w", name, err)
			}
		}
	}
	return o, nil
}

// Open connects to the Redis named by a storage URL and checks that it answers.
func Open(ctx context.Context, raw string) (*Store, error) {
	o, err := Options(raw)
	if err != nil {
		return nil, err
	}
	s := New(goredis.NewUniversalClient(o))
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// New wraps an existing client (tests use it to add hooks).
func New(rdb goredis.UniversalClient) *Store { return &Store{rdb: rdb} }

// Client exposes the go-redis client, for hooks and diagnostics.
func (s *Store) Client() goredis.UniversalClient { return s.rdb }

// Key layout; the part in braces is the Cluster hash tag.
func clientKey(id string) string         { return "ts:{c:" + id + "}:client" }
func userKey(name string) string         { return "ts:{n:" + name + "}:user" }
func userIDKey(id string) string         { return "ts:{u:" + id + "}:name" }
func familyKey(fam string) string        { return "ts:{f:" + fam + "}:fam" }
func refreshKey(fam, hash string) string { return "ts:{f:" + fam + "}:rt:" + hash }
func poolKey(p storage.Pool) string {
	return "ts:{c:" + p.ClientID + "}:pool:" + digest(p.Subject, p.Scope, p.Audience)
}
func counterKey(p storage.Pool, d string) string {
	return "ts:{c:" + p.ClientID + "}:day:" + digest(p.Subject) + ":" + d
}

const (
	clientsIndex = "ts:{idx}:clients"
	usersIndex   = "ts:{idx}:users"
	keysKey      = "ts:{keys}"
	replicasLive = "ts:{replicas}:live"
	replicasInfo = "ts:{replicas}:info"
)

// fail maps go-redis errors: redis.Nil is ErrNotFound, everything else means Redis is not
// answering as it should.
func fail(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goredis.Nil):
		return storage.ErrNotFound
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrAlreadyExists):
		return err
	default:
		return fmt.Errorf("%w: %v", storage.ErrUnavailable, err)
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func getJSON[T any](ctx context.Context, rdb goredis.UniversalClient, key string) (T, error) {
	var v T
	b, err := rdb.Get(ctx, key).Bytes()
	if err != nil {
		return v, fail(err)
	}
	return v, json.Unmarshal(b, &v)
}

// CreateClient implements storage.Storage.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	ok, err := s.rdb.SetNX(ctx, clientKey(c.ID), b, 0).Result()
	if err != nil {
		return fail(err)
	}
	if !ok {
		return storage.ErrAlreadyExists
	}
	return fail(s.rdb.SAdd(ctx, clientsIndex, c.ID).Err())
}

// GetClient implements storage.Storage.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	return getJSON[storage.Client](ctx, s.rdb, clientKey(id))
}

// ListClients implements storage.Storage.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	return listIndexed[storage.Client](ctx, s.rdb, clientsIndex, clientKey)
}

// listIndexed reads every record named in an index set, pipelined (go-redis splits the
// pipeline by slot on Cluster). Ids whose record is gone are skipped.
func listIndexed[T any](ctx context.Context, rdb goredis.UniversalClient, index string, key func(string) string) ([]T, error) {
	ids, err := rdb.SMembers(ctx, index).Result()
	if err != nil {
		return nil, fail(err)
	}
	cmds := make([]*goredis.StringCmd, len(ids))
	_, err = rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, key(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fail(err)
	}
	out := make([]T, 0, len(ids))
	for _, c := range cmds {
		b, err := c.Bytes()
		if err != nil {
			continue
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// UpdateClient implements storage.Storage with optimistic locking (WATCH/MULTI).
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(*storage.Client) error) (storage.Client, error) {
	key := clientKey(id)
	var out storage.Client
	for range 200 {
		var own error // an error of fn or of decoding, returned as it is
		err := s.rdb.Watch(ctx, func(tx *goredis.Tx) error {
			b, err := tx.Get(ctx, key).Bytes()
			if err != nil {
				return err
			}
			var c storage.Client
			if own = json.Unmarshal(b, &c); own != nil {
				return own
			}
			if own = fn(&c); own != nil {
				return own
			}
			c.ID = id
			nb, _ := json.Marshal(c)
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.Set(ctx, key, nb, goredis.KeepTTL)
				return nil
			})
			out = c
			return err
		}, key)
		switch {
		case own != nil:
			return out, own
		case errors.Is(err, goredis.TxFailedErr):
			continue
		default:
			return out, fail(err)
		}
	}
	return out, fmt.Errorf("%w: client %s changed concurrently too often", storage.ErrUnavailable, id)
}

// DeleteClient implements storage.Storage.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	n, err := s.rdb.Del(ctx, clientKey(id)).Result()
	if err != nil {
		return fail(err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return fail(s.rdb.SRem(ctx, clientsIndex, id).Err())
}

// CreateUser implements storage.Storage. The record lives under the username, so the
// password grant finds it in one round trip; an id key points back to the username.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	ok, err := s.rdb.SetNX(ctx, userIDKey(u.ID), u.Username, 0).Result()
	if err != nil {
		return fail(err)
	}
	if !ok {
		return storage.ErrAlreadyExists
	}
	ok, err = s.rdb.SetNX(ctx, userKey(u.Username), b, 0).Result()
	if err != nil || !ok {
		s.rdb.Del(ctx, userIDKey(u.ID))
		if err != nil {
			return fail(err)
		}
		return storage.ErrAlreadyExists
	}
	return fail(s.rdb.SAdd(ctx, usersIndex, u.Username).Err())
}

// GetUser implements storage.Storage.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	name, err := s.rdb.Get(ctx, userIDKey(id)).Result()
	if err != nil {
		return storage.User{}, fail(err)
	}
	return s.GetUserByUsername(ctx, name)
}

// GetUserByUsername implements storage.Storage.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	return getJSON[storage.User](ctx, s.rdb, userKey(username))
}

// ListUsers implements storage.Storage.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	return listIndexed[storage.User](ctx, s.rdb, usersIndex, userKey)
}

// DeleteUser implements storage.Storage.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	name, err := s.rdb.Get(ctx, userIDKey(id)).Result()
	if err != nil {
		return fail(err)
	}
	if err := s.rdb.Del(ctx, userKey(name)).Err(); err != nil {
		return fail(err)
	}
	if err := s.rdb.Del(ctx, userIDKey(id)).Err(); err != nil {
		return fail(err)
	}
	return fail(s.rdb.SRem(ctx, usersIndex, name).Err())
}

// EnsureSigningKey implements storage.Storage.
func (s *Store) EnsureSigningKey(ctx context.Context, candidate storage.SigningKey) ([]storage.SigningKey, bool, error) {
	b, err := json.Marshal(candidate)
	if err != nil {
		return nil, false, err
	}
	n, err := ensureKey.Run(ctx, s.rdb, []string{keysKey}, candidate.ID, b).Int()
	if err != nil {
		return nil, false, fail(err)
	}
	keys, err := s.ListSigningKeys(ctx)
	return keys, n == 1, err
}

// ListSigningKeys implements storage.Storage.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	vals, err := s.rdb.HVals(ctx, keysKey).Result()
	if err != nil {
		return nil, fail(err)
	}
	out := make([]storage.SigningKey, 0, len(vals))
	for _, v := range vals {
		var k storage.SigningKey
		if err := json.Unmarshal([]byte(v), &k); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// refreshData is the immutable part of a stored refresh token.
func refreshData(t storage.RefreshToken) ([]byte, error) {
	t.UsedAt, t.Successor = time.Time{}, nil
	return json.Marshal(t)
}

// CreateRefreshToken implements storage.Storage.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	data, err := refreshData(t)
	if err != nil {
		return err
	}
	n, err := createRefresh.Run(ctx, s.rdb, []string{familyKey(t.FamilyID), refreshKey(t.FamilyID, t.Hash)},
		t.ClientID, ms(t.ExpiresAt), data, ms(t.IssuedAt)).Int()
	if err != nil {
		return fail(err)
	}
	if n == 0 {
		return storage.ErrAlreadyExists
	}
	return nil
}

// GetRefreshToken implements storage.Storage.
func (s *Store) GetRefreshToken(ctx context.Context, familyID, hash string) (storage.RefreshToken, error) {
	var t storage.RefreshToken
	m, err := s.rdb.HGetAll(ctx, refreshKey(familyID, hash)).Result()
	if err != nil {
		return t, fail(err)
	}
	if m["data"] == "" {
		return t, storage.ErrNotFound
	}
	if err := json.Unmarshal([]byte(m["data"]), &t); err != nil {
		return t, err
	}
	if used, err := strconv.ParseInt(m["used"], 10, 64); err == nil {
		t.UsedAt = time.UnixMilli(used).UTC()
	}
	if m["succ"] != "" {
		t.Successor = []byte(m["succ"])
	}
	return t, nil
}

// RotateRefreshToken implements storage.Storage.
func (s *Store) RotateRefreshToken(ctx context.Context, r storage.Rotation) (storage.Rotated, error) {
	var data []byte
	if r.Next.Hash != "" {
		var err error
		if data, err = refreshData(r.Next); err != nil {
			return storage.Rotated{}, err
		}
	}
	res, err := rotate.Run(ctx, s.rdb,
		[]string{refreshKey(r.FamilyID, r.Hash), familyKey(r.FamilyID), refreshKey(r.FamilyID, r.Next.Hash)},
		r.ClientID, ms(r.Now), r.Grace.Milliseconds(), r.Sealed, ms(r.Next.ExpiresAt), data).StringSlice()
	if err != nil {
		return storage.Rotated{}, fail(err)
	}
	switch res[0] {
	case "fresh":
		return storage.Rotated{Fresh: true, Sealed: []byte(res[1])}, nil
	case "grace":
		return storage.Rotated{Sealed: []byte(res[1])}, nil
	case "revoked":
		return storage.Rotated{}, storage.ErrRevoked
	case "replay":
		return storage.Rotated{}, storage.ErrReplay
	default:
		return storage.Rotated{}, storage.ErrNotFound
	}
}

// RevokeFamily implements storage.Storage.
func (s *Store) RevokeFamily(ctx context.Context, familyID string) error {
	n, err := revokeFamily.Run(ctx, s.rdb, []string{familyKey(familyID)}).Int()
	if err != nil {
		return fail(err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// FamilyRevoked implements storage.Storage; an expired family counts as revoked.
func (s *Store) FamilyRevoked(ctx context.Context, familyID string) (bool, error) {
	v, err := s.rdb.HMGet(ctx, familyKey(familyID), "revoked", "exp").Result()
	if err != nil {
		return false, fail(err)
	}
	return v[1] == nil || v[0] == "1", nil
}

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
		var r storage.Replica
		if err := json.Unmarshal([]byte(str), &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Admit implements storage.Storage.
func (s *Store) Admit(ctx context.Context, a storage.Admission) (storage.Admitted, error) {
	res, err := admit.Run(ctx, s.rdb, []string{poolKey(a.Pool), counterKey(a.Pool, a.Day)},
		ms(a.Now), flag(a.Reuse), a.MinRemaining.Milliseconds(), a.Capacity, a.Reservation, ms(a.ReserveUntil),
		a.Limit, ms(a.ResetAt)).StringSlice()
	if err != nil {
		return storage.Admitted{}, fail(err)
	}
	switch res[0] {
	case "reused":
		_, payload, _ := strings.Cut(res[1], "|T|")
		var t storage.PooledToken
		if err := json.Unmarshal([]byte(payload), &t); err != nil {
			return storage.Admitted{}, err
		}
		return storage.Admitted{Reused: &t}, nil
	case "limited":
		return storage.Admitted{Limited: true}, nil
	case "busy":
		return storage.Admitted{Busy: true}, nil
	default:
		return storage.Admitted{Allowed: true}, nil
	}
}

// Settle implements storage.Storage.
func (s *Store) Settle(ctx context.Context, st storage.Settlement) error {
	a := st.Admission
	var jti string
	var until int64
	var payload []byte
	if st.Token != nil {
		var err error
		if payload, err = json.Marshal(st.Token); err != nil {
			return err
		}
		jti, until = st.Token.JTI, ms(st.Token.ExpiresAt)
	}
	return fail(settle.Run(ctx, s.rdb, []string{poolKey(a.Pool), counterKey(a.Pool, a.Day)},
		flag(a.Reuse), a.Reservation, jti, until, payload, a.Limit, ms(a.Now)).Err())
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Ping implements storage.Storage.
func (s *Store) Ping(ctx context.Context) error { return fail(s.rdb.Ping(ctx).Err()) }

// Close implements storage.Storage.
func (s *Store) Close() error { return s.rdb.Close() }

// slogAdapter sends go-redis's own messages (Sentinel failovers, reconnects) to our logger.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	a.log.InfoContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// SetLogger routes go-redis's messages to log. go-redis has one process-wide logger.
func SetLogger(log *slog.Logger) { goredis.SetLogger(slogAdapter{log}) }
