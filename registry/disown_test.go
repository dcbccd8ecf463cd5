package registry_test

import (
	"context"
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
