package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func session(hash, user string, now time.Time) storage.Session {
	return storage.Session{IDHash: hash, UserID: user, CSRF: "csrf-" + hash, CreatedAt: now,
		IdleUntil: now.Add(30 * time.Minute), ExpiresAt: now.Add(12 * time.Hour)}
}

// testSessions: a console session lives until its idle or absolute expiry on the caller's
// clock, a touch moves the idle expiry but never past the absolute one, and a deleted session
// is gone for good.
func testSessions(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	wantErr(t, s.CreateSession(ctx, session("h1", "nobody", now), now), storage.ErrNotFound)
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	mustNoErr(t, s.CreateSession(ctx, session("h1", "u1", now), now))
	wantErr(t, s.CreateSession(ctx, session("h1", "u1", now), now), storage.ErrAlreadyExists)

	got, err := s.GetSession(ctx, "h1", now)
	mustNoErr(t, err)
	if want := session("h1", "u1", now); got.UserID != "u1" || got.CSRF != want.CSRF || !got.CreatedAt.Equal(now) ||
		!got.IdleUntil.Equal(want.IdleUntil) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("GetSession = %+v, want %+v", got, want)
	}
	_, err = s.GetSession(ctx, "h2", now)
	wantErr(t, err, storage.ErrNotFound)

	// Idle: over at IdleUntil unless touched.
	_, err = s.GetSession(ctx, "h1", now.Add(30*time.Minute))
	wantErr(t, err, storage.ErrNotFound)
	at := now.Add(20 * time.Minute)
	mustNoErr(t, s.TouchSession(ctx, "h1", at.Add(30*time.Minute), at))
	if got, err := s.GetSession(ctx, "h1", now.Add(45*time.Minute)); err != nil || !got.IdleUntil.Equal(at.Add(30*time.Minute)) {
		t.Fatalf("after a touch: %v %+v, want live until %s", err, got, at.Add(30*time.Minute))
	}
	// Touching a session that has idled out does not revive it.
	late := now.Add(2 * time.Hour)
	wantErr(t, s.TouchSession(ctx, "h1", late.Add(30*time.Minute), late), storage.ErrNotFound)
	_, err = s.GetSession(ctx, "h1", late)
	wantErr(t, err, storage.ErrNotFound)

	// Absolute: a touch never carries a session past ExpiresAt.
	mustNoErr(t, s.CreateSession(ctx, session("h3", "u1", now), now))
	near := now.Add(11*time.Hour + 50*time.Minute)
	for at := now; at.Before(near); at = at.Add(20 * time.Minute) {
		mustNoErr(t, s.TouchSession(ctx, "h3", at.Add(30*time.Minute), at))
	}
	mustNoErr(t, s.TouchSession(ctx, "h3", near.Add(30*time.Minute), near))
	got, err = s.GetSession(ctx, "h3", near)
	mustNoErr(t, err)
	if !got.End().Equal(now.Add(12 * time.Hour)) {
		t.Fatalf("session end after touches = %s, want the absolute expiry %s", got.End(), now.Add(12*time.Hour))
	}
	_, err = s.GetSession(ctx, "h3", now.Add(12*time.Hour))
	wantErr(t, err, storage.ErrNotFound)

	// Sign-out.
	mustNoErr(t, s.CreateSession(ctx, session("h4", "u1", now), now))
	mustNoErr(t, s.DeleteSession(ctx, "h4"))
	wantErr(t, s.DeleteSession(ctx, "h4"), storage.ErrNotFound)
	_, err = s.GetSession(ctx, "h4", now)
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.TouchSession(ctx, "h4", now.Add(time.Hour), now), storage.ErrNotFound)
}

// testSessionsExpireInTheStore: the backend drops a session at its end on the caller's clock,
// so abandoned sessions do not pile up, and keeps one that is touched.
func testSessionsExpireInTheStore(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	now := time.Now()
	short := session("short", "u1", now)
	short.IdleUntil = now.Add(300 * time.Millisecond)
	mustNoErr(t, s.CreateSession(ctx, short, now))
	kept := short
	kept.IDHash = "kept"
	mustNoErr(t, s.CreateSession(ctx, kept, now))
	mustNoErr(t, s.TouchSession(ctx, "kept", time.Now().Add(time.Hour), time.Now()))
	time.Sleep(700 * time.Millisecond)
	// Asked with a clock from before its end: only a record the backend still holds can answer.
	_, err := s.GetSession(ctx, "short", now)
	wantErr(t, err, storage.ErrNotFound)
	if _, err := s.GetSession(ctx, "kept", time.Now()); err != nil {
		t.Fatalf("a touched session was dropped at its first idle expiry: %v", err)
	}
}
