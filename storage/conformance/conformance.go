// Package conformance is the test suite every storage backend must pass. A backend's test
// calls RunTests with a constructor for a fresh, empty store; the suite checks behaviour
// (including the security promises of refresh rotation under races), never implementation.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// RunTests runs the whole suite. newStore must return an empty store; the suite closes it.
func RunTests(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.Storage)
	}{
		{"Clients", testClients},
		{"UpdateClientAtomic", testUpdateClientAtomic},
		{"Users", testUsers},
		{"SigningKeys", testSigningKeys},
		{"SigningKeysRace", testSigningKeysRace},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshForeignClient", testRefreshForeignClient},
		{"RefreshExpired", testRefreshExpired},
		{"RefreshReplayRevokesFamily", testRefreshReplay},
		{"RefreshConcurrentRotation", testRefreshConcurrent},
		{"RevokeFamily", testRevokeFamily},
		{"Replicas", testReplicas},
		{"ReusePool", testReusePool},
		{"ReusePoolCapacity", testReuseCapacity},
		{"DailyLimit", testDailyLimit},
		{"DailyLimitConcurrent", testDailyLimitConcurrent},
		{"HourlyAndDailyLimits", testHourlyAndDaily},
		{"ShadowLimits", testShadowLimits},
		{"LimitsConcurrent", testLimitsConcurrent},
		{"CallerClock", testCallerClock},
		{"UsersCaseInsensitive", testUsersCaseInsensitive},
		{"UpdateUser", testUpdateUser},
		{"UpdateCallbackRetries", testUpdateCallbackMayRepeat},
		{"DeadlineHonoured", testDeadline},
		{"RotationNeedsItsUser", testRotationNeedsUser},
		{"RotationAfterPasswordChange", testRotationAfterPasswordChange},
		{"AdmissionWithFamily", testAdmissionWithFamily},
		{"FamilyOutlivesItsAccessTokens", testFamilyLifetime},
		{"RevokeAccessToken", testRevokeAccess},
		{"RevokedFamilyLeavesPool", testRevokedFamilyLeavesPool},
		{"TokenStateUser", testTokenStateUser},
		{"ClientIncarnations", testIncarnations},
		{"LoginBackoff", testLoginBackoff},
		{"LoginBackoffSparesCleanAddresses", testLoginBackoffCleanAddress},
		{"ChangeFeed", testChangeFeed},
		{"PersonalTokens", testPersonalTokens},
		{"PersonalTokensGoWithTheirUser", testPersonalTokensOfDeletedUser},
		{"KeyRotation", testKeyRotation},
		{"KeyRestore", testKeyRestore},
		{"Sessions", testSessions},
		{"SessionsExpireInTheStore", testSessionsExpireInTheStore},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.run(t, s)
		})
	}
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("got error %v, want %v", got, want)
	}
}

