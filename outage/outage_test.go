package outage_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/testlog"
	"github.com/tokensmith/tokensmith/outage"
)

// store is a store whose reachability the test switches.
type store struct{ up atomic.Bool }

func (s *store) Ping(context.Context) error {
	if s.up.Load() {
		return nil
	}
	return errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

func waitFor(t *testing.T, logs *testlog.Buffer, text string) {
	t.Helper()
	if !logs.Has(text) {
		t.Fatalf("no %q in the log within 5s:\n%s", text, logs.String())
	}
}

func TestOneLineAtEachEndOfAnOutage(t *testing.T) {
	logs := &testlog.Buffer{}
	st := &store{}
	tr := outage.New(st, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()

	// Two outages in a row: each gives exactly one line when it starts and one when it ends.
	for round := 1; round <= 2; round++ {
		logs.Reset()
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
	logs.Reset()
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
	logs := &testlog.Buffer{}
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
