package grants

import (
	"sync"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// clientCache keeps client records for a short time, so a token request costs no store round
// trip for the client on the hot path. An admin change drops the record on every replica through
// the change feed (Handler.Forget); while the feed is down (trusted false) the cache is not used
// at all, so the TTL only bounds staleness if a change notice is lost without the feed
// noticing. A new secret works at once regardless, because a failed comparison re-reads the
// store.
type clientCache struct {
	ttl     time.Duration
	now     func() time.Time
	trusted func() bool
	mu      sync.Mutex
	m       map[string]cachedClient
}

type cachedClient struct {
	c     storage.Client
	until time.Time
}

// maxCachedClients bounds memory; past it the cache starts over.
const maxCachedClients = 10_000

func newClientCache(ttl time.Duration, now func() time.Time, trusted func() bool) *clientCache {
	return &clientCache{ttl: ttl, now: now, trusted: trusted, m: map[string]cachedClient{}}
}

func (cc *clientCache) get(id string) (storage.Client, bool) {
	if cc.ttl <= 0 || !cc.trusted() {
		return storage.Client{}, false
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.m[id]
	if !ok || !cc.now().Before(e.until) {
		return storage.Client{}, false
	}
	return e.c, true
}

func (cc *clientCache) put(c storage.Client) {
	if cc.ttl <= 0 {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.m) >= maxCachedClients {
		clear(cc.m)
	}
	cc.m[c.ID] = cachedClient{c: c, until: cc.now().Add(cc.ttl)}
}

func (cc *clientCache) drop(id string) {
	cc.mu.Lock()
	delete(cc.m, id)
	cc.mu.Unlock()
}

func (cc *clientCache) clear() {
	cc.mu.Lock()
	clear(cc.m)
	cc.mu.Unlock()
}
