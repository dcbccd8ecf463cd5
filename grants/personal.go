package grants

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// findPersonal resolves a personal token: its checksum first, so a typo or a guess costs no
// store lookup; then its record (cached like clients, dropped on every replica when the token is
// deleted) and a constant-time comparison of its digest.
func (c *core) findPersonal(ctx context.Context, raw string, now time.Time) (*presented, error) {
	id, ok := secret.ParsePersonalToken(raw)
	if !ok {
		return nil, nil
	}
	t, ok := c.pats.get(id)
	if !ok {
		var err error
		t, err = c.store.GetPersonalToken(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		c.pats.put(id, t)
	}
	if !secret.Matches(raw, t.Hash) || !t.Live(now) {
		return nil, nil
	}
	c.usage.record(id, now)
	return &presented{personal: &t}, nil
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
