package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// Credential versions (storage.User.Epoch): a sign-in reads the user's version with the
// password hash it checks, and what it stores carries that version. The store refuses the
// write, in the same atomic step, once the version has moved on, and ends whatever carries an
// older version at its next use.

// bumpEpoch is a password change as the registry makes it.
func bumpEpoch(t *testing.T, s storage.Storage, user string, now time.Time) storage.User {
	t.Helper()
	u, err := s.UpdateUser(context.Background(), user, func(u *storage.User) error {
		u.NotBefore = now
		u.Epoch++
		return nil
	})
	mustNoErr(t, err)
	return u
}

// userLogin is the first refresh token of a user's login checked against epoch.
func userLogin(fam, user string, epoch uint64, now time.Time) storage.RefreshToken {
	return storage.RefreshToken{
		Hash: "h0", FamilyID: fam, ClientID: "client", Subject: user, Scope: "a",
		AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour), UserID: user, Epoch: epoch,
	}
}

// userRotation rotates the first token of a user's login.
func userRotation(rt storage.RefreshToken, now time.Time) storage.Rotation {
	r := rotation(rt.FamilyID, rt.Hash, rt.Hash+"-next", now, 0)
	r.UserID, r.IssuedAt, r.Epoch = rt.UserID, rt.IssuedAt, rt.Epoch
	r.Next.Subject, r.Next.UserID, r.Next.Epoch = rt.Subject, rt.UserID, rt.Epoch
	return r
}

// userLoginState asks TokenState about an access token of a user's login.
func userLoginState(t *testing.T, s storage.Storage, fam, user string, now time.Time) storage.TokenState {
	t.Helper()
	st, err := s.TokenState(context.Background(), storage.TokenQuery{ClientID: "client", JTI: fam + "-jti", FamilyID: fam, UserID: user, Now: now})
	mustNoErr(t, err)
	return st
}

// testSessionEpoch: a session is stored only under the user's current credential version.
func testSessionEpoch(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	old := session("old", "u1", now)
	bumpEpoch(t, s, "u1", now)
	wantErr(t, s.CreateSession(ctx, old, now), storage.ErrCredentialsChanged)
	_, err := s.GetSession(ctx, "old", now)
	wantErr(t, err, storage.ErrNotFound)

	cur := session("cur", "u1", now)
	cur.Epoch = 1
	mustNoErr(t, s.CreateSession(ctx, cur, now))
	got, err := s.GetSession(ctx, "cur", now)
	mustNoErr(t, err)
	if got.Epoch != 1 {
		t.Fatalf("stored session has epoch %d, want 1", got.Epoch)
	}
	// A version the user has not reached yet is refused too: only the current one is.
	ahead := session("ahead", "u1", now)
	ahead.Epoch = 2
	wantErr(t, s.CreateSession(ctx, ahead, now), storage.ErrCredentialsChanged)
}

// testFamilyEpoch: a user's login is stored only under the user's current credential version
// (nothing is written otherwise), and a stored one ends at the next password change: its
// rotation is refused and its access tokens are revoked.
func testFamilyEpoch(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	wantErr(t, s.CreateRefreshToken(ctx, userLogin("f-nouser", "nobody", 0, now)), storage.ErrNotFound)
	if _, err := s.GetRefreshToken(ctx, "f-nouser", "h0"); err == nil {
		t.Fatal("a login of a missing user was stored")
	}
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))

	live := userLogin("f-live", "u1", 0, now)
	mustNoErr(t, s.CreateRefreshToken(ctx, live))
	if st := userLoginState(t, s, "f-live", "u1", now); st.Revoked || st.User == nil {
		t.Fatalf("a login of the current version: %+v, want live", st)
	}
	bumpEpoch(t, s, "u1", now.Add(-time.Hour)) // NotBefore alone would not end it

	stale := userLogin("f-stale", "u1", 0, now)
	wantErr(t, s.CreateRefreshToken(ctx, stale), storage.ErrCredentialsChanged)
	if _, err := s.GetRefreshToken(ctx, "f-stale", "h0"); err == nil {
		t.Fatal("a login checked against the old password was stored")
	}

	if st := userLoginState(t, s, "f-live", "u1", now); !st.Revoked {
		t.Fatal("the access tokens of a login of the old version are not revoked")
	}
	_, err := s.RotateRefreshToken(ctx, userRotation(live, now))
	wantErr(t, err, storage.ErrRevoked)
	_, err = s.RotateRefreshToken(ctx, userRotation(live, now))
	wantErr(t, err, storage.ErrRevoked)

	fresh := userLogin("f-new", "u1", 1, now)
	mustNoErr(t, s.CreateRefreshToken(ctx, fresh))
	if st := userLoginState(t, s, "f-new", "u1", now); st.Revoked {
		t.Fatal("a login of the new version is revoked")
	}
	got, err := s.RotateRefreshToken(ctx, userRotation(fresh, now))
	mustNoErr(t, err)
	if !got.Fresh {
		t.Fatal("the rotation of a login of the new version was not fresh")
	}
	// Its successor carries the version on: the next change ends it too.
	next, err := s.GetRefreshToken(ctx, "f-new", "h0-next")
	mustNoErr(t, err)
	if next.Epoch != 1 || next.UserID != "u1" {
		t.Fatalf("successor has user %q epoch %d, want u1 and 1", next.UserID, next.Epoch)
	}
	bumpEpoch(t, s, "u1", now.Add(-time.Hour))
	_, err = s.RotateRefreshToken(ctx, userRotation(next, now))
	wantErr(t, err, storage.ErrRevoked)
}

