package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// Records as earlier versions wrote them, read by this one.

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

// TestRefreshTokenOldFormat: a refresh token stored by an earlier version (its data field
// repeating its family, hash and client) is read, exported, rotated and, replayed, revokes its
// family, as one stored now; the token its rotation stores is in the shorter form.
func TestRefreshTokenOldFormat(t *testing.T) {
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
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := storage.RefreshToken{Hash: "h0", FamilyID: "fam", ClientID: "client", Subject: "user", Scope: "a",
		Audience: []string{"api"}, AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	data, err := json.Marshal(old) // the whole record, as earlier versions wrote it
	if err != nil {
		t.Fatal(err)
	}
	exp := strconv.FormatInt(old.ExpiresAt.UnixMilli(), 10)
	for key, fields := range map[string][]any{
		"ts:{f:fam}:fam":   {"exp", exp, "client", "client", "epoch", "0"},
		"ts:{f:fam}:rt:h0": {"client", "client", "exp", exp, "data", string(data)},
	} {
		if err := raw.HSet(ctx, key, fields...).Err(); err != nil {
			t.Fatal(err)
		}
		if err := raw.PExpire(ctx, key, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}

	got, err := s.GetRefreshToken(ctx, "fam", "h0")
	if err != nil || !reflect.DeepEqual(got, old) {
		t.Fatalf("old-format token read as %+v (%v), want %+v", got, err, old)
	}
	var walked []storage.RefreshToken
	if err := s.EachRefreshToken(ctx, now, func(t storage.RefreshToken) error { walked = append(walked, t); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || !reflect.DeepEqual(walked[0], old) {
		t.Fatalf("export walked %+v, want the old-format token", walked)
	}

	next := old
	next.Hash, next.IssuedAt = "h1", now.Add(time.Second)
	r := storage.Rotation{FamilyID: "fam", Hash: "h0", ClientID: "client", Now: now.Add(time.Second), Next: next, Sealed: []byte("pair")}
	if rot, err := s.RotateRefreshToken(ctx, r); err != nil || !rot.Fresh {
		t.Fatalf("rotating the old-format token: %+v, %v", rot, err)
	}
	stored, err := raw.HGet(ctx, "ts:{f:fam}:rt:h1", "data").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, repeated := range []string{`"hash"`, `"family_id"`, `"client_id"`} {
		if strings.Contains(stored, repeated) {
			t.Errorf("the rotated token's record repeats %s: %s", repeated, stored)
		}
	}
	if got, err := s.GetRefreshToken(ctx, "fam", "h1"); err != nil || !reflect.DeepEqual(got, next) {
		t.Errorf("new-format token read as %+v (%v), want %+v", got, err, next)
	}
	r.Now = r.Now.Add(time.Minute) // past any grace: a replay
	if _, err := s.RotateRefreshToken(ctx, r); !errors.Is(err, storage.ErrReplay) {
		t.Fatalf("replaying the old-format token: %v, want ErrReplay", err)
	}
	st, err := s.TokenState(ctx, storage.TokenQuery{ClientID: "client", JTI: "j", FamilyID: "fam", Now: r.Now})
	if err != nil || !st.Revoked {
		t.Errorf("after the replay the family is not revoked: %+v, %v", st, err)
	}
}