func testClients(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	grace := 2 * time.Second
	c := storage.Client{
		ID: "c1", Name: "one", SecretHash: []byte("h"), GrantTypes: []string{"client_credentials"},
		Scopes: []string{"a", "b"}, Audience: []string{"api"}, AccessTokenTTL: time.Hour,
		RefreshGrace: &grace, Reuse: true, DailyLimit: 7, CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	mustNoErr(t, s.CreateClient(ctx, c))
	wantErr(t, s.CreateClient(ctx, c), storage.ErrAlreadyExists)

	got, err := s.GetClient(ctx, "c1")
	mustNoErr(t, err)
	if got.Name != "one" || got.AccessTokenTTL != time.Hour || got.RefreshGrace == nil || *got.RefreshGrace != grace ||
		!got.Reuse || got.DailyLimit != 7 || len(got.Scopes) != 2 || string(got.SecretHash) != "h" {
		t.Fatalf("GetClient = %+v, want the stored fields back", got)
	}
	_, err = s.GetClient(ctx, "nope")
	wantErr(t, err, storage.ErrNotFound)

	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "c2"}))
	all, err := s.ListClients(ctx)
	mustNoErr(t, err)
	if len(all) != 2 {
		t.Fatalf("ListClients: got %d clients, want 2", len(all))
	}

	up, err := s.UpdateClient(ctx, "c1", func(c *storage.Client) error { c.Name = "renamed"; return nil })
	mustNoErr(t, err)
	if up.Name != "renamed" {
		t.Fatalf("UpdateClient returned name %q, want renamed", up.Name)
	}
	boom := errors.New("boom")
	_, err = s.UpdateClient(ctx, "c1", func(c *storage.Client) error { c.Name = "lost"; return boom })
	wantErr(t, err, boom)
	if got, _ := s.GetClient(ctx, "c1"); got.Name != "renamed" {
		t.Fatalf("a failed update wrote name %q", got.Name)
	}
	_, err = s.UpdateClient(ctx, "nope", func(*storage.Client) error { return nil })
	wantErr(t, err, storage.ErrNotFound)

	if got, _ := s.GetClient(ctx, "c1"); !got.NotBefore.IsZero() {
		t.Fatalf("a client never deleted before has NotBefore %s", got.NotBefore)
	}
	deleted := time.Now().UTC().Truncate(time.Millisecond)
	mustNoErr(t, s.DeleteClient(ctx, "c1", deleted))
	wantErr(t, s.DeleteClient(ctx, "c1", deleted), storage.ErrNotFound)
	_, err = s.GetClient(ctx, "c1")
	wantErr(t, err, storage.ErrNotFound)

	// Created again under the same id: tokens from before the deletion are not its own.
	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "c1", NotBefore: time.Unix(1, 0)}))
	again, err := s.GetClient(ctx, "c1")
	mustNoErr(t, err)
	if !again.NotBefore.Equal(deleted) {
		t.Fatalf("recreated client NotBefore = %s, want the deletion time %s", again.NotBefore, deleted)
	}
}

// testUpdateClientAtomic: concurrent read-modify-writes must not lose updates.
func testUpdateClientAtomic(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "c"}))
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateClient(ctx, "c", func(c *storage.Client) error { c.DailyLimit++; return nil })
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := s.GetClient(ctx, "c")
	mustNoErr(t, err)
	if got.DailyLimit != n {
		t.Fatalf("after %d concurrent increments got %d", n, got.DailyLimit)
	}
}

func testUsers(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := storage.User{ID: "u1", Username: "alice", PasswordHash: []byte("x"), CreatedAt: time.Now().UTC()}
	mustNoErr(t, s.CreateUser(ctx, u))
	wantErr(t, s.CreateUser(ctx, storage.User{ID: "u2", Username: "alice"}), storage.ErrAlreadyExists)
	wantErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "bob"}), storage.ErrAlreadyExists)

	got, err := s.GetUserByUsername(ctx, "alice")
	mustNoErr(t, err)
	if got.ID != "u1" || string(got.PasswordHash) != "x" {
		t.Fatalf("GetUserByUsername = %+v", got)
	}
	_, err = s.GetUserByUsername(ctx, "bob")
	wantErr(t, err, storage.ErrNotFound)
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u3", Username: "carol"}))
	all, err := s.ListUsers(ctx)
	mustNoErr(t, err)
	if len(all) != 2 {
		t.Fatalf("ListUsers: got %d, want 2", len(all))
	}
	mustNoErr(t, s.DeleteUser(ctx, "u1"))
	wantErr(t, s.DeleteUser(ctx, "u1"), storage.ErrNotFound)
	_, err = s.GetUserByUsername(ctx, "alice")
	wantErr(t, err, storage.ErrNotFound)
	// The username is free again once its user is gone.
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u4", Username: "alice"}))
}

func testSigningKeys(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	first := storage.SigningKey{ID: "k1", PrivatePEM: []byte("pem1"), CreatedAt: time.Now().UTC()}
	keys, created, err := s.EnsureSigningKey(ctx, first)
	mustNoErr(t, err)
	if !created || len(keys) != 1 || keys[0].ID != "k1" || string(keys[0].PrivatePEM) != "pem1" {
		t.Fatalf("first EnsureSigningKey = %v, %v", keys, created)
	}
	keys, created, err = s.EnsureSigningKey(ctx, storage.SigningKey{ID: "k2", CreatedAt: time.Now().UTC()})
	mustNoErr(t, err)
	if created || len(keys) != 1 || keys[0].ID != "k1" {
		t.Fatalf("second EnsureSigningKey = %v, %v; want k1 kept", keys, created)
	}
}