// userAdmission is an admission of a user's login with reuse and a daily limit.
func userAdmission(now time.Time, user string, epoch uint64, res string) storage.Admission {
	a := admission(now, 1, res)
	a.Pool.Subject = user
	a.UserID, a.Epoch = user, epoch
	a.Limit, a.Day, a.ResetAt = 10, "d1", now.Add(time.Hour)
	return a
}

// testAdmissionEpoch: an admission of a user's login counts, reserves, stores and hands out
// nothing under an old credential version, and a pooled token is handed out only to logins of
// its own version; a settlement under an old version gives everything back.
func testAdmissionEpoch(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))

	// A token of version 0 in the pool.
	a := userAdmission(now, "u1", 0, "r0")
	got, err := s.Admit(ctx, a)
	mustNoErr(t, err)
	if !got.Allowed || got.DailyCount != 1 {
		t.Fatalf("first admission: %+v", got)
	}
	tok := pooled("j0", now, time.Hour)
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: a, Token: tok}))
	got, err = s.Admit(ctx, userAdmission(now, "u1", 0, "r1"))
	mustNoErr(t, err)
	if got.Reused == nil || got.Reused.JTI != "j0" {
		t.Fatalf("same version: %+v, want j0 reused", got)
	}
	// ErrNotFound for a user that does not exist.
	_, err = s.Admit(ctx, userAdmission(now, "nobody", 0, "r2"))
	wantErr(t, err, storage.ErrNotFound)

	bumpEpoch(t, s, "u1", now.Add(-time.Hour))
	// A login checked against the old password: refused, nothing counted.
	_, err = s.Admit(ctx, userAdmission(now, "u1", 0, "r3"))
	wantErr(t, err, storage.ErrCredentialsChanged)
	// A login of the new version never gets the old token; the old one leaves the pool and
	// frees its slot, and the count shows that the refused admission counted nothing.
	a1 := userAdmission(now, "u1", 1, "r4")
	got, err = s.Admit(ctx, a1)
	mustNoErr(t, err)
	if got.Reused != nil || !got.Allowed || got.DailyCount != 2 {
		t.Fatalf("new version: %+v, want a new token allowed with daily count 2", got)
	}
	t1 := pooled("j1", now, time.Hour)
	t1.Epoch = 1
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: a1, Token: t1}))
	got, err = s.Admit(ctx, userAdmission(now, "u1", 1, "r5"))
	mustNoErr(t, err)
	if got.Reused == nil || got.Reused.JTI != "j1" || got.Reused.Epoch != 1 {
		t.Fatalf("new version again: %+v, want j1 of epoch 1 reused", got)
	}

	// A login whose password changes between admission and settlement: the settlement
	// stores neither its family nor its pooled token, and gives its count back.
	pool := userAdmission(now, "u1", 1, "r6")
	pool.Pool.Scope = "other"
	got, err = s.Admit(ctx, pool)
	mustNoErr(t, err)
	if !got.Allowed || got.DailyCount != 3 {
		t.Fatalf("admission before the change: %+v", got)
	}
	bumpEpoch(t, s, "u1", now.Add(-time.Hour))
	fam := userLogin("f-settle", "u1", 1, now)
	t2 := pooled("j2", now, time.Hour)
	t2.Epoch, t2.Family = 1, "f-settle"
	wantErr(t, s.Settle(ctx, storage.Settlement{Admission: pool, Token: t2, Family: &fam}), storage.ErrCredentialsChanged)
	if _, err := s.GetRefreshToken(ctx, "f-settle", "h0"); err == nil {
		t.Fatal("the family of a login settled after a password change was stored")
	}
	again := userAdmission(now, "u1", 2, "r7")
	again.Pool.Scope = "other"
	got, err = s.Admit(ctx, again)
	mustNoErr(t, err)
	if got.Reused != nil || !got.Allowed || got.DailyCount != 3 {
		t.Fatalf("after a settlement refused: %+v, want a new token allowed with the count given back (3)", got)
	}

	// The same with the family stored by the admission (a login under a limit, no reuse).
	withFam := userAdmission(now, "u1", 1, "")
	withFam.Reuse = false
	famOld := userLogin("f-admit", "u1", 1, now)
	withFam.Family = &famOld
	_, err = s.Admit(ctx, withFam)
	wantErr(t, err, storage.ErrCredentialsChanged)
	if _, err := s.GetRefreshToken(ctx, "f-admit", "h0"); err == nil {
		t.Fatal("an admission under an old version stored its family")
	}
	withFam.Epoch, famOld.Epoch = 2, 2
	got, err = s.Admit(ctx, withFam)
	mustNoErr(t, err)
	if !got.Allowed || got.DailyCount != 4 {
		t.Fatalf("admission with family of the current version: %+v, want allowed with count 4", got)
	}
	if _, err := s.GetRefreshToken(ctx, "f-admit", "h0"); err != nil {
		t.Fatalf("family of an allowed admission: %v", err)
	}
}

