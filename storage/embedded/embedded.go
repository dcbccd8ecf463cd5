// Package embedded is the in-process storage backend behind memory: and file: URLs. It uses
// buntdb (the store go-oauth2 already ships with): one writer at a time, so every Update
// transaction is atomic, per-key TTLs for records that expire, and an append-only file with
// fsync on every commit for file:, so a token that was answered is never lost by a crash.
//
// One process owns an embedded store, so it is always exactly one replica: the change feed is
// in-process and the failed-login counts live in memory.
package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/sync/semaphore"
)

// Store implements storage.Storage on buntdb.
type Store struct {
	db *buntdb.DB
	// lock admits many readers or one writer, like buntdb's own lock, but a caller waiting
	// for it gives up when its context ends: a slow or stuck transaction turns later calls
	// into ErrUnavailable instead of hanging them (and every request, /readyz and shutdown
	// behind them). It is FIFO, so a waiting writer is not starved by readers.
	lock   *semaphore.Weighted
	logins *throttle

	mu       sync.Mutex
	watchers map[int]func(storage.Change)
	nextID   int

	// path is the data file ("" in memory) and loaded its size once opened: Close rewrites a
	// file that changed since (sortFile).
	path   string
	loaded int64
}

var _ storage.Storage = (*Store)(nil)

// OpenMemory opens a store that lives only as long as the process.
func OpenMemory() (*Store, error) { return open(":memory:") }

// OpenFile opens (creating if needed) a store persisted at path.
func OpenFile(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	s, err := open(path)
	if err != nil {
		return nil, err
	}
	// The file holds the signing keys: readable by this user only.
	if err := os.Chmod(path, 0o600); err != nil {
		s.Close()
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	s.path = path
	if fi, err := os.Stat(path); err == nil {
		s.loaded = fi.Size()
	}
	return s, nil
}

func open(path string) (*Store, error) {
	db, err := buntdb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("embedded store %s: %w", path, err)
	}
	var cfg buntdb.Config
	if err := db.ReadConfig(&cfg); err != nil {
		return nil, err
	}
	// Every commit reaches the disk before the caller answers: a refresh token we handed out
	// must survive a crash, or its holder is locked out.
	cfg.SyncPolicy = buntdb.Always
	if err := db.SetConfig(cfg); err != nil {
		return nil, err
	}
	if err := indexClients(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded store %s: indexing clients: %w", path, err)
	}
	return &Store{db: db, lock: semaphore.NewWeighted(writerWeight), logins: newThrottle(), watchers: map[int]func(storage.Change){}}, nil
}

// writerWeight is the whole lock: a writer excludes every reader.
const writerWeight = 1 << 30

func (s *Store) acquire(ctx context.Context, n int64) error {
	if err := s.lock.Acquire(ctx, n); err != nil {
		return fmt.Errorf("%w: embedded store busy: %v", storage.ErrUnavailable, err)
	}
	return nil
}

// update runs fn in a writing transaction, or fails with ErrUnavailable when ctx ends first.
func (s *Store) update(ctx context.Context, fn func(tx *buntdb.Tx) error) error {
	if err := s.acquire(ctx, writerWeight); err != nil {
		return err
	}
	defer s.lock.Release(writerWeight)
	return s.db.Update(fn)
}

// view runs fn in a reading transaction, or fails with ErrUnavailable when ctx ends first.
func (s *Store) view(ctx context.Context, fn func(tx *buntdb.Tx) error) error {
	if err := s.acquire(ctx, 1); err != nil {
		return err
	}
	defer s.lock.Release(1)
	return s.db.View(fn)
}

// Key layout. Refresh tokens and their family share the family id in their keys, the same
// grouping the Redis backend uses as a Cluster hash tag. Client ids may hold any printable
// character, '*' and '?' included, so they never appear in a key that is matched as a pattern.
func clientKey(id string) string         { return "client:" + id }
func goneKey(id string) string           { return "gone:" + id }
func userKey(id string) string           { return "user:" + id }
func usernameKey(name string) string     { return usernameIndex(storage.FoldUsername(name)) }
func usernameIndex(form string) string   { return "username:" + form }
func signingKeyKey(kid string) string    { return "key:" + kid }
func familyKey(fam string) string        { return "fam:" + fam }
func refreshKey(fam, hash string) string { return "rt:" + fam + ":" + hash }
func revokedKey(client, jti string) string {
	return "revoked:" + storage.KeyDigest(client) + ":" + jti
}

