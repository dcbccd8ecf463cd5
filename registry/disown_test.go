package registry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// TestDeleteUserClearsOwnership: deleting a user leaves none of its clients naming it as
// owner, and the clients of other users as they were, on both stores.
func TestDeleteUserClearsOwnership(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) storage.Storage
	}{
		{"memory", func(t *testing.T) storage.Storage {
			s, err := embedded.OpenMemory()
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"redis", func(t *testing.T) storage.Storage {
			srv := redistest.Start(t)
			s, err := redis.Open(context.Background(), srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			store := st.open(t)
			t.Cleanup(func() { _ = store.Close() })
			reg := registry.New(store, nil)
			alice, err := reg.CreateUser(ctx, registry.UserInput{Username: "alice", Password: "alice-password"})
			if err != nil {
				t.Fatal(err)
			}
			bob, err := reg.CreateUser(ctx, registry.UserInput{Username: "bob", Password: "bob-password"})
			if err != nil {
				t.Fatal(err)
			}
			owners := map[string]string{"a1": alice.ID, "a2": alice.ID, "b1": bob.ID, "none": ""}
			for id, owner := range owners {
				c := storage.Client{ID: id, GrantTypes: []string{"client_credentials"}, Owner: owner, CreatedAt: time.Now()}
				if err := store.CreateClient(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := reg.DeleteUser(ctx, alice.ID); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"a1": "", "a2": "", "b1": bob.ID, "none": ""}
			for id, owner := range want {
				c, err := store.GetClient(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if c.Owner != owner {
					t.Errorf("client %s: owner %q, want %q", id, c.Owner, owner)
				}
			}
		})
	}
}

// listingRefused is a store whose whole-registry reads fail: what runs on it reads clients
// only through the owner index.
type listingRefused struct{ storage.Storage }

var errListed = errors.New("the whole client list was read")

func (listingRefused) ListClients(context.Context) ([]storage.Client, error) { return nil, errListed }
func (listingRefused) EachClient(context.Context, func(storage.Client) error) error {
	return errListed
}

// TestOwnerPathsReadOnlyTheOwners: the console's list of a user's clients and the clearing of
// a deleted user's ownership find the user's clients among thousands of others without
// reading the whole client list.
func TestOwnerPathsReadOnlyTheOwners(t *testing.T) {
	ctx := context.Background()
	mem, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	const others = 10_000
	err = mem.SeedClients(ctx, others, func(i int) storage.Client {
		return storage.Client{ID: fmt.Sprintf("other-%05d", i), Owner: fmt.Sprintf("user-%d", i%100), CreatedAt: time.Now()}
	})
	if err != nil {
		t.Fatal(err)
	}
	store := listingRefused{mem}
	reg := registry.New(store, nil)
	alice, err := reg.CreateUser(ctx, registry.UserInput{Username: "alice", Password: "alice-password"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a2", "a1"} {
		c := storage.Client{ID: id, GrantTypes: []string{"client_credentials"}, Owner: alice.ID, CreatedAt: time.Now()}
		if err := store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	owned, err := reg.OwnedClients(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range owned {
		ids = append(ids, c.ClientID)
	}
	if !slices.Equal(ids, []string{"a1", "a2"}) {
		t.Errorf("alice's clients among %d others: %v, want [a1 a2]", others, ids)
	}
	if err := reg.DeleteUser(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2"} {
		if c, err := store.GetClient(ctx, id); err != nil || c.Owner != "" {
			t.Errorf("client %s after its owner was deleted: owner %q (%v), want none", id, c.Owner, err)
		}
	}
	if got, err := store.OwnedClients(ctx, "user-7"); err != nil || len(got) != others/100 {
		t.Errorf("another user's clients: %d (%v), want %d", len(got), err, others/100)
	}
}