// epochTrials is how many times each sign-in races a password change.
const epochTrials = 100

// testEpochRace: a sign-in reads the user (as the password check does), then stores a session,
// a login, or an admitted login, while a password change runs at the same moment. Whichever
// lands first, nothing the sign-in stored survives the change: it is refused when written, or
// ended at its first use.
func testEpochRace(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	kinds := []string{"session", "login", "admitted"}
	refused := map[string]int{}
	for i := range epochTrials {
		for _, kind := range kinds {
			user := fmt.Sprintf("u-%s-%d", kind, i)
			mustNoErr(t, s.CreateUser(ctx, storage.User{ID: user, Username: user}))
			st, err := s.Login(ctx, storage.LoginAttempt{Username: user, Remote: "r", Now: now, Limit: 5, UserLimit: 50, MaxDelay: time.Minute, Window: time.Minute})
			mustNoErr(t, err)
			checked := st.User.Epoch
			fam := "f-" + user
			var werr error
			var wg sync.WaitGroup
			wg.Go(func() {
				if _, err := s.UpdateUser(ctx, user, func(u *storage.User) error { u.NotBefore = now; u.Epoch++; return nil }); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				switch kind {
				case "session":
					sess := session("s-"+user, user, now)
					sess.Epoch = checked
					werr = s.CreateSession(ctx, sess, now)
				case "login":
					werr = s.CreateRefreshToken(ctx, userLogin(fam, user, checked, now))
				case "admitted":
					a := userAdmission(now, user, checked, "r")
					a.Reuse = false
					login := userLogin(fam, user, checked, now)
					a.Family = &login
					_, werr = s.Admit(ctx, a)
				}
			})
			wg.Wait()
			if werr != nil {
				wantErr(t, werr, storage.ErrCredentialsChanged)
				refused[kind]++
			}
			u, err := s.GetUser(ctx, user)
			mustNoErr(t, err)
			switch kind {
			case "session":
				if got, err := s.GetSession(ctx, "s-"+user, now); err == nil && got.Epoch == u.Epoch {
					t.Fatalf("trial %d: a session checked against the old password has the new version", i)
				}
			default:
				if werr != nil {
					if _, err := s.GetRefreshToken(ctx, fam, "h0"); err == nil {
						t.Fatalf("trial %d (%s): a refused login was stored", i, kind)
					}
					continue
				}
				if st := userLoginState(t, s, fam, user, now); !st.Revoked {
					t.Fatalf("trial %d (%s): the access tokens of a login checked against the old password are live", i, kind)
				}
				_, err := s.RotateRefreshToken(ctx, userRotation(userLogin(fam, user, checked, now), now))
				wantErr(t, err, storage.ErrRevoked)
			}
		}
	}
	t.Logf("%d trials per kind; refused when written (the rest were written first and ended at first use): %v", epochTrials, refused)
}
