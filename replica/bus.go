package replica

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/tokensmith/tokensmith/storage"
)

// Feed is the part of the store that carries changes between replicas.
type Feed interface {
	Publish(ctx context.Context, c storage.Change) error
	Watch(ctx context.Context, fn func(storage.Change), healthy func(bool))
}

// Bus makes an admin change take effect on every replica at once. The replica that makes a
// change drops its own cached copies before it answers (Announce), so its very next request
// sees the change; the others hear of it through the store's change feed. While the feed is
// down a replica cannot know what it missed, so Healthy turns false and caches must not be
// trusted; when the feed is back, every handler is told to drop everything (a Change with an
// empty Kind) before Healthy turns true again.
type Bus struct {
	feed    Feed
	log     *slog.Logger
	healthy atomic.Bool

	mu       sync.Mutex
	handlers []func(storage.Change)
}

// NewBus returns a bus on feed; it is unhealthy until Run has subscribed.
func NewBus(feed Feed, log *slog.Logger) *Bus { return &Bus{feed: feed, log: log} }

// Handle registers fn for every change, local or from another replica. fn must be quick and
// safe for concurrent use.
func (b *Bus) Handle(fn func(storage.Change)) {
	b.mu.Lock()
	b.handlers = append(b.handlers, fn)
	b.mu.Unlock()
}

func (b *Bus) deliver(c storage.Change) {
	b.mu.Lock()
	hs := b.handlers
	b.mu.Unlock()
	for _, h := range hs {
		h(c)
	}
}

// Healthy reports whether every change made anywhere is reaching this replica.
func (b *Bus) Healthy() bool { return b.healthy.Load() }

// Announce applies c on this replica, then tells the others. A failure to publish is returned:
// the other replicas then learn of the change only when their feed or their cache's TTL says so.
func (b *Bus) Announce(ctx context.Context, c storage.Change) error {
	b.deliver(c)
	return b.feed.Publish(ctx, c)
}

// Run follows the feed until ctx ends.
func (b *Bus) Run(ctx context.Context) {
	b.feed.Watch(ctx, b.deliver, func(ok bool) {
		switch {
		case ok && !b.healthy.Load():
			b.deliver(storage.Change{})
			b.healthy.Store(true)
			b.log.Info("change feed connected")
		case !ok && b.healthy.Load():
			b.healthy.Store(false)
			if ctx.Err() == nil {
				b.log.Warn("change feed lost; caches are bypassed until it is back")
			}
		}
	})
}
