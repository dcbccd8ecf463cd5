package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

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

func login(user, remote string, now time.Time) storage.LoginAttempt {
	return storage.LoginAttempt{Username: user, Remote: remote, Now: now, Limit: 3, UserLimit: 6, MaxDelay: time.Minute, Window: 10 * time.Minute}
}

func loginState(t *testing.T, s storage.Storage, a storage.LoginAttempt) storage.LoginState {
	t.Helper()
	st, err := s.Login(context.Background(), a)
	mustNoErr(t, err)
	return st
}

func testLoginBackoff(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	a := login("alice", "10.0.0.1", now)
	if st := loginState(t, s, a); st.User == nil || st.Wait != 0 || st.Failed {
		t.Fatalf("clean login: %+v", st)
	}
	for range 2 {
		mustNoErr(t, s.LoginFailed(ctx, a))
	}
	if st := loginState(t, s, a); st.Wait != 0 || !st.Failed {
		t.Fatalf("2 failures of 3 allowed: %+v", st)
	}
	mustNoErr(t, s.LoginFailed(ctx, a))
	if st := loginState(t, s, a); st.Wait != time.Second {
		t.Fatalf("after the 3rd failure: wait %s, want 1s", st.Wait)
	}
	mustNoErr(t, s.LoginFailed(ctx, a))
	if st := loginState(t, s, a); st.Wait != 2*time.Second {
		t.Fatalf("after the 4th failure: wait %s, want 2s", st.Wait)
	}
	// Case does not open a new count.
	if st := loginState(t, s, login("ALICE", "10.0.0.1", now)); st.Wait != 2*time.Second {
		t.Fatalf("ALICE from the same address: %+v", st)
	}
	// Unknown usernames are counted like known ones.
	ghost := login("nobody-"+string(make([]byte, 4096)), "10.0.0.1", now)
	for range 3 {
		mustNoErr(t, s.LoginFailed(ctx, ghost))
	}
	if st := loginState(t, s, ghost); st.User != nil || st.Wait != time.Second {
		t.Fatalf("unknown username after 3 failures: %+v", st)
	}
	// A success clears the address's count.
	mustNoErr(t, s.LoginSucceeded(ctx, a))
	if st := loginState(t, s, a); st.Wait != 0 || st.Failed {
		t.Fatalf("after a success: %+v", st)
	}
	// Counts lapse a window after the last failure.
	b := login("alice", "10.0.0.2", now)
	for range 3 {
		mustNoErr(t, s.LoginFailed(ctx, b))
	}
	b.Now = now.Add(11 * time.Minute)
	if st := loginState(t, s, b); st.Wait != 0 {
		t.Fatalf("after the window: %+v", st)
	}
}

// testLoginBackoffCleanAddress: a guesser spread over many addresses reaches the username's
// ceiling, which slows every address that has failed for it, but not one that has not.
func testLoginBackoffCleanAddress(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	for i := range 6 { // UserLimit 6, one failure per address: no address reaches its own limit
		mustNoErr(t, s.LoginFailed(ctx, login("alice", "198.51.100."+string(rune('0'+i)), now)))
	}
	if st := loginState(t, s, login("alice", "198.51.100.0", now)); st.Wait != time.Second {
		t.Fatalf("a guessing address after the username's ceiling: %+v, want 1s", st)
	}
	if st := loginState(t, s, login("alice", "192.0.2.7", now)); st.Wait != 0 || st.User == nil {
		t.Fatalf("the real user from a clean address: %+v, want through", st)
	}
	if err := s.LoginFailed(ctx, login("alice", "192.0.2.7", now)); err != nil || loginState(t, s, login("alice", "192.0.2.7", now)).Wait == 0 {
		t.Fatal("once it fails, the address is under the username's backoff too")
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

// testAdmissionWithFamily: a login's refresh family passed with a limited admission is stored
// exactly when the admission is allowed.
func testAdmissionWithFamily(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	fam := func(id string) *storage.RefreshToken {
		return &storage.RefreshToken{Hash: "h-" + id, FamilyID: id, ClientID: "c", Subject: "u", AccessTTL: time.Hour,
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	a := limitAdmission(now, 1, "d")
	a.Family = fam("f1")
	if got, err := s.Admit(ctx, a); err != nil || !got.Allowed {
		t.Fatalf("first admission with a family: %+v %v", got, err)
	}
	if _, err := s.GetRefreshToken(ctx, "f1", "h-f1"); err != nil {
		t.Fatalf("the allowed admission's family was not stored: %v", err)
	}
	a.Family = fam("f2")
	if got, err := s.Admit(ctx, a); err != nil || !got.Limited {
		t.Fatalf("second admission (limit 1): %+v %v", got, err)
	}
	if _, err := s.GetRefreshToken(ctx, "f2", "h-f2"); err == nil {
		t.Fatal("a refused admission stored its family")
	}
	if !familyRevoked(t, s, "f2", now) || familyRevoked(t, s, "f1", now) {
		t.Fatal("family states after the admissions are wrong")
	}
}
