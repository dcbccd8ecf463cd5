package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// TestPersonalTokenCapUnderConcurrentAdminRequests: 60 admin requests at once for a user who
// holds 90 personal tokens create exactly 10; the other 50 get a clear 400, on both stores.
func TestPersonalTokenCapUnderConcurrentAdminRequests(t *testing.T) {
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
			store := st.open(t)
			t.Cleanup(func() { _ = store.Close() })
			ts := newTestServer(t, withStore(store))
			userID, _, _ := newPAT(t, ts, "maria", `{"name":"first","scopes":["orders:read"]}`)
			for i := 1; i < storage.MaxPersonalTokens-10; i++ {
				if r := ts.admin(t, "POST", "/admin/users/"+userID+"/tokens", fmt.Sprintf(`{"name":"t%d"}`, i)); r.Status != 201 {
					t.Fatalf("token %d: %d %s", i, r.Status, r.RawBody)
				}
			}
			replies := make([]reply, 60)
			var wg sync.WaitGroup
			for i := range replies {
				wg.Go(func() {
					replies[i] = ts.admin(t, "POST", "/admin/users/"+userID+"/tokens", fmt.Sprintf(`{"name":"burst %d"}`, i))
				})
			}
			wg.Wait()
			created, refused := 0, 0
			for _, r := range replies {
				switch {
				case r.Status == 201:
					created++
				case r.Status == 400 && r.str("error") == "invalid_request" && strings.Contains(r.str("error_description"), "at most 100"):
					refused++
				default:
					t.Errorf("unexpected answer %d %s", r.Status, r.RawBody)
				}
			}
			if created != 10 || refused != 50 {
				t.Fatalf("%d created, %d refused; want 10 and 50", created, refused)
			}
			held, err := store.ListPersonalTokens(context.Background(), userID)
			if err != nil || len(held) != storage.MaxPersonalTokens {
				t.Fatalf("the user holds %d tokens (%v), want %d", len(held), err, storage.MaxPersonalTokens)
			}
		})
	}
}
