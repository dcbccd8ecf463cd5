package conformance

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// ownedIDs is the sorted ids of owner's clients.
func ownedIDs(t *testing.T, s storage.Storage, owner string) []string {
	t.Helper()
	cs, err := s.OwnedClients(context.Background(), owner)
	mustNoErr(t, err)
	var ids []string
	for _, c := range cs {
		if c.Owner != owner {
			t.Errorf("OwnedClients(%q) answered client %s of %q", owner, c.ID, c.Owner)
		}
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

// testOwnedClients: the owner index follows every way a client is written (create, update,
// delete, restore, seed), owner ids that look like key patterns or contain separators are
// kept apart, and an owner's list is right among thousands of other owners' clients.
func testOwnedClients(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	mk := func(id, owner string) storage.Client {
		return storage.Client{ID: id, Owner: owner, GrantTypes: []string{"client_credentials"}, CreatedAt: now, UpdatedAt: now}
	}
	for _, c := range []storage.Client{mk("a1", "alice"), mk("a2", "alice"), mk("b1", "bob"), mk("n1", ""),
		mk("s1", "al*"), mk("s2", "alice:x"), mk("s3", "ali?e")} {
		mustNoErr(t, s.CreateClient(ctx, c))
	}
	check := func(step string, want map[string][]string) {
		t.Helper()
		for owner, ids := range want {
			if got := ownedIDs(t, s, owner); !slices.Equal(got, ids) {
				t.Errorf("%s: OwnedClients(%q) = %v, want %v", step, owner, got, ids)
			}
		}
	}
	check("created", map[string][]string{"alice": {"a1", "a2"}, "bob": {"b1"}, "": nil, "nobody": nil,
		"al*": {"s1"}, "alice:x": {"s2"}, "ali?e": {"s3"}, "al": nil})

	// An update that moves a client, one that gives it an owner, one that takes it away, and
	// one that changes something else.
	for id, owner := range map[string]string{"a2": "bob", "n1": "alice", "b1": ""} {
		_, err := s.UpdateClient(ctx, id, func(c *storage.Client) error { c.Owner = owner; return nil })
		mustNoErr(t, err)
	}
	_, err := s.UpdateClient(ctx, "a1", func(c *storage.Client) error { c.Name = "renamed"; return nil })
	mustNoErr(t, err)
	check("updated", map[string][]string{"alice": {"a1", "n1"}, "bob": {"a2"}})

	// A refused update changes nothing.
	_, err = s.UpdateClient(ctx, "a1", func(c *storage.Client) error { c.Owner = "bob"; return storage.ErrNotFound })
	wantErr(t, err, storage.ErrNotFound)
	check("refused update", map[string][]string{"alice": {"a1", "n1"}, "bob": {"a2"}})

	mustNoErr(t, s.DeleteClient(ctx, "a1", now))
	wantErr(t, s.DeleteClient(ctx, "a1", now), storage.ErrNotFound)
	check("deleted", map[string][]string{"alice": {"n1"}})
	// Created again under the same id, for someone else, it is theirs only.
	mustNoErr(t, s.CreateClient(ctx, mk("a1", "bob")))
	check("recreated", map[string][]string{"alice": {"n1"}, "bob": {"a1", "a2"}})

	// A restore moves a client between owners as an update does, and a dry run moves nothing.
	_, err = s.RestoreClient(ctx, mk("a2", "carol"), storage.Restore{DryRun: true})
	mustNoErr(t, err)
	check("dry run", map[string][]string{"bob": {"a1", "a2"}, "carol": nil})
	_, err = s.RestoreClient(ctx, mk("a2", "carol"), storage.Restore{})
	mustNoErr(t, err)
	_, err = s.RestoreClient(ctx, mk("r1", "carol"), storage.Restore{})
	mustNoErr(t, err)
	check("restored", map[string][]string{"bob": {"a1"}, "carol": {"a2", "r1"}})

	// Among many clients of other owners (seeded in bulk, past one batch), an owner's list
	// is the same, and the seeded owner's is all of them.
	if seeder, ok := s.(storage.Seeder); ok {
		n := storage.SeedBatch + 2
		mustNoErr(t, seeder.SeedClients(ctx, n, func(i int) storage.Client {
			return mk(fmt.Sprintf("crowd-%05d", i), fmt.Sprintf("crowd-%d", i%2))
		}))
		check("seeded", map[string][]string{"alice": {"n1"}, "bob": {"a1"}, "carol": {"a2", "r1"}})
		if got := len(ownedIDs(t, s, "crowd-1")); got != n/2 {
			t.Errorf("seeded: %d clients of crowd-1, want %d", got, n/2)
		}
	}
}

// testOwnedClientsConcurrent: updates racing to move one client between owners leave it in
// exactly the list of the owner it ends with.
func testOwnedClientsConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	owners := []string{"x", "y", "z"}
	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "c", Owner: "x", CreatedAt: time.Now()}))
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			_, err := s.UpdateClient(ctx, "c", func(c *storage.Client) error { c.Owner = owners[i%3]; return nil })
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	final, err := s.GetClient(ctx, "c")
	mustNoErr(t, err)
	for _, o := range owners {
		want := []string(nil)
		if o == final.Owner {
			want = []string{"c"}
		}
		if got := ownedIDs(t, s, o); !slices.Equal(got, want) {
			t.Errorf("after racing updates (owner %q): OwnedClients(%q) = %v, want %v", final.Owner, o, got, want)
		}
	}
}

