package keys

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/internal/testclock"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openManager(t *testing.T, store Store, clk *testclock.Clock, opts Options) *Manager {
	t.Helper()
	m, _, err := Open(context.Background(), store, opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	m.now = clk.Now
	t.Cleanup(m.Set.Close)
	return m
}

func jwksKids(t *testing.T, s *Set) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// kidOf signs a token issued at iat and returns the kid it was signed with.
func kidOf(t *testing.T, s *Set, iat time.Time) string {
	t.Helper()
	tok, err := s.Sign(jwt.MapClaims{"sub": "x", "iat": float64(iat.Unix()), "exp": float64(iat.Add(time.Hour).Unix())})
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Header["kid"].(string)
}

// TestRotationLifecycle: a new key is published at once and signs from its activation; the old
// one signs until then, stays published until its last token has expired, then leaves the
// JWKS and the store.
func TestRotationLifecycle(t *testing.T) {
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clk := testclock.New(time.Now().UTC().Add(time.Second).Truncate(time.Second))
	start := clk.Now()
	m := openManager(t, store, clk, Options{PublishAhead: 10 * time.Minute,
		Lifetime: func(context.Context) (time.Duration, error) { return time.Hour, nil }})
	old := m.Set.ActiveAt(start).ID

	next, err := m.Rotate(context.Background(), -1)
	if err != nil {
		t.Fatal(err)
	}
	if kids := jwksKids(t, m.Set); len(kids) != 2 || !slices.Contains(kids, next.ID) || !slices.Contains(kids, old) {
		t.Fatalf("JWKS right after rotation: %v, want both keys", kids)
	}
	if views := m.Set.Views(start); views[0].Kid != next.ID || views[0].State != StateNext || views[1].State != StateActive {
		t.Fatalf("views: %+v", views)
	}
	if _, err := m.Rotate(context.Background(), 0); err != ErrRotationPending {
		t.Fatalf("a second rotation while one is pending: %v", err)
	}
	if got := kidOf(t, m.Set, start.Add(9*time.Minute)); got != old {
		t.Fatalf("9 minutes in: signed with %s, want the old key", got)
	}
	if got := kidOf(t, m.Set, start.Add(10*time.Minute)); got != next.ID {
		t.Fatalf("10 minutes in: signed with %s, want the new key", got)
	}

	// The old key's last token, issued just before 10m, lives 1h: published until 10m+1h (plus
	// a margin for clocks).
	removeAt := start.Add(10*time.Minute + time.Hour + lifetimeMargin)
	for _, step := range []struct {
		at        time.Time
		published bool
	}{
		{start.Add(30 * time.Minute), true},
		{removeAt.Add(-time.Second), true},
		{removeAt, false},
	} {
		clk.Set(step.at)
		if err := m.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(jwksKids(t, m.Set), old); got != step.published {
			t.Fatalf("at %s: old key published = %v, want %v", step.at.Sub(start), got, step.published)
		}
	}
	stored, _ := store.ListSigningKeys(context.Background())
	if len(stored) != 1 || stored[0].ID != next.ID {
		t.Fatalf("store after removal: %+v", stored)
	}
}

// TestScheduledRotation: with RotateEvery set, the key rotates once it is that old, and only
// once however many replicas notice it at the same moment.
func TestScheduledRotation(t *testing.T) {
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clk := testclock.New(time.Now().UTC().Add(time.Second))
	opts := Options{PublishAhead: time.Minute, RotateEvery: 24 * time.Hour}
	replicas := []*Manager{openManager(t, store, clk, opts), openManager(t, store, clk, opts)}
	clk.Advance(23 * time.Hour)
	for _, m := range replicas {
		if err := m.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if stored, _ := store.ListSigningKeys(context.Background()); len(stored) != 1 {
		t.Fatalf("rotated before it was due: %d keys", len(stored))
	}
	clk.Advance(time.Hour)
	var wg sync.WaitGroup
	for _, m := range replicas {
		wg.Go(func() {
			if err := m.tick(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	stored, _ := store.ListSigningKeys(context.Background())
	if len(stored) != 2 {
		t.Fatalf("after 24h with two replicas: %d keys, want exactly 2", len(stored))
	}
	for _, m := range replicas {
		if err := m.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	at := clk.Now().Add(2 * time.Minute)
	if a, b := kidOf(t, replicas[0].Set, at), kidOf(t, replicas[1].Set, at); a != b {
		t.Fatalf("the replicas sign with different keys after the rotation: %s and %s", a, b)
	}
}

// lossyStore loses its keys on demand, as a Redis does after FLUSHALL.
type lossyStore struct {
	Store
	mu   sync.Mutex
	lost bool
	held []storage.SigningKey
}

func (s *lossyStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost {
		return nil, nil
	}
	return s.Store.ListSigningKeys(ctx)
}

func (s *lossyStore) RestoreSigningKeys(ctx context.Context, keys []storage.SigningKey) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lost {
		return false, nil
	}
	s.lost, s.held = false, keys
	return true, nil
}

// TestLostKeysAreWrittenBack: a replica that finds the store without keys writes back the set
// it signs with, so a replica starting on the empty store cannot mint a different one.
func TestLostKeysAreWrittenBack(t *testing.T) {
	mem, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	store := &lossyStore{Store: mem}
	clk := testclock.New(time.Now())
	m := openManager(t, store, clk, Options{})
	kid := m.Set.ActiveID()
	store.mu.Lock()
	store.lost = true
	store.mu.Unlock()
	if err := m.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(store.held) != 1 || store.held[0].ID != kid || len(store.held[0].PrivatePEM) == 0 {
		t.Fatalf("written back: %+v, want the key %s with its private half", store.held, kid)
	}
	if m.Set.ActiveID() != kid {
		t.Fatal("the replica changed key")
	}
}