// testSigningKeysRace: replicas starting at once must agree on one key.
func testSigningKeysRace(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	createdCount := 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, created, err := s.EnsureSigningKey(ctx, storage.SigningKey{ID: fmt.Sprintf("k%d", i), CreatedAt: time.Now().UTC()})
			if err != nil {
				t.Error(err)
			}
			if created {
				mu.Lock()
				createdCount++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	keys, err := s.ListSigningKeys(ctx)
	mustNoErr(t, err)
	if createdCount != 1 || len(keys) != 1 {
		t.Fatalf("10 racing EnsureSigningKey: created %d, stored %d; want 1 and 1", createdCount, len(keys))
	}
}

func newFamily(t *testing.T, s storage.Storage, fam string, now time.Time) storage.RefreshToken {
	t.Helper()
	rt := storage.RefreshToken{
		Hash: "h0", FamilyID: fam, ClientID: "client", Subject: "user", Scope: "a",
		AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	mustNoErr(t, s.CreateRefreshToken(context.Background(), rt))
	return rt
}

func rotation(fam, from, to string, now time.Time, grace time.Duration) storage.Rotation {
	return storage.Rotation{
		FamilyID: fam, Hash: from, ClientID: "client", Now: now, Grace: grace,
		Next: storage.RefreshToken{
			Hash: to, FamilyID: fam, ClientID: "client", Subject: "user", Scope: "a",
			AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		},
		Sealed: []byte("sealed-" + to),
	}
}

func testRefreshRotation(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	newFamily(t, s, "f1", now)
	wantErr(t, s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: "x", FamilyID: "f1", ExpiresAt: now.Add(time.Hour)}), storage.ErrAlreadyExists)

	got, err := s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1", now, 5*time.Second))
	mustNoErr(t, err)
	if !got.Fresh || string(got.Sealed) != "sealed-h1" {
		t.Fatalf("first rotation = %+v, want fresh sealed-h1", got)
	}
	// A retry inside the grace window gets the same successor and mints nothing.
	got, err = s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1-other", now.Add(2*time.Second), 5*time.Second))
	mustNoErr(t, err)
	if got.Fresh || string(got.Sealed) != "sealed-h1" {
		t.Fatalf("retry in grace = %+v, want the stored successor", got)
	}
	if _, err := s.GetRefreshToken(ctx, "f1", "h1-other"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a retry stored its own successor: %v", err)
	}
	rec, err := s.GetRefreshToken(ctx, "f1", "h1")
	mustNoErr(t, err)
	if rec.Subject != "user" || !rec.UsedAt.IsZero() {
		t.Fatalf("successor record = %+v", rec)
	}
	// The successor rotates in turn.
	got, err = s.RotateRefreshToken(ctx, rotation("f1", "h1", "h2", now.Add(3*time.Second), 5*time.Second))
	mustNoErr(t, err)
	if !got.Fresh {
		t.Fatal("successor did not rotate")
	}
	_, err = s.RotateRefreshToken(ctx, rotation("f1", "unknown", "h9", now, 5*time.Second))
	wantErr(t, err, storage.ErrNotFound)
}

func testRefreshForeignClient(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	newFamily(t, s, "f1", now)
	r := rotation("f1", "h0", "h1", now, 5*time.Second)
	r.ClientID = "intruder"
	_, err := s.RotateRefreshToken(ctx, r)
	wantErr(t, err, storage.ErrNotFound)
	// The owner's token was not burned by the foreign attempt.
	got, err := s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1", now, 5*time.Second))
	mustNoErr(t, err)
	if !got.Fresh {
		t.Fatal("owner could not rotate after a foreign attempt")
	}
}

func testRefreshExpired(t *testing.T, s storage.Storage) {
	now := time.Now().UTC()
	newFamily(t, s, "f1", now)
	_, err := s.RotateRefreshToken(context.Background(), rotation("f1", "h0", "h1", now.Add(time.Hour), time.Second))
	wantErr(t, err, storage.ErrNotFound)
}

