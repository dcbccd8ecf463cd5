package conformance

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// testSeed: what a Seeder writes in bulk is read, rotated and refused exactly as what
// CreateClient and CreateRefreshToken write, across more than one batch.
func testSeed(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	seeder, ok := s.(storage.Seeder)
	if !ok {
		t.Fatalf("%T is not a storage.Seeder", s)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	n := storage.SeedBatch + 3
	client := func(i int) storage.Client {
		return storage.Client{ID: fmt.Sprintf("seeded-%d", i), SecretHash: []byte{byte(i), byte(i >> 8)},
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"a"}, CreatedAt: now, UpdatedAt: now}
	}
	token := func(i int) storage.RefreshToken {
		return storage.RefreshToken{Hash: fmt.Sprintf("h%d", i), FamilyID: fmt.Sprintf("fam-%d", i), ClientID: "client",
			Subject: "user", Scope: "a", Audience: []string{"api"}, AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	mustNoErr(t, seeder.SeedClients(ctx, n, client))
	mustNoErr(t, seeder.SeedRefreshTokens(ctx, n, token))

	for _, i := range []int{0, storage.SeedBatch - 1, storage.SeedBatch, n - 1} {
		got, err := s.GetClient(ctx, client(i).ID)
		mustNoErr(t, err)
		if want := client(i); !reflect.DeepEqual(got, want) {
			t.Errorf("seeded client %d: got %+v, want %+v", i, got, want)
		}
		rt, err := s.GetRefreshToken(ctx, token(i).FamilyID, token(i).Hash)
		mustNoErr(t, err)
		if want := token(i); !reflect.DeepEqual(rt, want) {
			t.Errorf("seeded refresh token %d: got %+v, want %+v", i, rt, want)
		}
	}
	clients := 0
	mustNoErr(t, s.EachClient(ctx, func(storage.Client) error { clients++; return nil }))
	if clients != n {
		t.Errorf("EachClient after seeding %d: %d clients", n, clients)
	}

	// A seeded family rotates, and its replay revokes it, as a created one does.
	fam := token(storage.SeedBatch).FamilyID
	r := rotation(fam, token(storage.SeedBatch).Hash, "next", now.Add(time.Second), 0)
	got, err := s.RotateRefreshToken(ctx, r)
	mustNoErr(t, err)
	if !got.Fresh {
		t.Errorf("rotating a seeded token: %+v, want a fresh rotation", got)
	}
	r.Now = r.Now.Add(time.Second)
	_, err = s.RotateRefreshToken(ctx, r)
	wantErr(t, err, storage.ErrReplay)
	if !familyRevoked(t, s, fam, r.Now) {
		t.Error("a seeded family whose token was replayed is not revoked")
	}
	if familyRevoked(t, s, token(0).FamilyID, r.Now) {
		t.Error("an untouched seeded family is revoked")
	}

	// Seeding never overwrites: a taken client id or family is refused.
	wantErr(t, seeder.SeedClients(ctx, 1, client), storage.ErrAlreadyExists)
	wantErr(t, seeder.SeedRefreshTokens(ctx, 1, token), storage.ErrAlreadyExists)
	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "gone", CreatedAt: now}))
	mustNoErr(t, s.DeleteClient(ctx, "gone", now))
	wantErr(t, seeder.SeedClients(ctx, 1, func(int) storage.Client { return storage.Client{ID: "gone", CreatedAt: now} }), storage.ErrAlreadyExists)
}
