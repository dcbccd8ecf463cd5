package storage_test

import (
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/storage"
)

// TestKeyDigest pins the digest's output: keys already stored by both backends are named by it,
// so a change here would orphan them.
func TestKeyDigest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		parts []string
		want  string
	}{
		{"one part", []string{"client"}, "8096aa6e111ae73f84fd8307"},
		{"a pool's parts", []string{"1", "alice", "orders:read", "api"}, "b2b67075975cbf25815b10dc"},
		{"no parts", nil, "e3b0c44298fc1c149afbf4c8"},
		{"a long part", []string{strings.Repeat("x", 60_000)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := storage.KeyDigest(tc.parts...)
			if len(got) != 24 || strings.Trim(got, "0123456789abcdef") != "" {
				t.Fatalf("KeyDigest(%d parts) = %q, want 24 lower-case hex characters", len(tc.parts), got)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("KeyDigest(%q) = %s, want %s", tc.parts, got, tc.want)
			}
		})
	}
	// Where one part ends and the next begins is part of the name.
	if got, other := storage.KeyDigest("ab", "c"), storage.KeyDigest("a", "bc"); got == other {
		t.Errorf(`KeyDigest("ab", "c") = KeyDigest("a", "bc") = %s, want them to differ`, got)
	}
}
