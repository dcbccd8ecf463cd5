// Package replica keeps this process registered among the replicas that share the store: it
// heartbeats every third of the timeout, and keeps the number of live replicas in memory so
// the token path can size reuse pools without asking the store. A replica that stops
// heartbeating drops out once its last heartbeat expires.
package replica

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// Store is the part of the store membership uses.
type Store interface {
	Heartbeat(ctx context.Context, r storage.Replica, now time.Time) error
	Replicas(ctx context.Context, now time.Time) ([]storage.Replica, error)
}

// Registry is this process's membership.
type Registry struct {
	store   Store
	self    storage.Replica
	timeout time.Duration
	log     *slog.Logger
	live    atomic.Int64
}

// New describes this process; Run makes it known.
func New(store Store, timeout time.Duration, version string, log *slog.Logger) *Registry {
	host, _ := os.Hostname()
	r := &Registry{
		store: store, timeout: timeout, log: log,
		self: storage.Replica{ID: host + "-" + secret.New(6), Hostname: host, Version: version, StartedAt: time.Now().UTC()},
	}
	r.live.Store(1)
	return r
}

// ID is this replica's id.
func (r *Registry) ID() string { return r.self.ID }

// Live is the number of live replicas, at least 1 (this one).
func (r *Registry) Live() int { return int(max(r.live.Load(), 1)) }

// Sole forgets every other replica the store lists. It is for a store that one process owns
// at a time (the embedded store, which serve locks): any heartbeat in it was left by a process
// that is gone without deregistering, a crash, and would otherwise count, and size reuse
// pools, until it expired.
func (r *Registry) Sole(ctx context.Context) error {
	now := time.Now()
	all, err := r.store.Replicas(ctx, now)
	if err != nil {
		return err
	}
	for _, other := range all {
		if other.ID == r.self.ID {
			continue
		}
		other.ExpiresAt = now.Add(-time.Millisecond).UTC()
		if err := r.store.Heartbeat(ctx, other, now); err != nil {
			return err
		}
		r.log.Info("forgot a replica left in the embedded store by a process that did not stop cleanly", "replica", other.ID)
	}
	return nil
}

// Beat heartbeats once and refreshes the live count.
func (r *Registry) Beat(ctx context.Context) error {
	now := time.Now()
	rep := r.self
	rep.ExpiresAt = now.Add(r.timeout).UTC()
	if err := r.store.Heartbeat(ctx, rep, now); err != nil {
		return err
	}
	all, err := r.store.Replicas(ctx, now)
	if err != nil {
		return err
	}
	r.live.Store(int64(len(all)))
	return nil
}

// Run heartbeats until ctx ends, then deregisters so the others stop counting this replica.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.timeout / 3)
	defer t.Stop()
	failing := false
	for {
		bctx, cancel := context.WithTimeout(ctx, r.timeout/3)
		err := r.Beat(bctx)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			r.log.Warn("replica heartbeat failed; keeping the last live count", "error", err)
			failing = true
		case err == nil && failing:
			r.log.Info("replica heartbeat recovered", "live", r.Live())
			failing = false
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			rep := r.self
			now := time.Now()
			rep.ExpiresAt = now.Add(-time.Millisecond).UTC()
			_ = r.store.Heartbeat(dctx, rep, now)
			cancel()
			return
		case <-t.C:
		}
	}
}
