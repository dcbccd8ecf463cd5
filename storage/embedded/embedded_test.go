package embedded_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// TestLegacyUsernames: users stored before usernames were normalised.
func TestLegacyUsernames(t *testing.T) {
	t.Parallel()
	conformance.RunLegacyUsernameTests(t, func(t *testing.T) storage.Storage {
		s, err := embedded.OpenMemory()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, embedded.PutLegacyUser)
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

// aofSetKeys lists the keys of the set commands in a buntdb data file, in file order.
func aofSetKeys(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var keys []string
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			return keys
		} else if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
		if !strings.HasPrefix(line, "*") || err != nil {
			t.Fatalf("data file: %q is not the start of a command", line)
		}
		parts := make([]string, n)
		for i := range parts {
			head, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
			if err != nil {
				t.Fatalf("data file: %q is not a length", head)
			}
			b := make([]byte, size+2)
			if _, err := io.ReadFull(r, b); err != nil {
				t.Fatal(err)
			}
			parts[i] = string(b[:size])
		}
		if strings.EqualFold(parts[0], "set") {
			keys = append(keys, parts[1])
		}
	}
}

// TestCloseWritesTheFileInKeyOrder: a data file written since it was opened is left in key
// order by Close, which is what makes the next start replay it fast, and holds every record
// after it; a file opened and closed without a write is not rewritten.
func TestCloseWritesTheFileInKeyOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ts.db")
	s, err := embedded.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Enough records (about 9 MiB) for the order to be worth a rewrite, seeded in the
	// random order of their ids.
	const n = 10_000
	now := time.Now().UTC()
	if err := s.SeedClients(ctx, n, func(i int) storage.Client {
		return storage.Client{ID: storage.KeyDigest("client", strconv.Itoa(i)), Name: strings.Repeat("n", 200), CreatedAt: now}
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.SeedRefreshTokens(ctx, n, func(i int) storage.RefreshToken {
		return storage.RefreshToken{Hash: storage.KeyDigest("token", strconv.Itoa(i)), FamilyID: storage.KeyDigest("family", strconv.Itoa(i)),
			ClientID: "c", Subject: strings.Repeat("s", 100), IssuedAt: now, ExpiresAt: now.Add(time.Hour), AccessTTL: time.Hour}
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	keys := aofSetKeys(t, path)
	if !slices.IsSorted(keys) {
		t.Errorf("after Close the %d records of the data file are not in key order", len(keys))
	}
	written, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	s, err = embedded.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clients, tokens := 0, 0
	if err := s.EachClient(ctx, func(storage.Client) error { clients++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.EachRefreshToken(ctx, now, func(storage.RefreshToken) error { tokens++; return nil }); err != nil {
		t.Fatal(err)
	}
	if clients != n || tokens != n {
		t.Errorf("reopened: %d clients and %d refresh tokens, want %d of each", clients, tokens, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(written, after) || !after.ModTime().Equal(written.ModTime()) {
		t.Errorf("a file opened and closed without a write was rewritten (%v)", err)
	}
}