func testRefreshReplay(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	newFamily(t, s, "f1", now)
	_, err := s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1", now, 5*time.Second))
	mustNoErr(t, err)
	// After the window the old token is a replay, and the family dies with it.
	_, err = s.RotateRefreshToken(ctx, rotation("f1", "h0", "hx", now.Add(6*time.Second), 5*time.Second))
	wantErr(t, err, storage.ErrReplay)
	if !familyRevoked(t, s, "f1", now) {
		t.Fatal("family not revoked after replay")
	}
	_, err = s.RotateRefreshToken(ctx, rotation("f1", "h1", "h2", now.Add(7*time.Second), 5*time.Second))
	wantErr(t, err, storage.ErrRevoked)

	// With grace 0 the second use is a replay at once.
	newFamily(t, s, "f2", now)
	_, err = s.RotateRefreshToken(ctx, rotation("f2", "h0", "h1", now, 0))
	mustNoErr(t, err)
	_, err = s.RotateRefreshToken(ctx, rotation("f2", "h0", "h1b", now, 0))
	wantErr(t, err, storage.ErrReplay)
}

func testRefreshConcurrent(t *testing.T, s storage.Storage) {
	for _, grace := range []time.Duration{5 * time.Second, 0} {
		t.Run(fmt.Sprintf("grace=%s", grace), func(t *testing.T) {
			ctx := context.Background()
			now := time.Now().UTC()
			fam := fmt.Sprintf("fam-%d", grace)
			newFamily(t, s, fam, now)
			const n = 20
			var wg sync.WaitGroup
			var mu sync.Mutex
			fresh, ok, sealed := 0, 0, map[string]bool{}
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := s.RotateRefreshToken(ctx, rotation(fam, "h0", fmt.Sprintf("n%d", i), now, grace))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						return
					}
					ok++
					sealed[string(got.Sealed)] = true
					if got.Fresh {
						fresh++
					}
				}()
			}
			wg.Wait()
			if fresh != 1 {
				t.Fatalf("%d concurrent rotations: %d fresh, want exactly 1", n, fresh)
			}
			if grace > 0 && (ok != n || len(sealed) != 1) {
				t.Fatalf("grace on: %d succeeded with %d distinct successors, want %d and 1", ok, len(sealed), n)
			}
			if grace == 0 && ok != 1 {
				t.Fatalf("grace off: %d succeeded, want exactly 1", ok)
			}
		})
	}
}

func testRevokeFamily(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	newFamily(t, s, "f1", now)
	if familyRevoked(t, s, "f1", now) {
		t.Fatal("new family reported revoked")
	}
	mustNoErr(t, s.RevokeFamily(ctx, "f1", now))
	mustNoErr(t, s.RevokeFamily(ctx, "f1", now)) // idempotent
	_, err := s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1", now, time.Second))
	wantErr(t, err, storage.ErrRevoked)
	if !familyRevoked(t, s, "f1", now) {
		t.Fatal("revoked family reported live")
	}
	wantErr(t, s.RevokeFamily(ctx, "missing", now), storage.ErrNotFound)
	if !familyRevoked(t, s, "missing", now) {
		t.Fatal("an unknown family must count as revoked")
	}
}

// familyRevoked asks TokenState about an access token of the family.
func familyRevoked(t *testing.T, s storage.Storage, fam string, now time.Time) bool {
	t.Helper()
	st, err := s.TokenState(context.Background(), storage.TokenQuery{ClientID: "client", JTI: fam + "-jti", FamilyID: fam, Now: now})
	mustNoErr(t, err)
	return st.Revoked
}

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

func admission(now time.Time, capacity int, res string) storage.Admission {
	return storage.Admission{
		Now: now, Reuse: true, Pool: storage.Pool{ClientID: "c", Subject: "c", Scope: "a b", Audience: "api"},
		MinRemaining: 5 * time.Minute, Capacity: capacity, Reservation: res, ReserveUntil: now.Add(10 * time.Second),
	}
}

func pooled(jti string, now time.Time, ttl time.Duration) *storage.PooledToken {
	return &storage.PooledToken{AccessToken: "tok-" + jti, JTI: jti, Scope: "a b", IssuedAt: now, ExpiresAt: now.Add(ttl)}
}

