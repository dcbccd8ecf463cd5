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
