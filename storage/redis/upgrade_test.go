package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/redis"
)

// Records as earlier versions wrote them, read by this one.

// TestClientIndexUpgrade: clients written before the owner index existed (the clients hash
// alone, as earlier versions left it) are found by owner, and their longest lifetime is the
// bound, once a store of this version reads them; a client changed afterwards is indexed by
// its own write.
func TestClientIndexUpgrade(t *testing.T) {
	s, raw := openWithRaw(t)
	ctx := context.Background()
	if err := redis.FlushAll(s); err != nil {
		t.Fatal(err)
	}
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

// putOldFormatFamily writes a family as versions before the family's hash held its current
// token did: the family's hash alone, the token in a key of its own with the whole record in
// its data field (repeating its family, hash and client, as the oldest versions wrote it).
func putOldFormatFamily(t *testing.T, raw goredis.Cmdable, old storage.RefreshToken) {
	t.Helper()
	ctx := context.Background()
	data, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	exp := strconv.FormatInt(old.ExpiresAt.UnixMilli(), 10)
	for key, fields := range map[string][]any{
		"ts:{f:" + old.FamilyID + "}:fam":            {"exp", exp, "client", old.ClientID, "epoch", "0"},
		"ts:{f:" + old.FamilyID + "}:rt:" + old.Hash: {"client", old.ClientID, "exp", exp, "data", string(data)},
	} {
		if err := raw.HSet(ctx, key, fields...).Err(); err != nil {
			t.Fatal(err)
		}
		if err := raw.PExpire(ctx, key, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRefreshTokenOldFormat: a refresh token stored by an earlier version is read, exported,
// rotated, retried in the grace window and, replayed, revokes its family, as one stored now;
// its successor is the family's current token, kept in the family's hash, and rotates in turn.
func TestRefreshTokenOldFormat(t *testing.T) {
	s, raw := openWithRaw(t)
	ctx := context.Background()
	if err := redis.FlushAll(s); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := storage.RefreshToken{Hash: "h0", FamilyID: "fam", ClientID: "client", Subject: "user", Scope: "a",
		Audience: []string{"api"}, AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	putOldFormatFamily(t, raw, old)

	got, err := s.GetRefreshToken(ctx, "fam", "h0")
	if err != nil || !reflect.DeepEqual(got, old) {
		t.Fatalf("old-format token read as %+v (%v), want %+v", got, err, old)
	}
	walk := func() map[string]storage.RefreshToken {
		t.Helper()
		out := map[string]storage.RefreshToken{}
		if err := s.EachRefreshToken(ctx, now, func(t storage.RefreshToken) error { out[t.Hash] = t; return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if walked := walk(); len(walked) != 1 || !reflect.DeepEqual(walked["h0"], old) {
		t.Fatalf("export walked %+v, want the old-format token", walked)
	}

	next := old
	next.Hash, next.IssuedAt = "h1", now.Add(time.Second)
	r := storage.Rotation{FamilyID: "fam", Hash: "h0", ClientID: "client", Now: now.Add(time.Second), Grace: 5 * time.Second,
		Next: next, Sealed: []byte("pair")}
	if rot, err := s.RotateRefreshToken(ctx, r); err != nil || !rot.Fresh {
		t.Fatalf("rotating the old-format token: %+v, %v", rot, err)
	}
	if n, err := raw.Exists(ctx, "ts:{f:fam}:rt:h1").Result(); err != nil || n != 0 {
		t.Errorf("the successor has a key of its own (%d, %v); it belongs in the family's hash", n, err)
	}
	if h, err := raw.HGet(ctx, "ts:{f:fam}:fam", "h").Result(); err != nil || h != "h1" {
		t.Errorf("the family's current token is %q (%v), want h1", h, err)
	}
	if got, err := s.GetRefreshToken(ctx, "fam", "h1"); err != nil || !reflect.DeepEqual(got, next) {
		t.Errorf("new-format token read as %+v (%v), want %+v", got, err, next)
	}
	retry := r
	retry.Now, retry.Next.Hash = r.Now.Add(time.Second), "h1-retry"
	if rot, err := s.RotateRefreshToken(ctx, retry); err != nil || rot.Fresh || string(rot.Sealed) != "pair" {
		t.Fatalf("retrying the old-format token in the grace window: %+v, %v, want the stored successor", rot, err)
	}
	spent := old
	spent.UsedAt, spent.Successor = r.Now, []byte("pair")
	if walked := walk(); len(walked) != 2 || !reflect.DeepEqual(walked["h0"], spent) || !reflect.DeepEqual(walked["h1"], next) {
		t.Fatalf("export walked %+v, want the used old-format token and its successor", walked)
	}

	// The successor rotates in turn: it leaves the family's hash for a key of its own.
	third := next
	third.Hash, third.IssuedAt = "h2", now.Add(2*time.Second)
	if rot, err := s.RotateRefreshToken(ctx, storage.Rotation{FamilyID: "fam", Hash: "h1", ClientID: "client", Now: third.IssuedAt,
		Next: third, Sealed: []byte("pair2")}); err != nil || !rot.Fresh {
		t.Fatalf("rotating the successor: %+v, %v", rot, err)
	}
	if got, err := s.GetRefreshToken(ctx, "fam", "h1"); err != nil || got.UsedAt.IsZero() || string(got.Successor) != "pair2" || got.Subject != "user" {
		t.Errorf("the rotated successor reads %+v (%v), want it used with its own successor", got, err)
	}

	// An import over the used old-format token writes it as a rotation now leaves a used one.
	if out, err := s.RestoreRefreshToken(ctx, spent, storage.Restore{Now: now}); err != nil || out != storage.Updated {
		t.Fatalf("restoring the used old-format token: %s %v, want updated", out, err)
	}
	if n, err := raw.Exists(ctx, "ts:{f:fam}:rt:h0").Result(); err != nil || n != 0 {
		t.Errorf("the restored token's old-format key is still there (%d, %v)", n, err)
	}
	if got, err := s.GetRefreshToken(ctx, "fam", "h0"); err != nil || !reflect.DeepEqual(got, spent) {
		t.Errorf("the restored token reads %+v (%v), want %+v", got, err, spent)
	}

	r.Now = r.Now.Add(time.Minute) // past any grace: a replay
	if _, err := s.RotateRefreshToken(ctx, r); !errors.Is(err, storage.ErrReplay) {
		t.Fatalf("replaying the old-format token: %v, want ErrReplay", err)
	}
	st, err := s.TokenState(ctx, storage.TokenQuery{ClientID: "client", JTI: "j", FamilyID: "fam", Now: r.Now})
	if err != nil || !st.Revoked {
		t.Errorf("after the replay the family is not revoked: %+v, %v", st, err)
	}
	if _, err := s.RotateRefreshToken(ctx, storage.Rotation{FamilyID: "fam", Hash: "h2", ClientID: "client", Now: r.Now,
		Next:   storage.RefreshToken{Hash: "h3", FamilyID: "fam", ClientID: "client", IssuedAt: r.Now, ExpiresAt: r.Now.Add(time.Hour)},
		Sealed: []byte("pair3")}); !errors.Is(err, storage.ErrRevoked) {
		t.Errorf("rotating the current token of the replayed family: %v, want ErrRevoked", err)
	}
}

// TestRefreshTokenOldFormatRevoked: an old-format family is revoked as one stored now, and
// its token then no longer rotates.
func TestRefreshTokenOldFormatRevoked(t *testing.T) {
	s, raw := openWithRaw(t)
	ctx := context.Background()
	if err := redis.FlushAll(s); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := storage.RefreshToken{Hash: "h0", FamilyID: "fam", ClientID: "client", Subject: "user", AccessTTL: time.Hour,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	putOldFormatFamily(t, raw, old)
	if err := s.RevokeFamily(ctx, "fam", now); err != nil {
		t.Fatal(err)
	}
	if st, err := s.TokenState(ctx, storage.TokenQuery{ClientID: "client", FamilyID: "fam", Now: now}); err != nil || !st.Revoked {
		t.Errorf("the revoked old-format family: %+v, %v", st, err)
	}
	next := old
	next.Hash = "h1"
	if _, err := s.RotateRefreshToken(ctx, storage.Rotation{FamilyID: "fam", Hash: "h0", ClientID: "client", Now: now,
		Next: next, Sealed: []byte("pair")}); !errors.Is(err, storage.ErrRevoked) {
		t.Errorf("rotating a token of the revoked old-format family: %v, want ErrRevoked", err)
	}
}
