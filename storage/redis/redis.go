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
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// Store implements storage.Storage on Redis.
type Store struct {
	rdb goredis.UniversalClient
	// minReplicas and replicaTimeout are the storage URL's min_replicas and replica_timeout:
	// every write an answer depends on waits for that many replicas (confirm.go).
	minReplicas    int
	replicaTimeout time.Duration
	// waits, if set, hears of every WAIT (ObserveWaits).
	waits atomic.Pointer[WaitObserver]
	// index builds the client index of a store written before it existed (owners.go).
	index indexBuild
}

var _ storage.Storage = (*Store)(nil)

// Default timeouts keep a token request's answer within a second when Redis is unreachable.
const (
	DefaultDialTimeout = 500 * time.Millisecond
	DefaultIOTimeout   = 500 * time.Millisecond
	// DefaultBufferSize is each connection's read and write buffer.
	DefaultBufferSize = 4 << 10
	// DefaultReplicaTimeout is how long a write waits for its replicas by default.
	DefaultReplicaTimeout = 500 * time.Millisecond
)

// Config is a parsed storage URL: the go-redis client options and how many replicas must
// confirm a write.
type Config struct {
	Client *goredis.UniversalOptions
	// MinReplicas replicas (of the written key's shard, on a Cluster) must confirm every write
	// an answer depends on within ReplicaTimeout; 0 turns the wait off.
	MinReplicas    int
	ReplicaTimeout time.Duration
}

// Options parses a storage URL into go-redis options (see Parse); the replica settings are
// checked but not returned (the audit sink writes without waiting for replicas).
func Options(raw string) (*goredis.UniversalOptions, error) {
	c, err := Parse(raw)
	return c.Client, err
}

// Redact is raw with everything between the scheme and the last @ replaced by ***, for every
// place a storage URL is shown (start line, audit label, errors). The last @, not the first:
// a password may hold @ and : unescaped, and showing too little of a host is harmless where
// showing part of a password is not. Without a scheme it is no URL (a file store's path) and
// is shown as it is.
func Redact(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	if j := strings.Index(raw, "://"); j >= 0 && j < at {
		return raw[:j+3] + "***" + raw[at:]
	}
	return raw
}

// Parse reads a storage URL:
//
//	redis://[user:pass@]host:port[/db]          single node (rediss:// for TLS)
//	redis+sentinel://[user:pass@]h1:p1,h2:p2/master-name[?db=N]
//	redis+cluster://[user:pass@]h1:p1,h2:p2
//
// Query parameters tune the client: dial_timeout, read_timeout, write_timeout, pool_timeout
// (Go durations), pool_size, max_retries and db; min_replicas and replica_timeout set how
// many replicas confirm a write (1 and 500ms on Sentinel and Cluster, 0 on a single node);
// skip_verify (rediss:// only) turns off the server certificate check. Any other parameter,
// and any value out of its bounds, is an error naming it.
func Parse(raw string) (Config, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		// Not shown: without a scheme nothing says where a password would end.
		return Config{}, errors.New("redis URL: missing scheme")
	}
	u, err := url.Parse("redis://" + rest)
	if err != nil {
		// url.Error repeats the whole URL, password included: keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Config{}, fmt.Errorf("redis URL %s: %w", Redact(raw), err)
	}
	o := &goredis.UniversalOptions{
		Addrs:        strings.Split(u.Host, ","),
		DialTimeout:  DefaultDialTimeout,
		ReadTimeout:  DefaultIOTimeout,
		WriteTimeout: DefaultIOTimeout,
		PoolTimeout:  DefaultIOTimeout,
		// A retry would double the time to a 503; the caller retries instead.
		MaxRetries: -1,
		// go-redis gives every connection 32 KiB buffers each way and every pipelining one
		// 128 KiB: 4 MiB at 16 requests in flight, for records of a few hundred bytes and
		// pipelines of a script and a WAIT. Larger replies (an export's batches) are read
		// through the buffer in more reads, not refused.
		ReadBufferSize: DefaultBufferSize, WriteBufferSize: DefaultBufferSize,
		PipelineReadBufferSize: DefaultBufferSize, PipelineWriteBufferSize: DefaultBufferSize,
	}
	c := Config{Client: o, ReplicaTimeout: DefaultReplicaTimeout}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	q := u.Query()
	path := strings.Trim(u.Path, "/")
	switch scheme {
	case "redis", "rediss":
		if len(o.Addrs) != 1 {
			return Config{}, fmt.Errorf("redis URL: %s:// takes one host; use redis+cluster:// or redis+sentinel:// for several", scheme)
		}
		if path != "" {
			if o.DB, err = strconv.Atoi(path); err != nil {
				return Config{}, fmt.Errorf("redis URL: database %q is not a number", path)
			}
		}
		if scheme == "rediss" {
			// go-redis reads the TLS settings; it is given only the parameters it knows.
			tlsURL := *u
			tlsURL.Scheme, tlsURL.RawQuery = "rediss", ""
			if v, ok := q["skip_verify"]; ok {
				tlsURL.RawQuery = url.Values{"skip_verify": v}.Encode()
			}
			full, err := goredis.ParseURL(tlsURL.String())
			if err != nil {
				return Config{}, fmt.Errorf("redis URL: %w", err)
			}
			o.TLSConfig = full.TLSConfig
		} else if q.Has("skip_verify") {
			return Config{}, errors.New("redis URL: skip_verify: only rediss:// has a certificate to verify")
		}
	case "redis+sentinel":
		if path == "" {
			return Config{}, errors.New("redis URL: redis+sentinel:// needs the master name as its path")
		}
		o.MasterName = path
		c.MinReplicas = 1
	case "redis+cluster":
		o.IsClusterMode = true
		c.MinReplicas = 1
	default:
		return Config{}, fmt.Errorf("redis URL: unknown scheme %q", scheme)
	}
	if err := c.query(q); err != nil {
		return Config{}, fmt.Errorf("redis URL: %w", err)
	}
	if o.IsClusterMode && o.DB != 0 {
		return Config{}, errors.New("redis URL: db: Redis Cluster has only database 0")
	}
	if c.MinReplicas > 0 {
		// WAIT holds a write's answer for up to replica_timeout: its read may take that long
		// beyond read_timeout.
		o.ReadTimeout += c.ReplicaTimeout
	}
	return c, nil
}

