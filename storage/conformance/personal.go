package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func pat(id, user string, now time.Time) storage.PersonalToken {
	return storage.PersonalToken{ID: id, UserID: user, Name: "ci " + id, Hash: []byte("h-" + id), Scopes: []string{"a"}, CreatedAt: now}
}

func testPersonalTokens(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	wantErr(t, s.CreatePersonalToken(ctx, pat("p1", "nobody", now)), storage.ErrNotFound)
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u2", Username: "bob"}))
	mustNoErr(t, s.CreatePersonalToken(ctx, pat("p1", "u1", now)))
	expiring := pat("p2", "u1", now)
	expiring.ExpiresAt = now.Add(time.Hour)
	mustNoErr(t, s.CreatePersonalToken(ctx, expiring))
	mustNoErr(t, s.CreatePersonalToken(ctx, pat("p3", "u2", now)))
	wantErr(t, s.CreatePersonalToken(ctx, pat("p1", "u2", now)), storage.ErrAlreadyExists)

	got, err := s.GetPersonalToken(ctx, "p2")
	mustNoErr(t, err)
	if got.UserID != "u1" || got.Name != "ci p2" || string(got.Hash) != "h-p2" || !got.ExpiresAt.Equal(now.Add(time.Hour)) || len(got.Scopes) != 1 {
		t.Fatalf("GetPersonalToken = %+v", got)
	}
	mine, err := s.ListPersonalTokens(ctx, "u1")
	mustNoErr(t, err)
	if len(mine) != 2 {
		t.Fatalf("u1 lists %d tokens, want 2", len(mine))
	}

	// Last use: the later time wins; unknown ids are skipped.
	mustNoErr(t, s.TouchPersonalTokens(ctx, map[string]time.Time{"p1": now.Add(2 * time.Minute), "gone": now}))
	mustNoErr(t, s.TouchPersonalTokens(ctx, map[string]time.Time{"p1": now.Add(time.Minute)}))
	if got, _ := s.GetPersonalToken(ctx, "p1"); !got.LastUsedAt.Equal(now.Add(2 * time.Minute)) {
		t.Fatalf("last used = %s, want %s", got.LastUsedAt, now.Add(2*time.Minute))
	}
	if _, err := s.GetPersonalToken(ctx, "gone"); err == nil {
		t.Fatal("touching an unknown id created it")
	}

	// TokenState: live, expired, deleted.
	state := func(id string, at time.Time) bool {
		st, err := s.TokenState(ctx, storage.TokenQuery{ClientID: "c", JTI: "j-" + id, PersonalTokenID: id, Now: at})
		mustNoErr(t, err)
		return st.Revoked
	}
	if state("p2", now) || !state("p2", now.Add(2*time.Hour)) {
		t.Fatal("an expiring personal token: live before, revoked after its expiry")
	}

	// Only its owner deletes a token.
	wantErr(t, s.DeletePersonalToken(ctx, "u2", "p1"), storage.ErrNotFound)
	mustNoErr(t, s.DeletePersonalToken(ctx, "u1", "p1"))
	wantErr(t, s.DeletePersonalToken(ctx, "u1", "p1"), storage.ErrNotFound)
	if _, err := s.GetPersonalToken(ctx, "p1"); err == nil {
		t.Fatal("deleted token still found")
	}
	if !state("p1", now) {
		t.Fatal("a deleted personal token is not revoked")
	}
}

func testPersonalTokensOfDeletedUser(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	mustNoErr(t, s.CreatePersonalToken(ctx, pat("p1", "u1", now)))
	mustNoErr(t, s.CreatePersonalToken(ctx, pat("p2", "u1", now)))
	mustNoErr(t, s.TouchPersonalTokens(ctx, map[string]time.Time{"p1": now}))
	mustNoErr(t, s.DeleteUser(ctx, "u1"))
	for _, id := range []string{"p1", "p2"} {
		if _, err := s.GetPersonalToken(ctx, id); err == nil {
			t.Fatalf("token %s outlived its user", id)
		}
	}
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	if l, _ := s.ListPersonalTokens(ctx, "u1"); len(l) != 0 {
		t.Fatalf("a user created again inherits tokens: %+v", l)
	}
}
