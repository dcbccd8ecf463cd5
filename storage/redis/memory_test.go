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
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// TestRefreshTokenMemory weighs what a live refresh token costs Redis: families of the shape
// a password login leaves (the scale benchmark's), written by the Seeder, then each rotated
// once with a successor of the size a sealed pair has. The first figure is what the store
// holds per login at rest and must stay within 400 bytes; the second is logged.
func TestRefreshTokenMemory(t *testing.T) {
	const n = 2000
	srv := redistest.Start(t)
	ctx := context.Background()
	s, err := redis.Open(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	raw := srv.Client()
	t.Cleanup(func() { _ = raw.Close() })
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
