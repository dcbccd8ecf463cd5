package grants

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// findPersonal resolves a personal token: its checksum first, so a typo costs no store lookup;
// then its record (cached like clients, dropped on every replica when the token is deleted)
// and a constant-time comparison of its digest. The checksum is no secret, so crafted tokens
// pass it: an id the store does not hold is remembered for a moment (misses), so the same
// crafted token again does not reach the store, and it costs the same digest comparison as a
// known id with a wrong secret, so neither time nor work tells the two apart.
func (c *core) findPersonal(ctx context.Context, raw string, now time.Time) (*presented, error) {
	id, ok := secret.ParsePersonalToken(raw)
	if !ok {
		return nil, nil
	}
	if c.patMisses.has(id, now) {
		c.matchPersonal(raw, unknownPersonalDigest[:])
		return nil, nil
	}
	t, ok := c.pats.get(id)
	if !ok {
		var err error
		t, err = c.store.GetPersonalToken(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			c.patMisses.add(id, now)
			c.matchPersonal(raw, unknownPersonalDigest[:])
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		c.pats.put(id, t)
	}
	if !c.matchPersonal(raw, t.Hash) || !t.Live(now) {
		return nil, nil
	}
	c.usage.record(id, now)
	return &presented{personal: &t}, nil
}

// matchPersonal is the one digest comparison every presented personal token costs, counted so
// tests can see that each path makes exactly one.
func (c *core) matchPersonal(raw string, digest []byte) bool {
	c.personalMatches.Add(1)
	return secret.Matches(raw, digest)
}

// unknownPersonalDigest is what a personal token of an unknown id is compared against: a
// digest of the right length that no token hashes to in practice.
var unknownPersonalDigest = sha256.Sum256([]byte("tokensmith/no-such-personal-token"))

// The negative cache of personal token ids: how long a miss is remembered, and how many.
// Ids are random (60 bits) and only known once the token is made, so a real token is
// practically never presented before it exists; besides, every new token is announced to all
// replicas, which forget a miss of its id at once. Only a token the change feed does not
// announce (one restored by an import, or a notice lost while the feed is down) can be
// answered as unknown, for at most personalMissTTL.
const (
	personalMissTTL = 5 * time.Second
	personalMissMax = 10_000
)

// misses remembers ids the store did not hold, per replica, for personalMissTTL, at most
// personalMissMax at once: a full set drops its expired entries, else starts over, so a flood
// of distinct ids costs bounded memory and each id at most one store read per TTL.
type misses struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func newMisses() *misses { return &misses{until: map[string]time.Time{}} }

func (m *misses) has(id string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	until, ok := m.until[id]
	return ok && now.Before(until)
}

func (m *misses) add(id string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.until) >= personalMissMax {
		for k, until := range m.until {
			if !now.Before(until) {
				delete(m.until, k)
			}
		}
		if len(m.until) >= personalMissMax {
			clear(m.until)
		}
	}
	m.until[id] = now.Add(personalMissTTL)
}

// forget drops a remembered miss: a token of that id was made (the registry announces every
// new personal token), so it exists now.
func (m *misses) forget(id string) {
	m.mu.Lock()
	delete(m.until, id)
	m.mu.Unlock()
}

func (m *misses) clear() {
	m.mu.Lock()
	clear(m.until)
	m.mu.Unlock()
}

// usage remembers when personal tokens were last used on this replica until Flush writes them,
// so using a token is not a store write. Listings are at most one flush interval behind.
type usage struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// maxUsage bounds the batch; past it the oldest news is dropped rather than memory grown.
const maxUsage = 100_000

func newUsage() *usage { return &usage{last: map[string]time.Time{}} }

func (u *usage) record(id string, at time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.last) < maxUsage || !u.last[id].IsZero() {
		u.last[id] = at.Truncate(time.Second)
	}
}

func (u *usage) take() map[string]time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.last
	u.last = map[string]time.Time{}
	return out
}

// FlushUsage writes when personal tokens were last used (one store call for the batch). The
// server calls it every minute and when it stops; on failure the batch is kept for next time.
func (h *Service) FlushUsage(ctx context.Context) error {
	batch := h.core.usage.take()
	if len(batch) == 0 {
		return nil
	}
	err := h.core.store.TouchPersonalTokens(ctx, batch)
	if err != nil {
		for id, at := range batch {
			h.core.usage.record(id, at)
		}
	}
	return err
}
