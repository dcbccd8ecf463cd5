package grants

import (
	"slices"
	"testing"
	"time"
)

// TestDPoPNonces: a nonce is good on every replica that shares the key and on none that does
// not, for the window it was handed out in and the next, and not after.
func TestDPoPNonces(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	a, b, other := &core{nonceKey: key}, &core{nonceKey: key}, &core{nonceKey: []byte("another key, another deployment")}
	start := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	handed := a.dpopNonces(start)[0]
	for _, tc := range []struct {
		name  string
		c     *core
		after time.Duration
		good  bool
	}{
		{"the same replica at once", a, 0, true},
		{"another replica with the key", b, time.Second, true},
		{"the next window", b, dpopNonceWindow, true},
		{"two windows on", a, 2 * dpopNonceWindow, false},
		{"a replica with another key", other, 0, false},
	} {
		if got := slices.Contains(tc.c.dpopNonces(start.Add(tc.after)), handed); got != tc.good {
			t.Errorf("%s: accepted %v, want %v", tc.name, got, tc.good)
		}
	}
	if n := a.dpopNonces(start); n[0] == n[1] || len(n[0]) != 32 {
		t.Fatalf("nonces %q", n)
	}
}
