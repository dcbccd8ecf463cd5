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
// could not be revoked is named in a warning; a client whose tokens fit is not.
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
	var out testlog.Buffer
	warnLongTokens(ctx, store, grants.AccessTokenBound(grants.Policy{Issuer: "https://tokens.example.test"}, km.Set), slog.New(slog.NewTextHandler(&out, nil)))
	if log := out.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "client_id=too-long") || strings.Contains(log, "client_id=fits") {
		t.Fatalf("want one warning naming too-long:\n%s", log)
	}
}
