package keys

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/internal/testclock"
	"github.com/tokensmith/tokensmith/internal/testlog"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	redisstore "github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
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

// kidOf signs an RS256 token issued at iat and returns the kid it was signed with.
func kidOf(t *testing.T, s *Set, iat time.Time) string {
	t.Helper()
	kid, _ := signedWith(t, s, RS256, iat)
	return kid
}

// signedWith signs a token of alg issued at iat and returns the kid and alg of its header.
func signedWith(t *testing.T, s *Set, alg string, iat time.Time) (kid, headerAlg string) {
	t.Helper()
	tok, err := s.Sign(alg, jwt.MapClaims{"sub": "x", "iat": float64(iat.Unix()), "exp": float64(iat.Add(time.Hour).Unix())})
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Header["kid"].(string), parsed.Header["alg"].(string)
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
	old := m.Set.ActiveAt(RS256, start).ID

	next, err := m.Rotate(context.Background(), "", -1)
	if err != nil {
		t.Fatal(err)
	}
	if kids := jwksKids(t, m.Set); len(kids) != 2 || !slices.Contains(kids, next.ID) || !slices.Contains(kids, old) {
		t.Fatalf("JWKS right after rotation: %v, want both keys", kids)
	}
	if views := m.Set.Views(start); views[0].Kid != next.ID || views[0].State != StateNext || views[1].State != StateActive {
		t.Fatalf("views: %+v", views)
	}
	if _, err := m.Rotate(context.Background(), RS256, 0); err != ErrRotationPending {
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

// memStore is a fresh embedded memory store.
func memStore(t *testing.T) Store {
	t.Helper()
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// activeKids is the kid that signs each algorithm at t.
func activeKids(t *testing.T, s *Set, t0 time.Time, algs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, alg := range algs {
		kid, got := signedWith(t, s, alg, t0)
		if got != alg {
			t.Fatalf("a %s token was signed with %s", alg, got)
		}
		out[alg] = kid
	}
	return out
}

// TestRotationPerAlgorithm: rotating one algorithm publishes and then signs with its new key,
// and leaves every other algorithm's key signing and published as before, on this replica
// and on another that follows the store; scheduled rotation is per algorithm too.
func TestRotationPerAlgorithm(t *testing.T) {
	for name, open := range map[string]func(*testing.T) Store{"embedded": memStore, "redis": redisStore} {
		t.Run(name, func(t *testing.T) { testRotationPerAlgorithm(t, open(t)) })
	}
}

// redisStore is a Redis store on a redis-server of its own.
func redisStore(t *testing.T) Store {
	t.Helper()
	srv := redistest.Start(t)
	store, err := redisstore.Open(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func testRotationPerAlgorithm(t *testing.T, store Store) {
	clk := testclock.New(time.Now().UTC().Add(time.Second).Truncate(time.Second))
	start := clk.Now()
	all := []string{RS256, PS256, ES256, EdDSA}
	opts := Options{Algorithms: all, PublishAhead: 10 * time.Minute,
		Lifetime: func(context.Context) (time.Duration, error) { return time.Hour, nil }}
	m := openManager(t, store, clk, opts)
	other := openManager(t, store, clk, opts)
	before := activeKids(t, m.Set, start, all...)
	if got := activeKids(t, other.Set, start, all...); !maps.Equal(got, before) {
		t.Fatalf("two replicas sign with different keys: %v and %v", before, got)
	}

	next, err := m.Rotate(context.Background(), ES256, -1)
	if err != nil {
		t.Fatal(err)
	}
	if next.Algorithm != ES256 || !slices.Contains(jwksKids(t, m.Set), next.ID) {
		t.Fatalf("rotated %s key %s, JWKS %v", next.Algorithm, next.ID, jwksKids(t, m.Set))
	}
	if _, err := m.Rotate(context.Background(), ES256, 0); err != ErrRotationPending {
		t.Fatalf("a second ES256 rotation while one is pending: %v", err)
	}
	if err := other.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := start.Add(10 * time.Minute)
	for _, s := range []*Set{m.Set, other.Set} {
		if got := activeKids(t, s, start.Add(9*time.Minute), all...); !maps.Equal(got, before) {
			t.Fatalf("before the new key signs: %v, want %v", got, before)
		}
		got := activeKids(t, s, after, all...)
		want := maps.Clone(before)
		want[ES256] = next.ID
		if !maps.Equal(got, want) {
			t.Fatalf("after the ES256 rotation: %v, want %v", got, want)
		}
		for _, kid := range before {
			if !slices.Contains(jwksKids(t, s), kid) {
				t.Fatalf("key %s left the JWKS", kid)
			}
		}
	}
	// RS256 rotates although ES256's new key is still waiting.
	if _, err := m.Rotate(context.Background(), RS256, 0); err != nil {
		t.Fatalf("rotating RS256 beside a pending ES256 key: %v", err)
	}
	if _, err := m.Rotate(context.Background(), "HS256", 0); err != ErrNotConfigured {
		t.Fatalf("rotating an algorithm not configured: %v", err)
	}

	// Scheduled: each algorithm rotates when its own key is due.
	clk = testclock.New(time.Now().UTC().Add(time.Second))
	// A Refresh long enough for RSA key generation under the race detector on a busy machine.
	sched := openManager(t, memStore(t), clk, Options{Algorithms: []string{RS256, EdDSA}, PublishAhead: time.Minute,
		RotateEvery: 24 * time.Hour, Refresh: time.Minute})
	first := activeKids(t, sched.Set, clk.Now(), RS256, EdDSA)
	clk.Advance(24 * time.Hour)
	if err := sched.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	got := activeKids(t, sched.Set, clk.Now(), RS256, EdDSA)
	if got[RS256] == first[RS256] || got[EdDSA] == first[EdDSA] {
		t.Fatalf("after a day: %v, want both rotated from %v", got, first)
	}
}

// TestAddedAlgorithm: an algorithm added to a deployment that signs already gets a key that is
// published ahead; until it signs, tokens asked of it are signed with the default algorithm;
// an algorithm that replaces all the others signs at once.
func TestAddedAlgorithm(t *testing.T) {
	store := memStore(t)
	clk := testclock.New(time.Now().UTC().Add(time.Second))
	start := clk.Now()
	m := openManager(t, store, clk, Options{})
	rsKid := m.Set.ActiveID()

	m2, created, err := Open(context.Background(), store, Options{Algorithms: []string{RS256, EdDSA}, PublishAhead: 10 * time.Minute}, quiet)
	if err != nil || created {
		t.Fatalf("Open with EdDSA added: created=%v err=%v", created, err)
	}
	m2.now = clk.Now
	t.Cleanup(m2.Set.Close)
	views := m2.Set.Views(start)
	if len(views) != 2 || views[0].Alg != EdDSA || views[0].State != StateNext || views[1].State != StateActive {
		t.Fatalf("views after adding EdDSA: %+v", views)
	}
	if from, ok := m2.Set.SignsFrom(EdDSA, start); !ok || from.Before(start.Add(9*time.Minute)) {
		t.Fatalf("EdDSA signs from %v (%v), want 10 minutes on", from, ok)
	}
	if kid, alg := signedWith(t, m2.Set, EdDSA, start.Add(time.Minute)); kid != rsKid || alg != RS256 {
		t.Fatalf("an EdDSA token before its key signs: %s %s, want the RS256 key", kid, alg)
	}
	if _, alg := signedWith(t, m2.Set, EdDSA, start.Add(11*time.Minute)); alg != EdDSA {
		t.Fatalf("an EdDSA token after publish-ahead was signed with %s", alg)
	}
	if _, ok := m2.Set.SignsFrom(ES256, start); ok {
		t.Fatal("ES256 is not configured, yet SignsFrom answers")
	}

	// A deployment that moves from RS256 to ES256 in one step has nothing else to sign with.
	m3, _, err := Open(context.Background(), store, Options{Algorithms: []string{ES256}, PublishAhead: 10 * time.Minute}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m3.Set.Close)
	if _, alg := signedWith(t, m3.Set, ES256, time.Now()); alg != ES256 {
		t.Fatalf("ES256 alone signs with %s", alg)
	}
}

// logRecorder keeps what is logged, for tests that check a warning.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, string(p))
	return len(p), nil
}

func (r *logRecorder) count(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// TestDroppedAlgorithm: on a replica whose keys.algorithms no longer has ES256, a client still
// set to ES256 gets tokens of the default algorithm (logged once a minute), the ES256 key is
// shown idle and stays published, and retiring it takes it out once its tokens have expired.
func TestDroppedAlgorithm(t *testing.T) {
	store := memStore(t)
	clk := testclock.New(time.Now().UTC().Add(time.Second))
	start := clk.Now()
	both := openManager(t, store, clk, Options{Algorithms: []string{RS256, ES256}})
	esKid := activeKids(t, both.Set, start, ES256)[ES256]

	rec := &logRecorder{}
	m, _, err := Open(context.Background(), store, Options{Algorithms: []string{RS256},
		Lifetime: func(context.Context) (time.Duration, error) { return time.Hour, nil }}, slog.New(slog.NewTextHandler(rec, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m.now = clk.Now
	t.Cleanup(m.Set.Close)
	for range 3 {
		if _, alg := signedWith(t, m.Set, ES256, start); alg != RS256 {
			t.Fatalf("ES256 dropped: a token asked in ES256 is signed with %s, want RS256", alg)
		}
	}
	if n := rec.count("access_token_signing_alg is not in keys.algorithms"); n != 1 {
		t.Fatalf("the fallback was logged %d times, want once: %q", n, rec.msgs)
	}
	if _, alg := signedWith(t, m.Set, ES256, start.Add(fallbackLogEvery)); alg != RS256 || rec.count("asked=ES256") != 2 {
		t.Fatalf("a minute later the fallback is logged again: %q", rec.msgs)
	}
	var idle View
	for _, v := range m.Set.Views(start) {
		if v.Kid == esKid {
			idle = v
		}
	}
	if idle.State != StateIdle || !slices.Contains(jwksKids(t, m.Set), esKid) {
		t.Fatalf("the ES256 key: %+v, JWKS %v; want idle and published", idle, jwksKids(t, m.Set))
	}

	if _, err := m.Retire(context.Background(), RS256); err != ErrInUse {
		t.Fatalf("retiring an algorithm in use: %v", err)
	}
	retired, err := m.Retire(context.Background(), ES256)
	if err != nil || len(retired) != 1 || retired[0].ID != esKid {
		t.Fatalf("Retire(ES256) = %v, %v", retired, err)
	}
	if _, err := m.Retire(context.Background(), ES256); err != ErrNoLiveKey {
		t.Fatalf("retiring ES256 twice: %v", err)
	}
	// The replica that still has ES256 configured follows the store: ES256 tokens fall back.
	if err := both.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, alg := signedWith(t, both.Set, ES256, start.Add(2*signerGrace)); alg != RS256 {
		t.Fatalf("after the retirement ES256 still signs on the other replica")
	}
	for _, step := range []struct {
		after     time.Duration
		published bool
	}{{30 * time.Minute, true}, {time.Hour + lifetimeMargin, false}} {
		clk.Set(start.Add(step.after))
		if err := m.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(jwksKids(t, m.Set), esKid); got != step.published {
			t.Fatalf("%s after retiring: published = %v, want %v", step.after, got, step.published)
		}
	}
}

// TestStartOnEmptySharedStore: replicas sharing one Redis tell a deployment's first start from
// a store that lost its keys. A replica starting while another first start is still waiting
// finds the keys that one made and logs no error; a replica starting on a store whose old keys
// a running replica writes back after a loss logs the loss as an error, as the running replica
// does. Each replica has a store connection and a log of its own.
func TestStartOnEmptySharedStore(t *testing.T) {
	for _, tc := range []struct {
		name string
		// keyAge, when set, seeds the store with a key made that long ago, held by a running
		// replica, and flushes the store before the second start.
		keyAge    time.Duration
		wantError bool
	}{
		{name: "second replica of a first start", wantError: false},
		{name: "start on a store that lost its keys", keyAge: 2 * time.Hour, wantError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			open := func() Store {
				store, err := redisstore.Open(context.Background(), srv.URL())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { store.Close() })
				return store
			}
			var firstLog, secondLog testlog.Buffer
			logger := func(b *testlog.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }
			ctx := context.Background()
			first := make(chan *Manager, 1)
			if tc.keyAge > 0 {
				old, err := Generate(RS256, time.Now().Add(-tc.keyAge))
				if err != nil {
					t.Fatal(err)
				}
				seed := open()
				if _, _, err := seed.EnsureSigningKey(ctx, old); err != nil {
					t.Fatal(err)
				}
				m, _, err := Open(ctx, seed, Options{RestoreWait: 500 * time.Millisecond}, logger(&firstLog))
				if err != nil {
					t.Fatal(err)
				}
				if err := srv.Client().FlushAll(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				first <- m
			} else {
				go func() {
					m, _, err := Open(ctx, open(), Options{RestoreWait: 500 * time.Millisecond}, logger(&firstLog))
					if err != nil {
						t.Error(err)
					}
					first <- m
				}()
				time.Sleep(200 * time.Millisecond)
			}
			second := make(chan *Manager, 1)
			go func() {
				m, _, err := Open(ctx, open(), Options{RestoreWait: 5 * time.Second}, logger(&secondLog))
				if err != nil {
					t.Error(err)
				}
				second <- m
			}()
			a := <-first
			if a == nil {
				t.FailNow()
			}
			t.Cleanup(a.Set.Close)
			if tc.keyAge > 0 {
				// The running replica notices the loss at its next refresh.
				time.Sleep(300 * time.Millisecond)
				if err := a.tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			b := <-second
			if b == nil {
				t.FailNow()
			}
			t.Cleanup(b.Set.Close)
			if a.Set.ActiveID() != b.Set.ActiveID() {
				t.Fatalf("the replicas sign with %s and %s, want one key", a.Set.ActiveID(), b.Set.ActiveID())
			}
			if got := strings.Contains(secondLog.String(), "level=ERROR"); got != tc.wantError {
				t.Errorf("second replica logged an error: %v, want %v:\n%s", got, tc.wantError, secondLog.String())
			}
			if got := strings.Contains(firstLog.String(), "level=ERROR"); got != tc.wantError {
				t.Errorf("first replica logged an error: %v, want %v:\n%s", got, tc.wantError, firstLog.String())
			}
		})
	}
}
