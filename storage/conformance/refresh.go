package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func testRefreshRotation(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	newFamily(t, s, "f1", now)
	wantErr(t, s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: "x", FamilyID: "f1", ExpiresAt: now.Add(time.Hour)}), storage.ErrAlreadyExists)

	got, err := s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1", now, 5*time.Second))
	mustNoErr(t, err)
	if !got.Fresh || string(got.Sealed) != "sealed-h1" {
		t.Fatalf("first rotation = %+v, want fresh sealed-h1", got)
	}
	// A retry inside the grace window gets the same successor and mints nothing.
	got, err = s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1-other", now.Add(2*time.Second), 5*time.Second))
	mustNoErr(t, err)
	if got.Fresh || string(got.Sealed) != "sealed-h1" {
		t.Fatalf("retry in grace = %+v, want the stored successor", got)
	}
	if _, err := s.GetRefreshToken(ctx, "f1", "h1-other"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a retry stored its own successor: %v", err)
	}
	rec, err := s.GetRefreshToken(ctx, "f1", "h1")
	mustNoErr(t, err)
	if rec.Subject != "user" || !rec.UsedAt.IsZero() {
		t.Fatalf("successor record = %+v", rec)
	}
	// The successor rotates in turn.
	got, err = s.RotateRefreshToken(ctx, rotation("f1", "h1", "h2", now.Add(3*time.Second), 5*time.Second))
	mustNoErr(t, err)
	if !got.Fresh {
		t.Fatal("successor did not rotate")
	}
	_, err = s.RotateRefreshToken(ctx, rotation("f1", "unknown", "h9", now, 5*time.Second))
	wantErr(t, err, storage.ErrNotFound)

	// A login bound to a DPoP key (or a certificate) keeps its thumbprint through the rotation's record.
	bound := storage.RefreshToken{Hash: "b0", FamilyID: "f-bound", ClientID: "client", Subject: "user", AccessTTL: time.Hour,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		X5T: "3CubvbSyzzT5rv-qNUQ6cSPLxjfgyB6-QiCHtOq9-00"}
	mustNoErr(t, s.CreateRefreshToken(ctx, bound))
	r := rotation("f-bound", "b0", "b1", now, 5*time.Second)
	r.Next.JKT, r.Next.X5T = bound.JKT, bound.X5T
	_, err = s.RotateRefreshToken(ctx, r)
	mustNoErr(t, err)
	for _, h := range []string{"b0", "b1"} {
		if rec, err := s.GetRefreshToken(ctx, "f-bound", h); err != nil || rec.JKT != bound.JKT || rec.X5T != bound.X5T {
			t.Fatalf("bound record %s: jkt %q x5t %q (%v), want %q %q", h, rec.JKT, rec.X5T, err, bound.JKT, bound.X5T)
		}
	}
}

func testRefreshForeignClient(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	newFamily(t, s, "f1", now)
	r := rotation("f1", "h0", "h1", now, 5*time.Second)
	r.ClientID = "intruder"
	_, err := s.RotateRefreshToken(ctx, r)
	wantErr(t, err, storage.ErrNotFound)
	// The owner's token was not burned by the foreign attempt.
	got, err := s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1", now, 5*time.Second))
	mustNoErr(t, err)
	if !got.Fresh {
		t.Fatal("owner could not rotate after a foreign attempt")
	}
}

func testRefreshExpired(t *testing.T, s storage.Storage) {
	now := time.Now().UTC()
	newFamily(t, s, "f1", now)
	_, err := s.RotateRefreshToken(context.Background(), rotation("f1", "h0", "h1", now.Add(time.Hour), time.Second))
	wantErr(t, err, storage.ErrNotFound)
}

func testRefreshReplay(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	newFamily(t, s, "f1", now)
	_, err := s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1", now, 5*time.Second))
	mustNoErr(t, err)
	// After the window the old token is a replay, and the family dies with it.
	_, err = s.RotateRefreshToken(ctx, rotation("f1", "h0", "hx", now.Add(6*time.Second), 5*time.Second))
	wantErr(t, err, storage.ErrReplay)
	if !familyRevoked(t, s, "f1", now) {
		t.Fatal("family not revoked after replay")
	}
	_, err = s.RotateRefreshToken(ctx, rotation("f1", "h1", "h2", now.Add(7*time.Second), 5*time.Second))
	wantErr(t, err, storage.ErrRevoked)

	// With grace 0 the second use is a replay at once.
	newFamily(t, s, "f2", now)
	_, err = s.RotateRefreshToken(ctx, rotation("f2", "h0", "h1", now, 0))
	mustNoErr(t, err)
	_, err = s.RotateRefreshToken(ctx, rotation("f2", "h0", "h1b", now, 0))
	wantErr(t, err, storage.ErrReplay)
}