// Bounds of the URL's parameters: past them a setting is a typo (pool_size=-5 would panic in
// go-redis, pool_size=1000000000 exhaust memory), not a choice.
var (
	durationParams = map[string]struct{ min, max time.Duration }{
		"dial_timeout": {time.Millisecond, time.Minute}, "read_timeout": {time.Millisecond, time.Minute},
		"write_timeout": {time.Millisecond, time.Minute}, "pool_timeout": {time.Millisecond, time.Minute},
		"replica_timeout": {10 * time.Millisecond, 10 * time.Second},
	}
	intParams = map[string]struct{ min, max int }{
		"pool_size": {1, 10000}, "max_retries": {-1, 10}, "db": {0, 10000}, "min_replicas": {0, 10},
	}
)

// query applies the URL's parameters to c, refusing unknown ones and values out of bounds.
func (c *Config) query(q url.Values) error {
	o := c.Client
	durations := map[string]*time.Duration{"dial_timeout": &o.DialTimeout, "read_timeout": &o.ReadTimeout,
		"write_timeout": &o.WriteTimeout, "pool_timeout": &o.PoolTimeout, "replica_timeout": &c.ReplicaTimeout}
	ints := map[string]*int{"pool_size": &o.PoolSize, "max_retries": &o.MaxRetries, "db": &o.DB, "min_replicas": &c.MinReplicas}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := q.Get(name)
		if len(q[name]) > 1 {
			return fmt.Errorf("%s: given %d times", name, len(q[name]))
		}
		if dst, ok := durations[name]; ok {
			b := durationParams[name]
			d, err := time.ParseDuration(v)
			if err != nil || d < b.min || d > b.max {
				return fmt.Errorf("%s: %q is not a duration from %v to %v", name, v, b.min, b.max)
			}
			*dst = d
			continue
		}
		if dst, ok := ints[name]; ok {
			b := intParams[name]
			n, err := strconv.Atoi(v)
			if err != nil || n < b.min || n > b.max {
				return fmt.Errorf("%s: %q is not a whole number from %d to %d", name, v, b.min, b.max)
			}
			*dst = n
			continue
		}
		if name != "skip_verify" {
			return fmt.Errorf("unknown parameter %q (known: db, dial_timeout, max_retries, min_replicas, pool_size, pool_timeout, read_timeout, replica_timeout, skip_verify, write_timeout)", name)
		}
	}
	return nil
}

// Open connects to the Redis named by a storage URL and checks that it answers.
func Open(ctx context.Context, raw string) (*Store, error) {
	c, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	s := New(goredis.NewUniversalClient(c.Client))
	s.minReplicas, s.replicaTimeout = c.MinReplicas, c.ReplicaTimeout
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// Loaded once here (on every master of a Cluster), a script's first use costs no NOSCRIPT
	// round trip; after a Redis restart go-redis and pipelined fall back to loading it again.
	for _, sc := range allScripts {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			s.Close()
			return nil, fail(err)
		}
	}
	return s, nil
}

// New wraps an existing client (tests use it to add hooks).
func New(rdb goredis.UniversalClient) *Store { return &Store{rdb: rdb} }

