package embedded_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/conformance"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

func TestMemory(t *testing.T) {
	t.Parallel()
	conformance.RunTests(t, func(t *testing.T) storage.Storage {
		s, err := embedded.OpenMemory()
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFile(t *testing.T) {
	t.Parallel()
	conformance.RunTests(t, func(t *testing.T) storage.Storage {
		s, err := embedded.OpenFile(filepath.Join(t.TempDir(), "sub", "ts.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestFileForgetsDeregisteredReplica: a replica that deregistered before a clean stop is not
// counted again when the file is reopened (buntdb's log would otherwise bring back its last
// heartbeat).
func TestFileForgetsDeregisteredReplica(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ts.db")
	s, err := embedded.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	r := storage.Replica{ID: "a", ExpiresAt: now.Add(15 * time.Second)}
	if err := s.Heartbeat(ctx, r, now); err != nil {
		t.Fatal(err)
	}
	r.ExpiresAt = now.Add(-time.Millisecond)
	if err := s.Heartbeat(ctx, r, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = embedded.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	live, err := s.Replicas(ctx, time.Now())
	if err != nil || len(live) != 0 {
		t.Fatalf("after reopening: %v %+v, want no live replica", err, live)
	}
}

// TestBulkReachesTheDisk: what an import writes in bulk mode is in the file once the mode
// ends, and commits wait for the disk again after it.
func TestBulkReachesTheDisk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ts.db")
	s, err := embedded.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	done, err := s.Bulk()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := s.RestoreClient(ctx, storage.Client{ID: "c", CreatedAt: now}, storage.Restore{Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := done(); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u", Username: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = embedded.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetClient(ctx, "c"); err != nil {
		t.Errorf("the client written in bulk: %v", err)
	}
	if _, err := s.GetUser(ctx, "u"); err != nil {
		t.Errorf("the user written after: %v", err)
	}
}

// TestClientIndexUpgrade: a data file written before the owner index existed (client records
// alone) opens, and its clients are found by owner and bound the key lifetime.
func TestClientIndexUpgrade(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := buntdb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *buntdb.Tx) error {
		for _, c := range []storage.Client{
			{ID: "a1", Owner: "alice", AccessTokenTTL: 3 * time.Hour},
			{ID: "a2", Owner: "alice"},
			{ID: "b1", Owner: "bob", AccessTokenTTL: time.Minute},
			{ID: "n1"},
		} {
			b, err := json.Marshal(c)
			if err != nil {
				return err
			}
			if _, _, err := tx.Set("client:"+c.ID, string(b), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the second open finds the index the first one built
		s, err := embedded.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		cs, err := s.OwnedClients(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"a1", "a2"}) {
			t.Errorf("open %d: alice's clients %v, want [a1 a2]", round+1, ids)
		}
		if d, err := s.LongestAccessTokenTTL(ctx); err != nil || d != 3*time.Hour {
			t.Errorf("open %d: LongestAccessTokenTTL = %v (%v), want 3h", round+1, d, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
