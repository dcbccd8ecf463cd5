package redis_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// TestClientIndexUpgrade: clients written before the owner index existed (the clients hash
// alone, as earlier versions left it) are found by owner, and their longest lifetime is the
// bound, once a store of this version reads them; a client changed afterwards is indexed by
// its own write.
func TestClientIndexUpgrade(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s, err := redis.Open(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := redis.FlushAll(s); err != nil {
		t.Fatal(err)
	}
	raw := srv.Client()
	t.Cleanup(func() { _ = raw.Close() })
	for _, c := range []storage.Client{
		{ID: "a1", Owner: "alice", AccessTokenTTL: 3 * time.Hour},
		{ID: "a2", Owner: "alice"},
		{ID: "b1", Owner: "bob", AccessTokenTTL: time.Minute},
		{ID: "n1"},
	} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.HSet(ctx, "ts:{clients}", c.ID, b).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := raw.Exists(ctx, "ts:{clients}:indexed", "ts:{clients}:owned:alice").Result(); err != nil || n != 0 {
		t.Fatalf("before the first read: %d index keys (%v), want none", n, err)
	}

	got, err := s.LongestAccessTokenTTL(ctx)
	if err != nil || got != 3*time.Hour {
		t.Errorf("LongestAccessTokenTTL of the old records = %v (%v), want 3h", got, err)
	}
	owned := func(owner string) []string {
		t.Helper()
		cs, err := s.OwnedClients(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := owned("alice"); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("alice's old clients: %v", got)
	}
	if _, err := s.UpdateClient(ctx, "a2", func(c *storage.Client) error { c.Owner = "bob"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := owned("alice"); !slices.Equal(got, []string{"a1"}) {
		t.Errorf("alice's clients after a move: %v", got)
	}
	if got := owned("bob"); !slices.Equal(got, []string{"a2", "b1"}) {
		t.Errorf("bob's clients after a move: %v", got)
	}
	if n, err := raw.SCard(ctx, "ts:{clients}:owned:alice").Result(); err != nil || n != 1 {
		t.Errorf("alice's index set holds %d ids (%v), want 1: a moved client must leave it", n, err)
	}
}
