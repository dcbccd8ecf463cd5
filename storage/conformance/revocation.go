package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func testRevokeFamily(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	newFamily(t, s, "f1", now)
	if familyRevoked(t, s, "f1", now) {
		t.Fatal("new family reported revoked")
	}
	mustNoErr(t, s.RevokeFamily(ctx, "f1", now))
	mustNoErr(t, s.RevokeFamily(ctx, "f1", now)) // idempotent
	_, err := s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1", now, time.Second))
	wantErr(t, err, storage.ErrRevoked)
	if !familyRevoked(t, s, "f1", now) {
		t.Fatal("revoked family reported live")
	}
	wantErr(t, s.RevokeFamily(ctx, "missing", now), storage.ErrNotFound)
	if !familyRevoked(t, s, "missing", now) {
		t.Fatal("an unknown family must count as revoked")
	}
}

func testRotationNeedsUser(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "user", Username: "u"}))
	newFamily(t, s, "f1", now)
	r := rotation("f1", "h0", "h1", now, 5*time.Second)
	r.UserID = "user"
	if got, err := s.RotateRefreshToken(ctx, r); err != nil || !got.Fresh {
		t.Fatalf("rotation with its user present: %+v %v", got, err)
	}
	mustNoErr(t, s.DeleteUser(ctx, "user"))
	r = rotation("f1", "h1", "h2", now.Add(time.Second), 5*time.Second)
	r.UserID = "user"
	_, err := s.RotateRefreshToken(ctx, r)
	wantErr(t, err, storage.ErrRevoked)
	if !familyRevoked(t, s, "f1", now) {
		t.Fatal("the family of a deleted user is still live")
	}
}

// testRotationAfterPasswordChange: a login made before the user's NotBefore ends at its next use.
func testRotationAfterPasswordChange(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "user", Username: "u"}))
	newFamily(t, s, "f1", now)
	_, err := s.UpdateUser(ctx, "user", func(u *storage.User) error { u.NotBefore = now.Add(time.Second); return nil })
	mustNoErr(t, err)
	r := rotation("f1", "h0", "h1", now.Add(2*time.Second), 5*time.Second)
	r.UserID, r.IssuedAt = "user", now
	_, err = s.RotateRefreshToken(ctx, r)
	wantErr(t, err, storage.ErrRevoked)
	if !familyRevoked(t, s, "f1", now) {
		t.Fatal("a login from before the password change is still live")
	}
	// A login made after it rotates.
	rt := storage.RefreshToken{Hash: "h0", FamilyID: "f2", ClientID: "client", Subject: "user", AccessTTL: time.Hour,
		IssuedAt: now.Add(3 * time.Second), ExpiresAt: now.Add(time.Hour)}
	mustNoErr(t, s.CreateRefreshToken(ctx, rt))
	r = rotation("f2", "h0", "h1", now.Add(4*time.Second), 5*time.Second)
	r.UserID, r.IssuedAt = "user", rt.IssuedAt
	if got, err := s.RotateRefreshToken(ctx, r); err != nil || !got.Fresh {
		t.Fatalf("a login made after the change: %+v %v", got, err)
	}
}

// testFamilyLifetime: access tokens can outlive the refresh token that minted them (a 1 h
// refresh token, a 24 h access token); the family, and its revocation, must outlive them too.
func testFamilyLifetime(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	mustNoErr(t, s.CreateRefreshToken(ctx, storage.RefreshToken{
		Hash: "h0", FamilyID: "f1", ClientID: "client", Subject: "user",
		AccessTTL: 24 * time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	}))
	later := now.Add(2 * time.Hour)
	if familyRevoked(t, s, "f1", later) {
		t.Fatal("an access token of the family (24 h) counts as revoked once the refresh token (1 h) expired")
	}
	mustNoErr(t, s.RevokeFamily(ctx, "f1", later))
	if !familyRevoked(t, s, "f1", later) {
		t.Fatal("revoking the family did not reach its access tokens")
	}
	if !familyRevoked(t, s, "f1", now.Add(25*time.Hour)) {
		t.Fatal("a family past all its tokens' lifetimes counts as live")
	}
}

func testRevokeAccess(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	a := admission(now, 2, "r1")
	a.Pool.ClientID = "client"
	if got, _ := s.Admit(ctx, a); !got.Allowed {
		t.Fatal(got)
	}
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: a, Token: pooled("j1", now, time.Hour)}))
	query := storage.TokenQuery{ClientID: "client", JTI: "j1", Now: now}
	if st, err := s.TokenState(ctx, query); err != nil || st.Revoked {
		t.Fatalf("fresh token: %+v %v", st, err)
	}
	mustNoErr(t, s.RevokeAccessToken(ctx, storage.AccessRevocation{Pool: a.Pool, JTI: "j1", ExpiresAt: now.Add(time.Hour), Now: now}))
	if st, err := s.TokenState(ctx, query); err != nil || !st.Revoked {
		t.Fatalf("revoked token: %+v %v", st, err)
	}
	// Another client's token with the same jti is not affected.
	if st, _ := s.TokenState(ctx, storage.TokenQuery{ClientID: "other", JTI: "j1", Now: now}); st.Revoked {
		t.Fatal("revocation leaked to another client")
	}
	again := a
	again.Reservation = "r2"
	if got, _ := s.Admit(ctx, again); got.Reused != nil {
		t.Fatalf("a revoked token was reused: %+v", got)
	}
}

func testRevokedFamilyLeavesPool(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	newFamily(t, s, "f1", now)
	a := admission(now, 1, "r1")
	a.Pool.ClientID = "client"
	if got, _ := s.Admit(ctx, a); !got.Allowed {
		t.Fatal(got)
	}
	tok := pooled("f1-jti", now, time.Hour)
	tok.Family = "f1"
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: a, Token: tok}))
	next := a
	next.Reservation = "r2"
	if got, _ := s.Admit(ctx, next); got.Reused == nil {
		t.Fatalf("before revocation: %+v, want the pooled token", got)
	}
	mustNoErr(t, s.RevokeFamily(ctx, "f1", now))
	next.Reservation = "r3"
	got, err := s.Admit(ctx, next)
	mustNoErr(t, err)
	if got.Reused != nil || !got.Allowed {
		t.Fatalf("after the family was revoked: %+v, want a new issuance", got)
	}
}

func testTokenStateUser(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	st, err := s.TokenState(ctx, storage.TokenQuery{ClientID: "c", JTI: "j", UserID: "u1", Now: now})
	mustNoErr(t, err)
	if st.User == nil || st.User.Username != "alice" || st.Revoked {
		t.Fatalf("TokenState = %+v", st)
	}
	mustNoErr(t, s.DeleteUser(ctx, "u1"))
	st, err = s.TokenState(ctx, storage.TokenQuery{ClientID: "c", JTI: "j", UserID: "u1", Now: now})
	mustNoErr(t, err)
	if st.User != nil {
		t.Fatalf("deleted user still found: %+v", st.User)
	}
}
