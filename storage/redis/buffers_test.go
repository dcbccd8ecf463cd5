package redis_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// TestRecordsLargerThanTheBuffers: the connections' buffers are small (a few KiB), so a record
// many times their size, and a walk whose replies hold many such records, must still come
// back whole: written and read through the buffer in several steps, never cut or refused.
func TestRecordsLargerThanTheBuffers(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	ctx := context.Background()
	want := map[string][]byte{}
	for i := range 40 {
		// Distinct sizes around and far beyond the buffer, so no two records look alike.
		jwks := []byte(fmt.Sprintf(`{"keys":[],"pad":%q}`, bytes.Repeat([]byte{'a' + byte(i%26)}, 1000+i*3000)))
		c := storage.Client{ID: fmt.Sprintf("big-%02d", i), Name: "big", JWKS: jwks}
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatalf("create %s (%d bytes): %v", c.ID, len(jwks), err)
		}
		want[c.ID] = jwks
	}
	got, err := s.GetClient(ctx, "big-39")
	if err != nil || !bytes.Equal(got.JWKS, want["big-39"]) {
		t.Fatalf("the largest client (%d bytes) read back as %d bytes, %v", len(want["big-39"]), len(got.JWKS), err)
	}
	seen := 0
	err = s.EachClient(ctx, func(c storage.Client) error {
		if w, ok := want[c.ID]; ok {
			seen++
			if !bytes.Equal(c.JWKS, w) {
				return fmt.Errorf("%s: %d bytes back, %d written", c.ID, len(c.JWKS), len(w))
			}
		}
		return nil
	})
	if err != nil || seen != len(want) {
		t.Fatalf("walked %d of %d clients: %v", seen, len(want), err)
	}
}