func get[T any](tx *buntdb.Tx, key string) (T, error) {
	var v T
	s, err := tx.Get(key)
	if errors.Is(err, buntdb.ErrNotFound) {
		return v, storage.ErrNotFound
	}
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return v, fmt.Errorf("embedded store: decode %s: %w", key, err)
	}
	return v, nil
}

// put stores v under key. A non-zero expiresAt makes buntdb drop it expiresAt-now later: the
// lifetime is measured on the caller's clock (now), never on the wall clock, so a caller that
// passes its own time (tests, a replica with a skewed clock) gets the lifetime it asked for.
// Whether a record is still valid is always decided against the caller's now as well; buntdb's
// expiry only collects garbage.
func put(tx *buntdb.Tx, key string, v any, now, expiresAt time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, _, err = tx.Set(key, string(b), expiry(now, expiresAt))
	return err
}

// expiry is the buntdb option for a record that lives until expiresAt on a clock reading now;
// nil (kept for good) when expiresAt is zero.
func expiry(now, expiresAt time.Time) *buntdb.SetOptions {
	if expiresAt.IsZero() {
		return nil
	}
	return &buntdb.SetOptions{Expires: true, TTL: max(expiresAt.Sub(now), time.Millisecond)}
}

// replace overwrites the record under key and keeps the time it has left.
func replace(tx *buntdb.Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var opts *buntdb.SetOptions
	if ttl, err := tx.TTL(key); err == nil && ttl > 0 {
		opts = &buntdb.SetOptions{Expires: true, TTL: ttl}
	}
	_, _, err = tx.Set(key, string(b), opts)
	return err
}

func exists(tx *buntdb.Tx, key string) bool {
	_, err := tx.Get(key)
	return err == nil
}

func list[T any](ctx context.Context, s *Store, prefix string) ([]T, error) {
	var out []T
	err := s.view(ctx, func(tx *buntdb.Tx) error {
		var derr error
		err := tx.AscendKeys(prefix+"*", func(k, v string) bool {
			var item T
			if derr = json.Unmarshal([]byte(v), &item); derr != nil {
				return false
			}
			out = append(out, item)
			return true
		})
		if err != nil {
			return err
		}
		return derr
	})
	return out, err
}

func getOne[T any](ctx context.Context, s *Store, key string) (v T, err error) {
	err = s.view(ctx, func(tx *buntdb.Tx) error {
		v, err = get[T](tx, key)
		return err
	})
	return v, err
}

// Ping implements storage.Storage.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, func(*buntdb.Tx) error { return nil })
}

// Close implements storage.Storage. A data file written since it was opened is first
// rewritten in key order (sortFile).
func (s *Store) Close() error {
	if s.path != "" {
		s.sortFile()
	}
	return s.db.Close()
}

// A start replays the data file into buntdb's B-trees, and the order of its records decides
// what that costs: records in key order are appended along the right edge of a tree that stays
// in the CPU caches, records in the order they were written (random ids, token hashes) each
// walk to a cold leaf. At a million clients and refresh tokens the file in key order loaded
// in 4 s, in write order in 26 s. buntdb's Shrink writes the live records in key order, so
// Close runs it on a file that changed since it was opened and is large enough for the order
// to matter; buntdb also runs it by itself whenever the file doubles. A start after a crash
// replays the records written since in write order.
const (
	sortMinSize = 8 << 20
	// sortBudget bounds what a shutdown spends on it. Shrink writes a temporary file and
	// renames it over the data file only when complete, so one cut short (the store closes
	// under it) leaves the file as it was.
	sortBudget = 20 * time.Second
)

// sortFile rewrites the data file in key order if it changed since it was opened, and makes
// the rewritten file durable before Close returns.
func (s *Store) sortFile() {
	fi, err := os.Stat(s.path)
	if err != nil || fi.Size() < sortMinSize || fi.Size() == s.loaded {
		return
	}
	deadline := time.Now().Add(sortBudget)
	done := make(chan error, 1)
	go func() {
		// One buntdb started by itself writes the file as it was when it began: wait for it,
		// then write what came after in order too.
		err := s.db.Shrink()
		for errors.Is(err, buntdb.ErrShrinkInProcess) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			err = s.db.Shrink()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(time.Until(deadline)):
		return
	}
	if err != nil {
		return
	}
	// Shrink renames its file over the data file without syncing it.
	if f, err := os.Open(s.path); err == nil {
		_ = f.Sync()
		_ = f.Close()
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
