package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func key(id string, created time.Time) storage.SigningKey {
	return storage.SigningKey{ID: id, PrivatePEM: []byte("pem-" + id), CreatedAt: created}
}

func byID(keys []storage.SigningKey) map[string]storage.SigningKey {
	m := map[string]storage.SigningKey{}
	for _, k := range keys {
		m[k.ID] = k
	}
	return m
}

func testSigningKeys(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	first := storage.SigningKey{ID: "k1", PrivatePEM: []byte("pem1"), CreatedAt: time.Now().UTC()}
	keys, created, err := s.EnsureSigningKey(ctx, first)
	mustNoErr(t, err)
	if !created || len(keys) != 1 || keys[0].ID != "k1" || string(keys[0].PrivatePEM) != "pem1" {
		t.Fatalf("first EnsureSigningKey = %v, %v", keys, created)
	}
	keys, created, err = s.EnsureSigningKey(ctx, storage.SigningKey{ID: "k2", CreatedAt: time.Now().UTC()})
	mustNoErr(t, err)
	if created || len(keys) != 1 || keys[0].ID != "k1" {
		t.Fatalf("second EnsureSigningKey = %v, %v; want k1 kept", keys, created)
	}
}

// testSigningKeysRace: replicas starting at once must agree on one key.
func testSigningKeysRace(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	createdCount := 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, created, err := s.EnsureSigningKey(ctx, storage.SigningKey{ID: fmt.Sprintf("k%d", i), CreatedAt: time.Now().UTC()})
			if err != nil {
				t.Error(err)
			}
			if created {
				mu.Lock()
				createdCount++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	keys, err := s.ListSigningKeys(ctx)
	mustNoErr(t, err)
	if createdCount != 1 || len(keys) != 1 {
		t.Fatalf("10 racing EnsureSigningKey: created %d, stored %d; want 1 and 1", createdCount, len(keys))
	}
}

// testKeyRotation: a rotation adds a key that takes over later and retires the current one,
// to be removed once its tokens have expired; a second rotation waits for the first.
func testKeyRotation(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	_, _, err := s.EnsureSigningKey(ctx, key("k1", now))
	mustNoErr(t, err)
	next := key("k2", now)
	next.ActivatesAt = now.Add(10 * time.Minute)
	keys, err := s.RotateSigningKey(ctx, next, now, 3*time.Hour)
	mustNoErr(t, err)
	m := byID(keys)
	if len(keys) != 2 || !m["k1"].RetiredAt.Equal(next.ActivatesAt) || !m["k1"].RemoveAt.Equal(next.ActivatesAt.Add(3*time.Hour)) ||
		!m["k2"].RetiredAt.IsZero() || !m["k2"].ActivatesAt.Equal(next.ActivatesAt) {
		t.Fatalf("after rotation: %+v", keys)
	}
	// While k2 waits, another rotation is refused and changes nothing.
	_, err = s.RotateSigningKey(ctx, key("k3", now), now.Add(time.Minute), time.Hour)
	wantErr(t, err, storage.ErrAlreadyExists)
	if l, _ := s.ListSigningKeys(ctx); len(l) != 2 {
		t.Fatalf("a refused rotation wrote: %+v", l)
	}
	// Once k2 signs, the next rotation retires it.
	later := now.Add(11 * time.Minute)
	k3 := key("k3", later)
	keys, err = s.RotateSigningKey(ctx, k3, later, time.Hour)
	mustNoErr(t, err)
	m = byID(keys)
	if len(keys) != 3 || !m["k2"].RetiredAt.Equal(later) || !m["k1"].RetiredAt.Equal(next.ActivatesAt) {
		t.Fatalf("second rotation: %+v", keys)
	}
	// Removal: k1's tokens expire at 10m+3h; k2's at 11m+1h.
	left, err := s.RemoveSigningKeys(ctx, now.Add(2*time.Hour))
	mustNoErr(t, err)
	if m := byID(left); len(left) != 2 || m["k1"].ID == "" || m["k3"].ID == "" {
		t.Fatalf("at 2h: %+v, want k1 and k3", left)
	}
	left, err = s.RemoveSigningKeys(ctx, now.Add(4*time.Hour))
	mustNoErr(t, err)
	if len(left) != 1 || left[0].ID != "k3" {
		t.Fatalf("at 4h: %+v, want only k3", left)
	}
	if l, _ := s.ListSigningKeys(ctx); len(l) != 1 {
		t.Fatalf("removed keys still stored: %+v", l)
	}
}

// testKeyRestore: a store that lost its keys takes back a replica's set; one that has keys
// keeps them.
func testKeyRestore(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	held := []storage.SigningKey{key("a", now), key("b", now)}
	restored, err := s.RestoreSigningKeys(ctx, held)
	mustNoErr(t, err)
	if !restored {
		t.Fatal("an empty store did not take the keys back")
	}
	restored, err = s.RestoreSigningKeys(ctx, []storage.SigningKey{key("c", now)})
	mustNoErr(t, err)
	if l, _ := s.ListSigningKeys(ctx); restored || len(l) != 2 {
		t.Fatalf("a store with keys was overwritten: %v %+v", restored, l)
	}
	if _, created, _ := s.EnsureSigningKey(ctx, key("d", now)); created {
		t.Fatal("EnsureSigningKey created a key beside the restored ones")
	}
}

func algKey(id, alg string, created time.Time) storage.SigningKey {
	k := key(id, created)
	k.Algorithm = alg
	return k
}

// testSigningKeysPerAlgorithm: each algorithm has its own first key; a key stored without an
// algorithm is RS256; an algorithm whose keys are all retired takes a new first key.
func testSigningKeysPerAlgorithm(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	_, created, err := s.EnsureSigningKey(ctx, key("legacy", now))
	mustNoErr(t, err)
	if !created {
		t.Fatal("the first key was not stored")
	}
	keys, created, err := s.EnsureSigningKey(ctx, algKey("r2", "RS256", now))
	mustNoErr(t, err)
	if created || len(keys) != 1 {
		t.Fatalf("an RS256 key was added beside a key stored without an algorithm: %+v", keys)
	}
	keys, created, err = s.EnsureSigningKey(ctx, algKey("e1", "ES256", now))
	mustNoErr(t, err)
	m := byID(keys)
	if !created || len(keys) != 2 || m["e1"].Alg() != "ES256" || m["legacy"].Alg() != "RS256" || m["legacy"].Algorithm != "" {
		t.Fatalf("first ES256 key: created %v, %+v", created, keys)
	}
	if _, created, _ = s.EnsureSigningKey(ctx, algKey("e2", "ES256", now)); created {
		t.Fatal("a second ES256 key was stored by EnsureSigningKey")
	}
	// Retired keys stay published, but they do not make an algorithm live.
	keys, err = s.RetireSigningKeys(ctx, "ES256", now, time.Hour)
	mustNoErr(t, err)
	if m := byID(keys); len(keys) != 2 || !m["e1"].RetiredAt.Equal(now) || !m["e1"].RemoveAt.Equal(now.Add(time.Hour)) || !m["legacy"].RetiredAt.IsZero() {
		t.Fatalf("after retiring ES256: %+v", keys)
	}
	keys, created, err = s.EnsureSigningKey(ctx, algKey("e3", "ES256", now.Add(time.Minute)))
	mustNoErr(t, err)
	if !created || len(keys) != 3 {
		t.Fatalf("an algorithm with only retired keys did not take a new one: %v %+v", created, keys)
	}
}

// testSigningKeysPerAlgorithmRace: replicas starting at once with a new algorithm agree on its
// one key, beside the keys already there.
func testSigningKeysPerAlgorithmRace(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	_, _, err := s.EnsureSigningKey(ctx, key("r1", time.Now().UTC()))
	mustNoErr(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	createdCount := 0
	for i := range 10 {
		wg.Go(func() {
			_, created, err := s.EnsureSigningKey(ctx, algKey(fmt.Sprintf("e%d", i), "EdDSA", time.Now().UTC()))
			if err != nil {
				t.Error(err)
			}
			if created {
				mu.Lock()
				createdCount++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	keys, err := s.ListSigningKeys(ctx)
	mustNoErr(t, err)
	if createdCount != 1 || len(keys) != 2 {
		t.Fatalf("10 racing EnsureSigningKey for EdDSA: created %d, stored %d; want 1 and 2", createdCount, len(keys))
	}
}

// testKeyRotationPerAlgorithm: rotating one algorithm retires only its own keys, and a key
// waiting to take over holds back rotations of its algorithm only.
func testKeyRotationPerAlgorithm(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, k := range []storage.SigningKey{key("r1", now), algKey("p1", "PS256", now), algKey("e1", "ES256", now)} {
		_, _, err := s.EnsureSigningKey(ctx, k)
		mustNoErr(t, err)
	}
	next := algKey("e2", "ES256", now)
	next.ActivatesAt = now.Add(10 * time.Minute)
	keys, err := s.RotateSigningKey(ctx, next, now, time.Hour)
	mustNoErr(t, err)
	m := byID(keys)
	if len(keys) != 4 || !m["e1"].RetiredAt.Equal(next.ActivatesAt) || !m["r1"].RetiredAt.IsZero() || !m["p1"].RetiredAt.IsZero() ||
		!m["r1"].RemoveAt.IsZero() || !m["p1"].RemoveAt.IsZero() {
		t.Fatalf("rotating ES256 touched another algorithm: %+v", keys)
	}
	_, err = s.RotateSigningKey(ctx, algKey("e3", "ES256", now), now, time.Hour)
	wantErr(t, err, storage.ErrAlreadyExists)
	// ES256's pending key does not hold back RS256.
	r2 := algKey("r2", "RS256", now)
	r2.ActivatesAt = now.Add(5 * time.Minute)
	keys, err = s.RotateSigningKey(ctx, r2, now, 2*time.Hour)
	mustNoErr(t, err)
	m = byID(keys)
	if len(keys) != 5 || !m["r1"].RetiredAt.Equal(r2.ActivatesAt) || !m["r1"].RemoveAt.Equal(r2.ActivatesAt.Add(2*time.Hour)) ||
		!m["e1"].RetiredAt.Equal(next.ActivatesAt) || !m["e2"].RetiredAt.IsZero() || !m["p1"].RetiredAt.IsZero() {
		t.Fatalf("rotating RS256 beside a pending ES256 key: %+v", keys)
	}
	// Retiring PS256 leaves the others; retiring it again changes nothing.
	at := now.Add(time.Minute)
	keys, err = s.RetireSigningKeys(ctx, "PS256", at, time.Hour)
	mustNoErr(t, err)
	m = byID(keys)
	if !m["p1"].RetiredAt.Equal(at) || !m["p1"].RemoveAt.Equal(at.Add(time.Hour)) || !m["r2"].RetiredAt.IsZero() || !m["e2"].RetiredAt.IsZero() {
		t.Fatalf("retiring PS256: %+v", keys)
	}
	keys, err = s.RetireSigningKeys(ctx, "PS256", at.Add(time.Hour), time.Hour)
	mustNoErr(t, err)
	if m := byID(keys); !m["p1"].RetiredAt.Equal(at) {
		t.Fatalf("retiring PS256 again moved its dates: %+v", m["p1"])
	}
	if l, _ := s.ListSigningKeys(ctx); len(l) != 5 {
		t.Fatalf("stored after the rotations: %+v", l)
	}
}
