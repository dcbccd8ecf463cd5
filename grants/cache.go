package grants

import (
	"sync"
	"time"
)

// cache keeps records (clients, personal tokens) for a short time, so a request costs no store
// round trip for them on the hot path. An admin change drops the record on every replica
// through the change feed (Service.Forget); while the feed is down (trusted false) the cache
// is not used at all, so the TTL only bounds staleness if a change notice is lost without the
// feed noticing. For clients, a new secret works at once regardless, because a failed
// comparison re-reads the store.
type cache[T any] struct {
	ttl     time.Duration
	now     func() time.Time
	trusted func() bool
	mu      sync.Mutex
	m       map[string]cached[T]
}

type cached[T any] struct {
	v     T
	until time.Time
}

// maxCached bounds memory; past it the cache starts over.
const maxCached = 10_000

func newCache[T any](ttl time.Duration, now func() time.Time, trusted func() bool) *cache[T] {
	return &cache[T]{ttl: ttl, now: now, trusted: trusted, m: map[string]cached[T]{}}
}

func (c *cache[T]) get(id string) (T, bool) {
	var zero T
	if c.ttl <= 0 || !c.trusted() {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || !c.now().Before(e.until) {
		return zero, false
	}
	return e.v, true
}

func (c *cache[T]) put(id string, v T) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		clear(c.m)
	}
	c.m[id] = cached[T]{v: v, until: c.now().Add(c.ttl)}
}

func (c *cache[T]) drop(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// dropIf drops every record for which match is true.
func (c *cache[T]) dropIf(match func(T) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if match(e.v) {
			delete(c.m, k)
		}
	}
}

func (c *cache[T]) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
