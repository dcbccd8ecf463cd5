package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/internal/testlog"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// TestWarnLongTokens: at start, a client stored before token lengths were checked whose tokens
// could not be revoked is named in a warning; a client whose tokens fit is not; the clients are
// walked once per configuration.
func TestWarnLongTokens(t *testing.T) {
	t.Parallel()
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	km, _, err := keys.Open(ctx, store, keys.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(km.Set.Close)
	many := make([]string, 900)
	for i := range many {
		many[i] = fmt.Sprintf("orders:read-%04d", i)
	}
	for _, c := range []storage.Client{{ID: "too-long", Scopes: many}, {ID: "fits", Scopes: many[:10]}} {
		if err := store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// The first start under a configuration walks the clients; later starts (any replica) under
	// the same one do not; a configuration with a longer issuer walks them again.
	for _, tc := range []struct {
		name, issuer string
		warns        bool
	}{
		{"first start", "https://tokens.example.test", true},
		{"restart, same configuration", "https://tokens.example.test", false},
		{"longer issuer", "https://tokens.example.test/tenant", true},
		{"restart with it", "https://tokens.example.test/tenant", false},
	} {
		var out testlog.Buffer
		warnLongTokens(ctx, store, grants.AccessTokenBound(grants.Policy{Issuer: tc.issuer}, km.Set), slog.New(slog.NewTextHandler(&out, nil)))
		log := out.String()
		if strings.Contains(log, "client_id=fits") || strings.Contains(log, "client_id=too-long") != tc.warns {
			t.Fatalf("%s: want a warning naming too-long: %v\n%s", tc.name, tc.warns, log)
		}
	}
}
