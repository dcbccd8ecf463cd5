package storage_test

import (
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fails, limit int
		want         time.Duration
	}{
		{0, 5, 0},
		{4, 5, 0},
		{5, 5, time.Second},
		{6, 5, 2 * time.Second},
		{10, 5, 32 * time.Second},
		{15, 5, 15 * time.Minute}, // 1024 s is past the cap
		{1000, 5, 15 * time.Minute},
	}
	for _, tc := range tests {
		if got := storage.Backoff(tc.fails, tc.limit, 15*time.Minute); got != tc.want {
			t.Errorf("Backoff(%d, %d) = %s, want %s", tc.fails, tc.limit, got, tc.want)
		}
	}
}