func testReusePool(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	a := admission(now, 1, "r1")
	got, err := s.Admit(ctx, a)
	mustNoErr(t, err)
	if !got.Allowed || got.Reused != nil {
		t.Fatalf("empty pool: %+v, want allowed", got)
	}
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: a, Token: pooled("j1", now, time.Hour)}))

	got, err = s.Admit(ctx, admission(now.Add(time.Minute), 1, "r2"))
	mustNoErr(t, err)
	if got.Reused == nil || got.Reused.AccessToken != "tok-j1" || !got.Reused.ExpiresAt.Equal(now.Add(time.Hour)) || got.Allowed {
		t.Fatalf("second ask: %+v, want j1 reused", got)
	}
	// Another scope is another pool.
	other := admission(now, 1, "r3")
	other.Pool.Scope = "a"
	if got, _ := s.Admit(ctx, other); !got.Allowed {
		t.Fatalf("other scope: %+v, want its own pool", got)
	}
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: other}))

	// Less than MinRemaining left and the pool full (capacity 1): the cap wins, j1 is
	// answered rather than a second valid token minted.
	got, err = s.Admit(ctx, admission(now.Add(58*time.Minute), 1, "r4"))
	mustNoErr(t, err)
	if got.Reused == nil || got.Reused.JTI != "j1" {
		t.Fatalf("full pool near expiry: %+v, want j1", got)
	}
	// With room for a second token, a fresh one is allowed instead.
	got, err = s.Admit(ctx, admission(now.Add(58*time.Minute), 2, "r5"))
	mustNoErr(t, err)
	if !got.Allowed {
		t.Fatalf("near expiry with room: %+v, want allowed", got)
	}
	// A failed issuance frees its slot.
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: admission(now.Add(58*time.Minute), 2, "r5")}))
	if got, _ := s.Admit(ctx, admission(now.Add(58*time.Minute), 2, "r6")); !got.Allowed {
		t.Fatalf("slot not released: %+v", got)
	}
	// After j1 expires the pool is empty again.
	if got, _ := s.Admit(ctx, admission(now.Add(2*time.Hour), 1, "r7")); !got.Allowed {
		t.Fatalf("after expiry: %+v, want allowed", got)
	}
}

// admitAll runs n admissions at once and returns their answers.
func admitAll(t *testing.T, s storage.Storage, n int, mk func(i int) storage.Admission) []storage.Admitted {
	t.Helper()
	out := make([]storage.Admitted, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := s.Admit(context.Background(), mk(i))
			if err != nil {
				t.Error(err)
			}
			out[i] = got
		})
	}
	wg.Wait()
	return out
}

func testReuseCapacity(t *testing.T, s storage.Storage) {
	now := time.Now().UTC()
	const n, capacity = 20, 3
	allowed, busy := 0, 0
	for _, got := range admitAll(t, s, n, func(i int) storage.Admission { return admission(now, capacity, fmt.Sprintf("r%d", i)) }) {
		if got.Allowed {
			allowed++
		}
		if got.Busy {
			busy++
		}
	}
	if allowed != capacity || busy != n-capacity {
		t.Fatalf("%d racing admissions with capacity %d: %d allowed, %d busy", n, capacity, allowed, busy)
	}
	// Reservations lapse if their holder never settles.
	if got, _ := s.Admit(context.Background(), admission(now.Add(11*time.Second), capacity, "late")); !got.Allowed {
		t.Fatalf("after reservations lapsed: %+v", got)
	}
}

func limitAdmission(now time.Time, limit int, day string) storage.Admission {
	return storage.Admission{Now: now, Pool: storage.Pool{ClientID: "c", Subject: "u"}, Limit: limit, Day: day, ResetAt: now.Add(time.Hour)}
}

