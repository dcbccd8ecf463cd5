package cmd

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// noListing is a store whose whole-registry reads fail.
type noListing struct{ storage.Storage }

func (noListing) ListClients(context.Context) ([]storage.Client, error) {
	return nil, errors.New("the whole client list was read")
}

// TestKeyLifetimeReadsNoClients: how long a retired signing key stays published is the
// longest access token any client was given or the server grants, found without reading the
// clients, among thousands of them, and still covering a client whose lifetime was shortened
// after its tokens were issued.
func TestKeyLifetimeReadsNoClients(t *testing.T) {
	ctx := context.Background()
	mem, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	err = mem.SeedClients(ctx, 10_000, func(i int) storage.Client {
		return storage.Client{ID: fmt.Sprintf("c-%05d", i), AccessTokenTTL: time.Duration(i%60) * time.Minute, CreatedAt: time.Now()}
	})
	if err != nil {
		t.Fatal(err)
	}
	lifetime := keyOptions(config.Default(), noListing{mem}, nil).Lifetime
	steps := []struct {
		name   string
		change func() error
		want   time.Duration
	}{
		{"the server's longest default (24h password tokens)", func() error { return nil }, 24 * time.Hour},
		{"a client of 48h", func() error {
			return mem.CreateClient(ctx, storage.Client{ID: "long", AccessTokenTTL: 48 * time.Hour, CreatedAt: time.Now()})
		}, 48 * time.Hour},
		{"that client shortened", func() error {
			_, err := mem.UpdateClient(ctx, "long", func(c *storage.Client) error { c.AccessTokenTTL = time.Hour; return nil })
			return err
		}, 48 * time.Hour},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatal(err)
		}
		got, err := lifetime(ctx)
		if err != nil || got != st.want {
			t.Errorf("%s: lifetime %v (%v), want %v", st.name, got, err, st.want)
		}
	}
}
