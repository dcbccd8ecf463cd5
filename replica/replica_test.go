package replica_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/replica"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

func memoryStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// live lists the ids of the replicas the store counts at now.
func live(t *testing.T, s replica.Store, now time.Time) []string {
	t.Helper()
	all, err := s.Replicas(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range all {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestNew(t *testing.T) {
	t.Parallel()
	s := memoryStore(t)
	a := replica.New(s, time.Minute, "v1.2.3", discard)
	b := replica.New(s, time.Minute, "v1.2.3", discard)
	host, _ := os.Hostname()
	for _, r := range []*replica.Registry{a, b} {
		suffix, ok := strings.CutPrefix(r.ID(), host+"-")
		if !ok || len(suffix) != 8 {
			t.Errorf("id: got %q, want %q and 8 random characters", r.ID(), host+"-")
		}
		// Before any heartbeat a replica counts itself.
		if got := r.Live(); got != 1 {
			t.Errorf("Live before Beat: got %d, want 1", got)
		}
	}
	if a.ID() == b.ID() {
		t.Errorf("two replicas on one host share the id %q", a.ID())
	}
	if got := live(t, s, time.Now()); len(got) != 0 {
		t.Errorf("the store before Beat: got %v, want nobody (New only describes)", got)
	}
}

func TestBeat(t *testing.T) {
	t.Parallel()
	s := memoryStore(t)
	ctx := context.Background()
	const timeout = time.Minute
	a := replica.New(s, timeout, "v1", discard)
	b := replica.New(s, timeout, "v2", discard)

	before := time.Now()
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	all, err := s.Replicas(ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if len(all) != 1 || all[0].ID != a.ID() || all[0].Hostname != host || all[0].Version != "v1" ||
		all[0].StartedAt.Before(before.Add(-time.Minute)) || all[0].StartedAt.After(after) {
		t.Fatalf("heartbeat: got %+v, want %s on %s, version v1", all, a.ID(), host)
	}
	// The heartbeat lasts the timeout from when it was made.
	if exp := all[0].ExpiresAt; exp.Before(before.Add(timeout)) || exp.After(after.Add(timeout)) {
		t.Errorf("expires at: got %v, want between %v and %v", exp, before.Add(timeout), after.Add(timeout))
	}
	if got := live(t, s, after.Add(timeout-time.Second)); !slices.Equal(got, []string{a.ID()}) {
		t.Errorf("just before the timeout: got %v, want %s", got, a.ID())
	}
	if got := live(t, s, after.Add(timeout+time.Millisecond)); len(got) != 0 {
		t.Errorf("after the timeout: got %v, want nobody", got)
	}

	if err := b.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	// Each replica refreshes its count when it beats.
	if a.Live() != 1 || b.Live() != 2 {
		t.Errorf("Live: got a %d b %d, want 1 and 2 (a has not beaten since b came)", a.Live(), b.Live())
	}
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Live() != 2 {
		t.Errorf("a.Live after beating again: got %d, want 2", a.Live())
	}
}

// TestBeatExpiry: a replica that stops beating drops out of the others' count once its
// heartbeat's timeout has passed.
func TestBeatExpiry(t *testing.T) {
	t.Parallel()
	s := memoryStore(t)
	ctx := context.Background()
	short := replica.New(s, 50*time.Millisecond, "v", discard)
	long := replica.New(s, time.Minute, "v", discard)
	if err := short.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := long.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if got := long.Live(); got != 2 {
		t.Fatalf("Live: got %d, want 2", got)
	}
	time.Sleep(100 * time.Millisecond)
	if err := long.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if got := long.Live(); got != 1 {
		t.Errorf("Live after the other's heartbeat expired: got %d, want 1", got)
	}
}

// TestBeatFailure: a store that fails keeps the last count.
func TestBeatFailure(t *testing.T) {
	t.Parallel()
	s, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	other := replica.New(s, time.Minute, "v", discard)
	r := replica.New(s, time.Minute, "v", discard)
	for _, x := range []*replica.Registry{other, r} {
		if err := x.Beat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Beat(ctx); err == nil {
		t.Fatal("Beat on a closed store: got no error")
	}
	if got := r.Live(); got != 2 {
		t.Errorf("Live after a failed beat: got %d, want the last count, 2", got)
	}
	if err := r.Sole(ctx); err == nil {
		t.Error("Sole on a closed store: got no error")
	}
}

// TestSole: on an embedded store, which one process owns, heartbeats left by processes that
// crashed are forgotten at start; this replica's own stays.
func TestSole(t *testing.T) {
	t.Parallel()
	s := memoryStore(t)
	ctx := context.Background()
	log, logs := newLog()
	crashed := []*replica.Registry{replica.New(s, time.Hour, "old", discard), replica.New(s, time.Hour, "old", discard)}
	for _, c := range crashed {
		if err := c.Beat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r := replica.New(s, time.Hour, "new", log)
	if err := r.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(live(t, s, time.Now())); got != 3 {
		t.Fatalf("before Sole: got %d replicas, want 3", got)
	}
	if err := r.Sole(ctx); err != nil {
		t.Fatal(err)
	}
	if got := live(t, s, time.Now()); !slices.Equal(got, []string{r.ID()}) {
		t.Errorf("after Sole: got %v, want only %s", got, r.ID())
	}
	for _, c := range crashed {
		if !strings.Contains(logs.String(), "replica="+c.ID()) {
			t.Errorf("log does not name the forgotten replica %s:\n%s", c.ID(), logs)
		}
	}
	if err := r.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.Live(); got != 1 {
		t.Errorf("Live after Sole: got %d, want 1", got)
	}
	// With nothing left to forget, Sole changes nothing and says nothing.
	n := logs.count("forgot a replica")
	if err := r.Sole(ctx); err != nil {
		t.Fatal(err)
	}
	if got := logs.count("forgot a replica"); got != n {
		t.Errorf("a second Sole logged %d more lines, want none", got-n)
	}
}

// TestRun: Run heartbeats every third of the timeout, counts the others, and deregisters when
// its context ends, so the others stop counting it at once rather than after the timeout.
func TestRun(t *testing.T) {
	t.Parallel()
	s := memoryStore(t)
	other := replica.New(s, time.Hour, "v", discard)
	if err := other.Beat(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := replica.New(s, 3*time.Second, "v", discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	eventually(t, 5*time.Second, "Run made no heartbeat", func() bool { return slices.Contains(live(t, s, time.Now()), r.ID()) })
	eventually(t, 5*time.Second, "Run did not count the other replica", func() bool { return r.Live() == 2 })

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	// Asked well inside the heartbeat's 3s: only a deregistration removes it this soon.
	if got := live(t, s, time.Now()); !slices.Equal(got, []string{other.ID()}) {
		t.Errorf("after Run returned: got %v, want only %s", got, other.ID())
	}
}

// TestRunStoreOutage: Run on Redis says once that heartbeats fail, keeps the last count
// meanwhile, and says when they work again.
func TestRunStoreOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	store, err := redis.Open(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	log, logs := newLog()
	r := replica.New(store, 300*time.Millisecond, "v", log)
	other := replica.New(store, time.Hour, "v", discard)
	if err := other.Beat(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, 5*time.Second, "Run did not count the other replica", func() bool { return r.Live() == 2 })

	srv.Stop()
	eventually(t, 10*time.Second, "no warning of failing heartbeats", func() bool { return logs.count("replica heartbeat failed") > 0 })
	// Several beats fail while Redis is down: the warning is given once.
	time.Sleep(400 * time.Millisecond)
	if got := logs.count("replica heartbeat failed"); got != 1 {
		t.Errorf("warnings while the store is down: got %d, want 1", got)
	}
	if got := r.Live(); got != 2 {
		t.Errorf("Live while the store is down: got %d, want the last count, 2", got)
	}

	// Redis comes back empty: the other replica's heartbeat is gone with it.
	srv.Restart()
	eventually(t, 10*time.Second, "no word of heartbeats recovering", func() bool { return logs.count("replica heartbeat recovered") == 1 })
	eventually(t, 5*time.Second, "Live did not follow the store", func() bool { return r.Live() == 1 })
	if got := live(t, store, time.Now()); !slices.Equal(got, []string{r.ID()}) {
		t.Errorf("after the restart: got %v, want %s heartbeating again", got, r.ID())
	}
}

// Both stores satisfy what replica needs.
var (
	_ replica.Store = (*embedded.Store)(nil)
	_ replica.Store = (*redis.Store)(nil)
	_ replica.Feed  = (storage.Storage)(nil)
)
