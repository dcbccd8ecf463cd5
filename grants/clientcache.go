package grants

import (
	"sync"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// clientCache keeps client records for a short time, so a token request costs no store round
// trip for the client on the hot path. A change made on another replica (a deleted client, a
// rotated secret's old value) is seen within the TTL; a new secret works at once, because a
// failed comparison re-reads the store.
type clientCache struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]cachedClient
}

type cachedClient struct {
	c     storage.Client
	until time.Time
}

// maxCachedClients bounds memory; past it the cache starts over.
const maxCachedClients = 10_000

func newClientCache(ttl time.Duration, now func() time.Time) *clientCache {
	return &clientCache{ttl: ttl, now: now, m: map[string]cachedClient{}}
}

func (cc *clientCache) get(id string) (storage.Client, bool) {
	if cc.ttl <= 0 {
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
