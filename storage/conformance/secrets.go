package conformance

import (
	"context"
	"sync"
	"testing"

	"github.com/tokensmith/tokensmith/storage"
)

// testServerSecret: the first candidate stored under a name is the secret of that name for
// every later caller, also when many replicas ask at once; names are separate.
func testServerSecret(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const callers = 16
	got := make([]string, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			v, err := s.EnsureServerSecret(ctx, "audit", string(rune('a'+i))+"-candidate")
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for i, v := range got {
		if v != got[0] || v == "" {
			t.Fatalf("caller %d got %q, caller 0 %q: want one secret", i, v, got[0])
		}
	}
	for _, tc := range []struct{ name, candidate, want string }{
		{"audit", "later", got[0]},
		{"other", "first-other", "first-other"},
		{"other", "second-other", "first-other"},
	} {
		v, err := s.EnsureServerSecret(ctx, tc.name, tc.candidate)
		mustNoErr(t, err)
		if v != tc.want {
			t.Errorf("EnsureServerSecret(%q, %q) = %q, want %q", tc.name, tc.candidate, v, tc.want)
		}
	}
}
