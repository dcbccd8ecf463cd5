package replica_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/replica"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// heard keeps the changes a bus delivered to one handler, with whether the bus was healthy
// at the time.
type heard struct {
	mu      sync.Mutex
	changes []storage.Change
	healthy []bool
}

func (h *heard) handler(b *replica.Bus) func(storage.Change) {
	return func(c storage.Change) {
		ok := b.Healthy()
		h.mu.Lock()
		h.changes = append(h.changes, c)
		h.healthy = append(h.healthy, ok)
		h.mu.Unlock()
	}
}

func (h *heard) all() []storage.Change {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.changes)
}

func (h *heard) count(c storage.Change) int {
	n := 0
	for _, x := range h.all() {
		if x == c {
			n++
		}
	}
	return n
}

// resets is how many drop-everything changes arrived, and whether every one came while the
// bus still counted itself unhealthy (caches are emptied before they are trusted again).
func (h *heard) resets() (n int, beforeHealthy bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	beforeHealthy = true
	for i, c := range h.changes {
		if c == (storage.Change{}) {
			n++
			beforeHealthy = beforeHealthy && !h.healthy[i]
		}
	}
	return n, beforeHealthy
}

// runBus runs b until the test ends.
func runBus(t *testing.T, b *replica.Bus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestAnnounceLocal: the replica making a change applies it to every handler before Announce
// returns, whether or not the bus runs.
func TestAnnounceLocal(t *testing.T) {
	t.Parallel()
	b := replica.NewBus(memoryStore(t), discard)
	var hs [3]heard
	for i := range hs {
		b.Handle(hs[i].handler(b))
	}
	changes := []storage.Change{{Kind: storage.ChangeClient, ID: "svc"}, {Kind: storage.ChangeUser, ID: "u1"}, {Kind: storage.ChangeSigningKeys}}
	for _, c := range changes {
		if err := b.Announce(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range hs {
		if got := hs[i].all(); !slices.Equal(got, changes) {
			t.Errorf("handler %d: got %v, want %v", i, got, changes)
		}
	}
	if b.Healthy() {
		t.Error("Healthy before Run: got true, want false")
	}
}

// TestBusMemory: on the embedded store the feed never fails: Run turns healthy at once, after
// telling every handler to drop everything, and changes reach every bus on the store.
func TestBusMemory(t *testing.T) {
	t.Parallel()
	s := memoryStore(t)
	log, logs := newLog()
	a, b := replica.NewBus(s, log), replica.NewBus(s, discard)
	var ha, hb heard
	a.Handle(ha.handler(a))
	b.Handle(hb.handler(b))
	runBus(t, a)
	runBus(t, b)
	eventually(t, 5*time.Second, "buses not healthy", func() bool { return a.Healthy() && b.Healthy() })
	for _, h := range []*heard{&ha, &hb} {
		if n, before := h.resets(); n != 1 || !before {
			t.Errorf("drop-everything on connecting: got %d (before healthy: %v), want 1 before healthy", n, before)
		}
	}
	if got := logs.count("change feed connected"); got != 1 {
		t.Errorf("log: got %d lines saying the feed connected, want 1:\n%s", got, logs)
	}

	c := storage.Change{Kind: storage.ChangePersonalToken, ID: "t1"}
	if err := a.Announce(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	// The announcing replica applied it before answering; the other hears it through the feed.
	if ha.count(c) == 0 {
		t.Error("the announcing bus's handler did not get the change")
	}
	eventually(t, 5*time.Second, "the other bus did not hear the change", func() bool { return hb.count(c) == 1 })
}

// TestBusRedis: over Redis, the feed reaches other replicas; when it is lost the bus turns
// unhealthy (and says so), and when it is back every handler drops everything before the bus
// is healthy again.
func TestBusRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	open := func() *redis.Store {
		s, err := redis.Open(context.Background(), srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	log, logs := newLog()
	a, b := replica.NewBus(open(), discard), replica.NewBus(open(), log)
	var ha, hb heard
	a.Handle(ha.handler(a))
	b.Handle(hb.handler(b))
	if b.Healthy() {
		t.Error("Healthy before Run: got true, want false")
	}
	runBus(t, a)
	runBus(t, b)
	eventually(t, 10*time.Second, "buses not healthy", func() bool { return a.Healthy() && b.Healthy() })

	c := storage.Change{Kind: storage.ChangeClient, ID: "svc"}
	if err := a.Announce(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the other bus did not hear the change", func() bool { return hb.count(c) == 1 })

	srv.Stop()
	eventually(t, 10*time.Second, "the bus stayed healthy with Redis down", func() bool { return !b.Healthy() })
	eventually(t, 5*time.Second, "no warning that the feed was lost", func() bool { return logs.count("change feed lost") == 1 })
	// Announcing while the feed is down still applies the change here, and says it was not sent.
	c2 := storage.Change{Kind: storage.ChangeUser, ID: "u1"}
	if err := b.Announce(context.Background(), c2); err == nil {
		t.Error("Announce with Redis down: got no error")
	}
	if hb.count(c2) != 1 {
		t.Error("Announce with Redis down: the change was not applied on this replica")
	}

	srv.Restart()
	eventually(t, 10*time.Second, "the bus did not recover", func() bool { return b.Healthy() })
	if n, before := hb.resets(); n != 2 || !before {
		t.Errorf("drop-everything: got %d (all before healthy: %v), want 2 (connect, reconnect), each before healthy", n, before)
	}
	if got := logs.count("change feed connected"); got != 2 {
		t.Errorf("log: got %d lines saying the feed connected, want 2:\n%s", got, logs)
	}
	eventually(t, 10*time.Second, "the announcing bus did not recover", func() bool { return a.Healthy() })
	c3 := storage.Change{Kind: storage.ChangeSigningKeys}
	if err := a.Announce(context.Background(), c3); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the other bus did not hear a change after the outage", func() bool { return hb.count(c3) == 1 })
}

// TestBusStopQuietly: a bus stopped on purpose turns unhealthy without warning of a lost feed.
func TestBusStopQuietly(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s, err := redis.Open(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	log, logs := newLog()
	b := replica.NewBus(s, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	eventually(t, 10*time.Second, "bus not healthy", b.Healthy)
	cancel()
	<-done
	if b.Healthy() {
		t.Error("Healthy after Run returned: got true, want false")
	}
	if got := logs.count("change feed lost"); got != 0 {
		t.Errorf("log: got %d warnings of a lost feed for a stop on purpose, want none:\n%s", got, logs)
	}
}