func testDailyLimit(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	for i := range 3 {
		got, err := s.Admit(ctx, limitAdmission(now, 3, "2026-11-23"))
		mustNoErr(t, err)
		if !got.Allowed {
			t.Fatalf("issuance %d refused: %+v", i+1, got)
		}
	}
	got, err := s.Admit(ctx, limitAdmission(now, 3, "2026-11-23"))
	mustNoErr(t, err)
	if !got.Limited || got.Allowed {
		t.Fatalf("4th of 3: %+v, want limited", got)
	}
	// A failed issuance gives its count back.
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: limitAdmission(now, 3, "2026-11-23")}))
	if got, _ := s.Admit(ctx, limitAdmission(now, 3, "2026-11-23")); !got.Allowed {
		t.Fatalf("after a refund: %+v", got)
	}
	// Another subject and another day count separately.
	other := limitAdmission(now, 3, "2026-11-23")
	other.Pool.Subject = "v"
	if got, _ := s.Admit(ctx, other); !got.Allowed {
		t.Fatal("another subject shares the count")
	}
	if got, _ := s.Admit(ctx, limitAdmission(now, 3, "2026-11-24")); !got.Allowed {
		t.Fatal("the next day shares the count")
	}
}

func testDailyLimitConcurrent(t *testing.T, s storage.Storage) {
	now := time.Now().UTC()
	const n, limit = 60, 25
	allowed, limited := 0, 0
	for _, got := range admitAll(t, s, n, func(int) storage.Admission { return limitAdmission(now, limit, "d") }) {
		if got.Allowed {
			allowed++
		} else if got.Limited {
			limited++
		}
	}
	if allowed != limit || limited != n-limit {
		t.Fatalf("%d concurrent with limit %d: %d allowed, %d limited", n, limit, allowed, limited)
	}
}

// testCallerClock: a store decides what is valid on the caller's clock, never its own. A
// caller days behind or ahead of the wall clock (a pinned test clock, a skewed replica) must
// see counters, pools, replicas and refresh tokens live exactly as long as it asked.
func testCallerClock(t *testing.T, s storage.Storage) {
	for _, skew := range []time.Duration{-72 * time.Hour, 72 * time.Hour} {
		t.Run(fmt.Sprintf("skew=%s", skew), func(t *testing.T) {
			ctx := context.Background()
			now := time.Now().UTC().Add(skew).Truncate(time.Second)
			day := now.Format("2006-01-02")

			// Daily limit: the count survives until the day ends on the caller's clock.
			for i := range 3 {
				if got, err := s.Admit(ctx, limitAdmission(now, 3, day)); err != nil || !got.Allowed {
					t.Fatalf("issuance %d: %+v %v", i+1, got, err)
				}
			}
			if got, _ := s.Admit(ctx, limitAdmission(now.Add(time.Minute), 3, day)); !got.Limited {
				t.Fatalf("4th of 3 a minute later: %+v, want limited", got)
			}

			// Reuse pool: a pooled token is found again a minute later.
			a := admission(now, 1, "r-"+day)
			a.Pool.Subject = "clock" + day
			if got, err := s.Admit(ctx, a); err != nil || !got.Allowed {
				t.Fatalf("empty pool: %+v %v", got, err)
			}
			mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: a, Token: pooled("j-"+day, now, time.Hour)}))
			later := a
			later.Now, later.Reservation = now.Add(time.Minute), "r2-"+day
			if got, _ := s.Admit(ctx, later); got.Reused == nil || got.Reused.JTI != "j-"+day {
				t.Fatalf("a minute later: %+v, want the pooled token", got)
			}

			// Replicas: a heartbeat counts until its expiry on the caller's clock.
			mustNoErr(t, s.Heartbeat(ctx, storage.Replica{ID: "r" + day, ExpiresAt: now.Add(10 * time.Second)}, now))
			if live, _ := s.Replicas(ctx, now.Add(5*time.Second)); len(live) != 1 {
				t.Fatalf("replica 5s into a 10s heartbeat: %v", live)
			}

			// Refresh: a family created and rotated on the caller's clock.
			fam := "fc" + day
			newFamily(t, s, fam, now)
			if got, err := s.RotateRefreshToken(ctx, rotation(fam, "h0", "h1", now.Add(time.Minute), 5*time.Second)); err != nil || !got.Fresh {
				t.Fatalf("rotation a minute after login: %+v %v", got, err)
			}
			if rec, err := s.GetRefreshToken(ctx, fam, "h1"); err != nil || rec.Subject != "user" {
				t.Fatalf("successor: %+v %v", rec, err)
			}
		})
	}
}
