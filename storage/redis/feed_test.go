package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// TestFeedReportsACutConnection: when the subscription's connection dies, the watcher is told
// at once (it must stop trusting its caches) and told again when a new subscription is in place;
// changes published after that arrive.
func TestFeedReportsACutConnection(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL()).(*redis.Store)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	health := make(chan bool, 100)
	got := make(chan storage.Change, 100)
	go s.Watch(ctx, func(c storage.Change) { got <- c }, func(ok bool) { health <- ok })
	waitHealth := func(want bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case ok := <-health:
				if ok == want {
					return
				}
			case <-deadline:
				t.Fatalf("feed never reported healthy=%v", want)
			}
		}
	}
	waitHealth(true)
	if err := s.Client().ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	waitHealth(false)
	waitHealth(true)
	if err := s.Publish(ctx, storage.Change{Kind: "client", ID: "after"}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c.ID != "after" {
			t.Fatalf("got %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery after resubscribing")
	}

	// Redis stopped: unhealthy within about a second, healthy again once it is back.
	srv.Stop()
	start := time.Now()
	waitHealth(false)
	t.Logf("feed noticed Redis was gone after %s", time.Since(start).Round(time.Millisecond))
	srv.Restart()
	waitHealth(true)
}

// TestScriptsSurviveAFlush: a Redis that restarted has forgotten every script; pipelined
// scripts (EVALSHA) load them again instead of failing the request.
func TestScriptsSurviveAFlush(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL()).(*redis.Store)
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	rt := func(hash string) storage.RefreshToken {
		return storage.RefreshToken{Hash: hash, FamilyID: "f", ClientID: "c", Subject: "u", AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	if err := s.CreateRefreshToken(ctx, rt("h0")); err != nil {
		t.Fatal(err)
	}
	if err := s.Client().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.RotateRefreshToken(ctx, storage.Rotation{FamilyID: "f", Hash: "h0", ClientID: "c", Now: now, Grace: time.Second, Next: rt("h1"), Sealed: []byte("s")})
	if err != nil || !got.Fresh {
		t.Fatalf("rotation after SCRIPT FLUSH: %+v %v", got, err)
	}
}
