package server

import (
	"sync"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// Admin authentication failures: each address that presents a missing or wrong admin token
// adminAuthFreeFailures times in a row then waits 1 s, 2 s, 4 s … up to adminAuthMaxDelay
// before its next request is even looked at; its count lapses adminAuthWindow after its last
// failure. A 128-bit token cannot be guessed anyway (config refuses weaker ones); this turns
// a scanner or a script with a stale token into a few requests a minute and a metric, not a
// flood.
const (
	adminAuthFreeFailures = 5
	adminAuthMaxDelay     = time.Minute
	adminAuthWindow       = 15 * time.Minute
	// adminAuthMaxAddrs bounds the memory a spray of addresses can take; past it, new
	// addresses share one count.
	adminAuthMaxAddrs = 4096
)

// authGuard counts admin authentication failures per address, in memory: the admin listener
// is private, and each replica guards its own.
type authGuard struct {
	mu     sync.Mutex
	byAddr map[string]*authFailures
}

type authFailures struct {
	count int
	last  time.Time
	until time.Time
}

func newAuthGuard() *authGuard { return &authGuard{byAddr: map[string]*authFailures{}} }

// wait is how long addr must still wait before its next attempt is checked.
func (g *authGuard) wait(addr string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.byAddr[g.key(addr)]; f != nil && now.Before(f.until) {
		return f.until.Sub(now)
	}
	return 0
}

// failed counts a failure of addr and returns how many it has in a row.
func (g *authGuard) failed(addr string, now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.byAddr[addr]; !ok && len(g.byAddr) >= adminAuthMaxAddrs {
		g.prune(now)
	}
	k := g.key(addr)
	f := g.byAddr[k]
	if f == nil || now.Sub(f.last) > adminAuthWindow {
		f = &authFailures{}
		g.byAddr[k] = f
	}
	f.count++
	f.last = now
	f.until = now.Add(storage.Backoff(f.count, adminAuthFreeFailures, adminAuthMaxDelay))
	return f.count
}

// key is addr, or the shared overflow key when the table is full and addr is not in it.
func (g *authGuard) key(addr string) string {
	if _, ok := g.byAddr[addr]; ok || len(g.byAddr) < adminAuthMaxAddrs {
		return addr
	}
	return ""
}

// prune drops counts that have lapsed.
func (g *authGuard) prune(now time.Time) {
	for k, f := range g.byAddr {
		if now.Sub(f.last) > adminAuthWindow {
			delete(g.byAddr, k)
		}
	}
}
