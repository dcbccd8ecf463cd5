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
