package outage_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/outage"
)

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }
func (b *logBuffer) reset()         { b.mu.Lock(); defer b.mu.Unlock(); b.buf.Reset() }

// store is a store whose reachability the test switches.
type store struct{ up atomic.Bool }

func (s *store) Ping(context.Context) error {
	if s.up.Load() {
		return nil
	}
	return errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

func waitFor(t *testing.T, logs *logBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within 5s:\n%s", text, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOneLineAtEachEndOfAnOutage(t *testing.T) {
	logs := &logBuffer{}
	st := &store{}
	tr := outage.New(st, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()

	// Two outages in a row: each gives exactly one line when it starts and one when it ends.
	for round := 1; round <= 2; round++ {
		logs.reset()
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() { tr.Failed(errors.New("storage: unavailable")) })
		}
		wg.Wait()
		if !tr.Down() {
			t.Fatal("not down after failures")
		}
		st.up.Store(true)
		waitFor(t, logs, "failed_requests=50")
		if tr.Down() {
			t.Fatal("still down after the store answered")
		}
		for _, line := range []string{"store unavailable", "store available again"} {
			if got := strings.Count(logs.String(), line); got != 1 {
				t.Fatalf("round %d: %d lines %q, want 1:\n%s", round, got, line, logs.String())
			}
		}
		st.up.Store(false)
	}

	// An outage that outlasts the process is logged at shutdown with its count.
	logs.reset()
	tr.Failed(errors.New("storage: unavailable"))
	tr.Failed(errors.New("storage: unavailable"))
	cancel()
	<-done
	if !strings.Contains(logs.String(), "store still unavailable at shutdown") || !strings.Contains(logs.String(), "failed_requests=2") {
		t.Fatalf("shutdown during an outage:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("an outage logged at ERROR:\n%s", logs.String())
	}
}

// TestFailuresJustAfterRecoveryBelongToTheOutage: requests that fail while the store has just
// started answering again (they were waiting on it, or the client library still fails fast)
// do not end the outage and start another one.
func TestFailuresJustAfterRecoveryBelongToTheOutage(t *testing.T) {
	logs := &logBuffer{}
	st := &store{}
	tr := outage.New(st, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.Run(ctx)

	tr.Failed(errors.New("storage: unavailable"))
	st.up.Store(true)
	// Stragglers keep failing for a while after the store answers.
	for range 6 {
		tr.Failed(errors.New("storage: unavailable: connection refused"))
		time.Sleep(150 * time.Millisecond)
	}
	waitFor(t, logs, "store available again")
	for _, line := range []string{"store unavailable", "store available again"} {
		if got := strings.Count(logs.String(), line); got != 1 {
			t.Fatalf("%d lines %q, want 1:\n%s", got, line, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "failed_requests=7") {
		t.Fatalf("the stragglers are not counted with the outage:\n%s", logs.String())
	}
}
