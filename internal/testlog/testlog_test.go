package testlog_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/testlog"
)

// TestBufferTakesConcurrentWrites: lines written from many goroutines while the test reads
// all arrive whole; Reset forgets them.
func TestBufferTakesConcurrentWrites(t *testing.T) {
	t.Parallel()
	var b testlog.Buffer
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "worker=%d line=%d\n", w, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got, want := strings.Count(b.String(), "\n"), 800; got != want {
		t.Errorf("lines: got %d, want %d", got, want)
	}
	if !strings.Contains(b.String(), "worker=7 line=99\n") {
		t.Errorf("the last line of worker 7 is missing")
	}
	b.Reset()
	if got := b.String(); got != "" {
		t.Errorf("after Reset: got %q, want nothing", got)
	}
}

// TestHasWaitsForALine: Has finds a line written after it started looking, and gives up on
// one that never comes after HasWithin.
func TestHasWaitsForALine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write string
		want  bool
	}{
		{"written a moment later", "msg=ready\n", true},
		{"never written", "msg=other\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b testlog.Buffer
			go func() {
				time.Sleep(50 * time.Millisecond)
				_, _ = b.Write([]byte(tc.write))
			}()
			start := time.Now()
			if got := b.Has("msg=ready"); got != tc.want {
				t.Errorf("Has: got %v, want %v", got, tc.want)
			}
			if waited := time.Since(start); !tc.want && waited < testlog.HasWithin {
				t.Errorf("gave up after %s, want %s", waited, testlog.HasWithin)
			}
		})
	}
}