func testRefreshConcurrent(t *testing.T, s storage.Storage) {
	for _, grace := range []time.Duration{5 * time.Second, 0} {
		t.Run(fmt.Sprintf("grace=%s", grace), func(t *testing.T) {
			ctx := context.Background()
			now := time.Now().UTC()
			fam := fmt.Sprintf("fam-%d", grace)
			newFamily(t, s, fam, now)
			const n = 20
			var wg sync.WaitGroup
			var mu sync.Mutex
			fresh, ok, sealed := 0, 0, map[string]bool{}
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := s.RotateRefreshToken(ctx, rotation(fam, "h0", fmt.Sprintf("n%d", i), now, grace))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						return
					}
					ok++
					sealed[string(got.Sealed)] = true
					if got.Fresh {
						fresh++
					}
				}()
			}
			wg.Wait()
			if fresh != 1 {
				t.Fatalf("%d concurrent rotations: %d fresh, want exactly 1", n, fresh)
			}
			if grace > 0 && (ok != n || len(sealed) != 1) {
				t.Fatalf("grace on: %d succeeded with %d distinct successors, want %d and 1", ok, len(sealed), n)
			}
			if grace == 0 && ok != 1 {
				t.Fatalf("grace off: %d succeeded, want exactly 1", ok)
			}
		})
	}
}

// testTokensLeaveTheStore: expired refresh tokens (used or not), their families, revoked
// families and revoked jtis leave the store by themselves, through the backend's own expiry:
// asked with a clock from before their end, which any record still held would answer to,
// nothing is there. No janitor has to run, so none can fall behind.
func testTokensLeaveTheStore(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now()
	short := func(fam string) storage.RefreshToken {
		return storage.RefreshToken{Hash: "h0", FamilyID: fam, ClientID: "client", Subject: "user",
			AccessTTL: 100 * time.Millisecond, IssuedAt: now, ExpiresAt: now.Add(300 * time.Millisecond)}
	}
	for _, fam := range []string{"unused", "rotated", "revoked"} {
		mustNoErr(t, s.CreateRefreshToken(ctx, short(fam)))
	}
	r := rotation("rotated", "h0", "h1", now, 0)
	r.Next.ExpiresAt = now.Add(300 * time.Millisecond)
	r.Next.AccessTTL = 100 * time.Millisecond
	_, err := s.RotateRefreshToken(ctx, r)
	mustNoErr(t, err)
	mustNoErr(t, s.RevokeFamily(ctx, "revoked", now))
	mustNoErr(t, s.RevokeAccessToken(ctx, storage.AccessRevocation{Pool: storage.Pool{ClientID: "client", Subject: "client"},
		JTI: "jti-short", ExpiresAt: now.Add(300 * time.Millisecond), Now: now}))
	mustNoErr(t, s.RevokeAccessToken(ctx, storage.AccessRevocation{Pool: storage.Pool{ClientID: "client", Subject: "client"},
		JTI: "jti-kept", ExpiresAt: now.Add(time.Hour), Now: now}))

	time.Sleep(1500 * time.Millisecond)
	for _, k := range [][2]string{{"unused", "h0"}, {"rotated", "h0"}, {"rotated", "h1"}, {"revoked", "h0"}} {
		if _, err := s.GetRefreshToken(ctx, k[0], k[1]); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("refresh token %s/%s after its expiry: %v, want it gone", k[0], k[1], err)
		}
	}
	var fams, tokens, denied []string
	mustNoErr(t, s.EachRefreshFamily(ctx, now, func(f storage.RefreshFamily) error { fams = append(fams, f.ID); return nil }))
	mustNoErr(t, s.EachRefreshToken(ctx, now, func(t storage.RefreshToken) error { tokens = append(tokens, t.FamilyID); return nil }))
	mustNoErr(t, s.EachRevokedAccessToken(ctx, now, func(r storage.RevokedAccessToken) error { denied = append(denied, r.JTI); return nil }))
	if len(fams) != 0 || len(tokens) != 0 {
		t.Errorf("after expiry the store still holds families %v and refresh tokens of %v", fams, tokens)
	}
	if len(denied) != 1 || denied[0] != "jti-kept" {
		t.Errorf("after expiry the deny-list holds %v, want only jti-kept", denied)
	}
	st, err := s.TokenState(ctx, storage.TokenQuery{ClientID: "client", JTI: "jti-short", Now: now})
	mustNoErr(t, err)
	if st.Revoked {
		t.Error("an expired jti is still on the deny-list")
	}
}
