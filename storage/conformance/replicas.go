package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func testReplicas(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	mustNoErr(t, s.Heartbeat(ctx, storage.Replica{ID: "a", Hostname: "h1", StartedAt: now, ExpiresAt: now.Add(10 * time.Second)}, now))
	mustNoErr(t, s.Heartbeat(ctx, storage.Replica{ID: "b", StartedAt: now, ExpiresAt: now.Add(2 * time.Second)}, now))
	live, err := s.Replicas(ctx, now)
	mustNoErr(t, err)
	if len(live) != 2 {
		t.Fatalf("live replicas %v, want 2", live)
	}
	// b stops heartbeating: it drops out once its heartbeat expires.
	live, err = s.Replicas(ctx, now.Add(3*time.Second))
	mustNoErr(t, err)
	if len(live) != 1 || live[0].ID != "a" || live[0].Hostname != "h1" {
		t.Fatalf("after b expired: %v", live)
	}
	// A new heartbeat extends a.
	mustNoErr(t, s.Heartbeat(ctx, storage.Replica{ID: "a", ExpiresAt: now.Add(20 * time.Second)}, now))
	if live, _ := s.Replicas(ctx, now.Add(15*time.Second)); len(live) != 1 {
		t.Fatalf("a after a second heartbeat: %v", live)
	}
}
