package redis

import (
	"strings"
	"testing"
)

// TestStoredHash: every hash reads back as it was given, and only a lowercase hex SHA-256 is
// halved; no two hashes are kept alike.
func TestStoredHash(t *testing.T) {
	hexSum := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		hash    string
		wantLen int
	}{
		{hexSum, 32},
		{strings.ToUpper(hexSum), 65},
		{"h0", 2},
		{strings.Repeat("x", 32), 33},
		{strings.Repeat("x", 31) + "\x00", 33},
		{strings.Repeat("x", 30) + "\x00", 31},
		{strings.Repeat("x", 33), 34},
		{"", 0},
	} {
		stored := storedHash(tc.hash)
		if len(stored) != tc.wantLen {
			t.Errorf("storedHash(%q) is %d bytes, want %d", tc.hash, len(stored), tc.wantLen)
		}
		if got := readHash(stored); got != tc.hash {
			t.Errorf("readHash(storedHash(%q)) = %q", tc.hash, got)
		}
	}
	seen := map[string]string{}
	for _, h := range []string{hexSum, storedHash(hexSum), strings.Repeat("x", 31), strings.Repeat("x", 31) + "\x00",
		strings.Repeat("x", 32), strings.Repeat("x", 32) + "\x00", strings.Repeat("x", 30) + "\x00"} {
		s := storedHash(h)
		if other, ok := seen[s]; ok {
			t.Errorf("%q and %q are kept alike", h, other)
		}
		seen[s] = h
	}
}
