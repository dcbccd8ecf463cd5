package redis_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// TestRefreshTokenMemory weighs what a live refresh token costs Redis: families of the shape
// a password login leaves (the scale benchmark's), written by the Seeder, then each rotated
// once with a successor of the size a sealed pair has. The first figure is what the store
// holds per login at rest and must stay within 400 bytes; the second is logged.
func TestRefreshTokenMemory(t *testing.T) {
	const n = 2000
	s, raw := openWithRaw(t)
	ctx := context.Background()
	used := func() int64 {
		t.Helper()
		info, err := raw.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatal("INFO memory has no used_memory")
		return 0
	}
	now := time.Now().UTC()
	token := func(i int, gen string) storage.RefreshToken {
		sum := sha256.Sum256([]byte(gen + strconv.Itoa(i)))
		fam := sha256.Sum256([]byte(strconv.Itoa(i)))
		return storage.RefreshToken{
			Hash: hex.EncodeToString(sum[:]), FamilyID: base64.RawURLEncoding.EncodeToString(fam[:9]),
			ClientID: fmt.Sprintf("client%07d", i%100), Subject: fmt.Sprintf("user%08d", i), Scope: "orders:read",
			AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour),
		}
	}
	before := used()
	if err := s.SeedRefreshTokens(ctx, n, func(i int) storage.RefreshToken { return token(i, "a") }); err != nil {
		t.Fatal(err)
	}
	perToken := float64(used()-before) / n
	t.Logf("%.0f bytes per live refresh token (its family included)", perToken)
	if perToken > 400 {
		t.Errorf("a live refresh token costs Redis %.0f bytes, want at most 400", perToken)
	}

	// A sealed pair holds an access token of up to 1000 characters and a refresh token.
	sealed := []byte(strings.Repeat("s", 1100))
	for i := range n {
		old, next := token(i, "a"), token(i, "b")
		next.IssuedAt = now.Add(time.Second)
		if _, err := s.RotateRefreshToken(ctx, storage.Rotation{FamilyID: old.FamilyID, Hash: old.Hash, ClientID: old.ClientID,
			Now: now.Add(time.Second), Next: next, Sealed: sealed}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%.0f bytes per family after one rotation (its live token and a used one with a %d-byte successor)",
		float64(used()-before)/n, len(sealed))
}

// TestFamilyHashStaysCompact: the family's hash of every kind of login (a client's, a user's,
// one bound to a DPoP key or a certificate, with audiences) keeps Redis's compact encoding,
// on which its weight depends, when created and after a rotation.
func TestFamilyHashStaysCompact(t *testing.T) {
	s, raw := openWithRaw(t)
	ctx := context.Background()
	now := time.Now().UTC()
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	thumb := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	if err := s.CreateUser(ctx, storage.User{ID: "u-abcdefghijkl", Username: "alice", Epoch: 7}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tok  storage.RefreshToken
	}{
		{"client", storage.RefreshToken{Subject: "abcdefghijkl", Scope: "orders:read"}},
		{"user", storage.RefreshToken{Subject: "u-abcdefghijkl", UserID: "u-abcdefghijkl", Epoch: 7, Scope: "openid profile email offline_access"}},
		{"dpop", storage.RefreshToken{Subject: "abcdefghijkl", Scope: "a b c", JKT: thumb, Audience: []string{"https://api.example.com"}}},
		{"certificate", storage.RefreshToken{Subject: "abcdefghijkl", X5T: thumb, Audience: []string{"orders", "billing"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.tok
			first.FamilyID, first.Hash, first.ClientID = "fam-"+tc.name, hash(tc.name), "abcdefghijkl"
			first.AccessTTL, first.IssuedAt, first.ExpiresAt = time.Hour, now, now.Add(30*24*time.Hour)
			if err := s.CreateRefreshToken(ctx, first); err != nil {
				t.Fatal(err)
			}
			key := "ts:{f:" + first.FamilyID + "}:fam"
			if enc, err := raw.ObjectEncoding(ctx, key).Result(); err != nil || enc != "listpack" {
				t.Errorf("the new family's hash is %q (%v), want listpack", enc, err)
			}
			next := first
			next.Hash, next.IssuedAt = hash(tc.name+"/next"), now.Add(time.Second)
			if _, err := s.RotateRefreshToken(ctx, storage.Rotation{FamilyID: first.FamilyID, Hash: first.Hash, ClientID: first.ClientID,
				Now: next.IssuedAt, Next: next, Sealed: []byte("sealed")}); err != nil {
				t.Fatal(err)
			}
			if enc, err := raw.ObjectEncoding(ctx, key).Result(); err != nil || enc != "listpack" {
				t.Errorf("after a rotation the family's hash is %q (%v), want listpack", enc, err)
			}
		})
	}
}
