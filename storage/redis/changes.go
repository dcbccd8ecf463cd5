package redis

import (
	"context"
	"encoding/json"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// Publish implements storage.Storage with Redis pub/sub (on a Cluster, PUBLISH reaches the
// subscribers of every node).
func (s *Store) Publish(ctx context.Context, c storage.Change) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return fail(s.rdb.Publish(ctx, changesChan, b).Err())
}

// How the subscription notices that it is cut off: it pings when nothing arrived for
// watchPing, and counts itself unhealthy when not even a pong arrived for watchDead.
const (
	watchPing  = 200 * time.Millisecond
	watchDead  = time.Second
	watchRetry = 250 * time.Millisecond
)

// Watch implements storage.Storage. Any doubt about the connection (an error, a missing pong)
// closes the subscription and reports unhealthy; a new subscription reports healthy once Redis
// confirms it. Messages published in between are lost, which is why the caller is told.
func (s *Store) Watch(ctx context.Context, fn func(storage.Change), healthy func(bool)) {
	healthy(false)
	for ctx.Err() == nil {
		s.subscribeOnce(ctx, fn, healthy)
		healthy(false)
		select {
		case <-ctx.Done():
		case <-time.After(watchRetry):
		}
	}
}

func (s *Store) subscribeOnce(ctx context.Context, fn func(storage.Change), healthy func(bool)) {
	ps := s.rdb.Subscribe(ctx)
	defer ps.Close()
	if err := ps.Subscribe(ctx, changesChan); err != nil {
		return
	}
	lastSeen := time.Now()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, watchPing)
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" && m.Channel == changesChan {
				healthy(true)
			}
			lastSeen = time.Now()
		case *goredis.Message:
			var c storage.Change
			if json.Unmarshal([]byte(m.Payload), &c) == nil {
				fn(c)
			}
			lastSeen = time.Now()
		case *goredis.Pong:
			lastSeen = time.Now()
		default:
			if !isTimeout(err) {
				return
			}
			if time.Since(lastSeen) > watchDead {
				return
			}
			if ps.Ping(ctx) != nil {
				return
			}
		}
	}
}

func isTimeout(err error) bool {
	t, ok := err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}