// testLongestAccessTokenTTL: the bound a retired signing key is kept for follows the longest
// lifetime any client was given, through every kind of client write, and never shrinks,
// since tokens issued under a longer lifetime may still be live.
func testLongestAccessTokenTTL(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	longest := func() time.Duration {
		t.Helper()
		d, err := s.LongestAccessTokenTTL(ctx)
		mustNoErr(t, err)
		return d
	}
	mk := func(id string, ttl time.Duration) storage.Client {
		return storage.Client{ID: id, AccessTokenTTL: ttl, CreatedAt: now}
	}
	steps := []struct {
		name  string
		write func() error
		want  time.Duration
	}{
		{"empty store", func() error { return nil }, 0},
		{"a client with the default", func() error { return s.CreateClient(ctx, mk("d", 0)) }, 0},
		{"a client of 2h", func() error { return s.CreateClient(ctx, mk("a", 2*time.Hour)) }, 2 * time.Hour},
		{"a shorter one", func() error { return s.CreateClient(ctx, mk("b", time.Minute)) }, 2 * time.Hour},
		{"shortened", func() error {
			_, err := s.UpdateClient(ctx, "a", func(c *storage.Client) error { c.AccessTokenTTL = time.Second; return nil })
			return err
		}, 2 * time.Hour},
		{"raised by an update", func() error {
			_, err := s.UpdateClient(ctx, "b", func(c *storage.Client) error { c.AccessTokenTTL = 5 * time.Hour; return nil })
			return err
		}, 5 * time.Hour},
		{"deleted", func() error { return s.DeleteClient(ctx, "b", now) }, 5 * time.Hour},
		{"restored", func() error {
			_, err := s.RestoreClient(ctx, mk("r", 30*24*time.Hour+time.Millisecond), storage.Restore{})
			return err
		}, 30*24*time.Hour + time.Millisecond},
		{"a sub-millisecond excess", func() error {
			return s.CreateClient(ctx, mk("f", 30*24*time.Hour+time.Millisecond+time.Nanosecond))
		}, 30*24*time.Hour + time.Millisecond + time.Nanosecond},
	}
	for _, st := range steps {
		mustNoErr(t, st.write())
		// Never short of it; a backend may round it up to the millisecond.
		if got := longest(); got < st.want || got >= st.want+time.Millisecond {
			t.Errorf("%s: LongestAccessTokenTTL = %v, want %v (or up to a millisecond more)", st.name, got, st.want)
		}
	}
	if seeder, ok := s.(storage.Seeder); ok {
		mustNoErr(t, seeder.SeedClients(ctx, 2, func(i int) storage.Client { return mk(fmt.Sprint("s", i), time.Duration(i+1)*365*24*time.Hour) }))
		if got, want := longest(), 2*365*24*time.Hour; got != want {
			t.Errorf("seeded: LongestAccessTokenTTL = %v, want %v", got, want)
		}
	}
}