// Client exposes the go-redis client, for hooks and diagnostics.
func (s *Store) Client() goredis.UniversalClient { return s.rdb }

// Key layout; the part in braces is the Cluster hash tag, so every key one step touches shares
// a slot:
//
//	ts:{clients}                   hash  client id → client JSON
//	ts:{clients}:gone              hash  deleted client id → deletion time (ms)
//	ts:{clients}:owned:<user>      set   the ids of the clients a user owns (owners.go)
//	ts:{clients}:longest / :indexed  the longest access token lifetime (ms); index complete
//	ts:{clients}:fed:<iss>\n<sub>  set   ids of the clients that list a federated identity
//	ts:{users}:byid / :byname      hashes  user id → user JSON, folded username → user id
//	ts:{users}:lf:<u>[:<addr>]     failed-login counts (digests of username and address)
//	ts:{users}:pat / :patused      hashes  personal token id → JSON, → last-used time (ms)
//	ts:{users}:pats:<user>         set   a user's personal token ids
//	ts:{keys} / ts:{keys}:v         hash  kid → signing key; its version
//	ts:{f:<family>}:fam            hash  a refresh family and its current token (scripts.go)
//	ts:{f:<family>}:ru:<h>         string  a used refresh token, until it expires
//	ts:{f:<family>}:rt:<h>         hash  a token of the earlier layout, or restored beside another
//	ts:{c:<client>}:pool:<d>       a reuse pool; :day:<d>:<day> a daily count
//	ts:{c:<client>}:rj:<jti>       a revoked access token; :rf:<family> a revoked family
//	ts:{replicas}:live / :info     heartbeats
//
// Keeping all clients (and all users) under one tag makes creating or deleting one a single
// atomic command or script; the token path reads a client at most once per client_cache_ttl
// and a user once per password login, so one slot carries that load easily.
const (
	clientsKey   = "ts:{clients}"
	goneKey      = "ts:{clients}:gone"
	usersByID    = "ts:{users}:byid"
	usersByName  = "ts:{users}:byname"
	keysKey      = "ts:{keys}"
	keysVersion  = "ts:{keys}:v"
	replicasLive = "ts:{replicas}:live"
	replicasInfo = "ts:{replicas}:info"
	changesChan  = "ts:changes"
)

func familyKey(fam string) string        { return "ts:{f:" + fam + "}:fam" }
func refreshKey(fam, hash string) string { return "ts:{f:" + fam + "}:rt:" + hash }
func usedKey(fam, hash string) string    { return "ts:{f:" + fam + "}:ru:" + hash }

// usedKeyParts is the family and hash a usedKey names.
func usedKeyParts(key string) (fam, hash string, ok bool) {
	rest, ok := strings.CutPrefix(key, "ts:{f:")
	if !ok {
		return "", "", false
	}
	fam, hash, ok = strings.Cut(rest, "}:ru:")
	return fam, hash, ok && usedKey(fam, hash) == key
}

// refreshKeyParts is the family and hash a refreshKey names.
func refreshKeyParts(key string) (fam, hash string, ok bool) {
	rest, ok := strings.CutPrefix(key, "ts:{f:")
	if !ok {
		return "", "", false
	}
	fam, hash, ok = strings.Cut(rest, "}:rt:")
	return fam, hash, ok
}
func clientTag(id string) string { return "ts:{c:" + id + "}:" }
func poolKey(p storage.Pool) string {
	return clientTag(p.ClientID) + "pool:" + p.Digest()
}
func counterKey(p storage.Pool, d string) string {
	return clientTag(p.ClientID) + "day:" + storage.KeyDigest(p.Incarnation, p.Subject) + ":" + d
}
func hourKey(p storage.Pool, h string) string {
	return clientTag(p.ClientID) + "hour:" + storage.KeyDigest(p.Incarnation, p.Subject) + ":" + h
}
func revokedJTIKey(client, jti string) string    { return clientTag(client) + "rj:" + jti }
func revokedFamilyKey(client, fam string) string { return clientTag(client) + "rf:" + fam }
func assertionKey(client, jti string) string     { return clientTag(client) + "as:" + jti }

// fail maps go-redis errors: redis.Nil is ErrNotFound, everything else means Redis is not
// answering as it should.
func fail(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goredis.Nil):
		return storage.ErrNotFound
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrAlreadyExists), errors.Is(err, storage.ErrUnavailable),
		errors.Is(err, storage.ErrCredentialsChanged), errors.Is(err, storage.ErrLimitReached):
		return err
	default:
		return fmt.Errorf("%w: %v", storage.ErrUnavailable, err)
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func decode[T any](s string) (T, error) {
	var v T
	err := json.Unmarshal([]byte(s), &v)
	return v, err
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
