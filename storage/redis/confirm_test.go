package redis_test

import (
	"context"
	"errors"
	"fmt"
	goredis "github.com/redis/go-redis/v9"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// replicaWait is the replica_timeout of these tests; an unconfirmed write must be answered
// within it plus replicaMargin.
const (
	replicaWait   = 500 * time.Millisecond
	replicaMargin = 400 * time.Millisecond
)

// waits counts what the store's WAIT observer hears.
type waits struct{ confirmed, unconfirmed atomic.Int64 }

func (w *waits) observe(_ time.Duration, ok bool) {
	if ok {
		w.confirmed.Add(1)
	} else {
		w.unconfirmed.Add(1)
	}
}

// withReplica opens a store on a master with one replica that must confirm every write.
func withReplica(t *testing.T) (*redis.Store, *redistest.Server, *waits) {
	t.Helper()
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	s, err := redis.Open(context.Background(), fmt.Sprintf("%s?min_replicas=1&replica_timeout=%v", master.URL(), replicaWait))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w := &waits{}
	s.ObserveWaits(w.observe)
	return s, replica, w
}

// unconfirmed runs write with the replica frozen and wants storage.ErrUnconfirmed within
// replica_timeout plus a margin; the replica is thawed (and caught up) before it returns.
func unconfirmed(t *testing.T, replica *redistest.Server, write func() error) {
	t.Helper()
	replica.Freeze()
	start := time.Now()
	err := write()
	took := time.Since(start)
	replica.Thaw()
	replica.CaughtUp()
	if !errors.Is(err, storage.ErrUnconfirmed) || !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("with the replica frozen: %v, want ErrUnconfirmed (an ErrUnavailable)", err)
	}
	if took > replicaWait+replicaMargin {
		t.Fatalf("the unconfirmed write took %v, want at most %v", took, replicaWait+replicaMargin)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestUnconfirmedWrites: with a frozen replica every write an answer depends on fails with
// ErrUnconfirmed in time, and is then either undone or left to be retried, as
// docs/durability.md tabulates.
func TestUnconfirmedWrites(t *testing.T) {
	s, replica, w := withReplica(t)
	ctx := context.Background()
	now := time.Now().UTC()

	t.Run("a revocation retried is a revocation", func(t *testing.T) {
		r := storage.AccessRevocation{JTI: "j1", Pool: storage.Pool{ClientID: "c"}, Now: now, ExpiresAt: now.Add(time.Hour)}
		unconfirmed(t, replica, func() error { return s.RevokeAccessToken(ctx, r) })
		st, err := s.TokenState(ctx, storage.TokenQuery{ClientID: "c", JTI: "j1", Now: now})
		mustOK(t, err)
		if !st.Revoked {
			t.Fatal("the unconfirmed revocation was dropped; it is left for the retry")
		}
		mustOK(t, s.RevokeAccessToken(ctx, r))
	})

	t.Run("a family revocation retried is a revocation", func(t *testing.T) {
		mustOK(t, s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: "h0", FamilyID: "rf", ClientID: "client", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}))
		unconfirmed(t, replica, func() error { return s.RevokeFamily(ctx, "rf", now) })
		mustOK(t, s.RevokeFamily(ctx, "rf", now))
		st, err := s.TokenState(ctx, storage.TokenQuery{ClientID: "client", FamilyID: "rf", Now: now})
		mustOK(t, err)
		if !st.Revoked {
			t.Fatal("family not revoked")
		}
	})

	t.Run("an unconfirmed count is given back", func(t *testing.T) {
		a := storage.Admission{Now: now, Pool: storage.Pool{ClientID: "c", Subject: "u"}, Limit: 1, Day: "d", ResetAt: now.Add(time.Hour)}
		unconfirmed(t, replica, func() error { _, err := s.Admit(ctx, a); return err })
		got, err := s.Admit(ctx, a)
		mustOK(t, err)
		if !got.Allowed || got.DailyCount != 1 {
			t.Fatalf("after the give-back: %+v, want allowed with count 1", got)
		}
		if got, _ := s.Admit(ctx, a); !got.Limited {
			t.Fatalf("beyond the limit: %+v, want limited", got)
		}
	})

	t.Run("an unconfirmed login with a limit gives its count back", func(t *testing.T) {
		a := storage.Admission{Now: now, Pool: storage.Pool{ClientID: "c", Subject: "w"}, Limit: 1, Day: "d", ResetAt: now.Add(time.Hour),
			Family: &storage.RefreshToken{Hash: "h0", FamilyID: "lf", ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}}
		unconfirmed(t, replica, func() error { _, err := s.Admit(ctx, a); return err })
		a.Family = &storage.RefreshToken{Hash: "h0", FamilyID: "lf2", ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
		if got, err := s.Admit(ctx, a); err != nil || !got.Allowed || got.DailyCount != 1 {
			t.Fatalf("after the give-back: %+v %v, want allowed with count 1", got, err)
		}
	})

	t.Run("an unconfirmed rotation is taken back", func(t *testing.T) {
		mustOK(t, s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: "h0", FamilyID: "f", ClientID: "client", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}))
		rot := func(next string, at time.Time) storage.Rotation {
			return storage.Rotation{FamilyID: "f", Hash: "h0", ClientID: "client", Now: at, Grace: 5 * time.Second, Sealed: []byte("sealed-" + next),
				Next: storage.RefreshToken{Hash: next, FamilyID: "f", ClientID: "client", IssuedAt: at, ExpiresAt: at.Add(time.Hour)}}
		}
		unconfirmed(t, replica, func() error { _, err := s.RotateRefreshToken(ctx, rot("h1", now)); return err })
		if _, err := s.GetRefreshToken(ctx, "f", "h1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the successor of an unconfirmed rotation: %v, want it gone", err)
		}
		// Long after the grace window, the retry rotates afresh instead of being a replay.
		got, err := s.RotateRefreshToken(ctx, rot("h2", now.Add(time.Minute)))
		mustOK(t, err)
		if !got.Fresh || string(got.Sealed) != "sealed-h2" {
			t.Fatalf("retry = %+v, want a fresh rotation", got)
		}
		// A retry in the grace window whose answer is unconfirmed keeps the successor.
		unconfirmed(t, replica, func() error {
			_, err := s.RotateRefreshToken(ctx, rot("h3", now.Add(time.Minute+time.Second)))
			return err
		})
		got, err = s.RotateRefreshToken(ctx, rot("h4", now.Add(time.Minute+2*time.Second)))
		mustOK(t, err)
		if got.Fresh || string(got.Sealed) != "sealed-h2" {
			t.Fatalf("in grace = %+v, want the stored successor", got)
		}
	})

	t.Run("an unconfirmed rotation of an old-format token is taken back", func(t *testing.T) {
		old := storage.RefreshToken{Hash: "h0", FamilyID: "of", ClientID: "client", Subject: "user", AccessTTL: time.Hour,
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
		putOldFormatFamily(t, s.Client(), old)
		rot := func(next string, at time.Time) storage.Rotation {
			return storage.Rotation{FamilyID: "of", Hash: "h0", ClientID: "client", Now: at, Sealed: []byte("sealed-" + next),
				Next: storage.RefreshToken{Hash: next, FamilyID: "of", ClientID: "client", IssuedAt: at, ExpiresAt: at.Add(time.Hour)}}
		}
		unconfirmed(t, replica, func() error { _, err := s.RotateRefreshToken(ctx, rot("h1", now)); return err })
		if _, err := s.GetRefreshToken(ctx, "of", "h1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the successor of an unconfirmed rotation: %v, want it gone", err)
		}
		if got, err := s.GetRefreshToken(ctx, "of", "h0"); err != nil || !got.UsedAt.IsZero() || got.Subject != "user" {
			t.Fatalf("the old-format token after the rotation was taken back: %+v, %v, want it unused", got, err)
		}
		got, err := s.RotateRefreshToken(ctx, rot("h2", now.Add(time.Minute)))
		mustOK(t, err)
		if !got.Fresh || string(got.Sealed) != "sealed-h2" {
			t.Fatalf("retry = %+v, want a fresh rotation", got)
		}
	})

	t.Run("an unconfirmed rotation puts the token back as its family's current one", func(t *testing.T) {
		first := storage.RefreshToken{Hash: "h0", FamilyID: "cf", ClientID: "client", Subject: "user", Scope: "a", AccessTTL: time.Hour,
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
		mustOK(t, s.CreateRefreshToken(ctx, first))
		second := first
		// A family's hash keeps a token's expiry to the millisecond, as the scripts compare it.
		second.Hash, second.ExpiresAt = "h1", first.ExpiresAt.Truncate(time.Millisecond)
		mustOK(t, func() error {
			_, err := s.RotateRefreshToken(ctx, storage.Rotation{FamilyID: "cf", Hash: "h0", ClientID: "client", Now: now, Next: second, Sealed: []byte("s1")})
			return err
		}())
		third := first
		third.Hash = "h2"
		unconfirmed(t, replica, func() error {
			_, err := s.RotateRefreshToken(ctx, storage.Rotation{FamilyID: "cf", Hash: "h1", ClientID: "client", Now: now, Next: third, Sealed: []byte("s2")})
			return err
		})
		if got, err := s.GetRefreshToken(ctx, "cf", "h1"); err != nil || !reflect.DeepEqual(got, second) {
			t.Fatalf("the token after its rotation was taken back: %+v, %v, want %+v", got, err, second)
		}
		if n, err := s.Client().Exists(ctx, "ts:{f:cf}:rt:h1", "ts:{f:cf}:ru:h1", "ts:{f:cf}:rt:h2").Result(); err != nil || n != 0 {
			t.Fatalf("%d keys of their own for h1 and h2 (%v), want none: h1 is back in its family's hash", n, err)
		}
		if got, err := s.GetRefreshToken(ctx, "cf", "h0"); err != nil || got.UsedAt.IsZero() {
			t.Fatalf("the first token: %+v, %v, want it still used", got, err)
		}
	})

	t.Run("an unconfirmed user is undone", func(t *testing.T) {
		u := storage.User{ID: "u1", Username: "ann", CreatedAt: now}
		unconfirmed(t, replica, func() error { return s.CreateUser(ctx, u) })
		if _, err := s.GetUserByUsername(ctx, "ann"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("user after an unconfirmed create: %v, want not found", err)
		}
		mustOK(t, s.CreateUser(ctx, u))
	})

	t.Run("an unconfirmed personal token is undone", func(t *testing.T) {
		p := storage.PersonalToken{ID: "p1", UserID: "u1", Name: "ci", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		unconfirmed(t, replica, func() error { return s.CreatePersonalToken(ctx, p) })
		if _, err := s.GetPersonalToken(ctx, "p1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("token after an unconfirmed create: %v, want not found", err)
		}
		mustOK(t, s.CreatePersonalToken(ctx, p))
	})

	t.Run("an unconfirmed assertion is taken back", func(t *testing.T) {
		a := storage.AssertionUse{ClientID: "c", JTI: "a1", Now: now, ExpiresAt: now.Add(time.Minute)}
		unconfirmed(t, replica, func() error { return s.UseAssertion(ctx, a) })
		// No token was answered for it: the retry with the same assertion is accepted, once.
		mustOK(t, s.UseAssertion(ctx, a))
		if err := s.UseAssertion(ctx, a); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("the assertion again: %v, want ErrAlreadyExists", err)
		}
	})

	t.Run("an unconfirmed client is left for the retry", func(t *testing.T) {
		c := storage.Client{ID: "cl", CreatedAt: now}
		unconfirmed(t, replica, func() error { return s.CreateClient(ctx, c) })
		if _, err := s.GetClient(ctx, "cl"); err != nil {
			t.Fatalf("client after an unconfirmed create: %v, want it kept", err)
		}
	})

	t.Run("an unconfirmed server secret is left for the retry", func(t *testing.T) {
		unconfirmed(t, replica, func() error { _, err := s.EnsureServerSecret(ctx, "audit", "first"); return err })
		if got, err := s.EnsureServerSecret(ctx, "audit", "second"); err != nil || got != "first" {
			t.Fatalf("the retry got %q %v, want the secret the unconfirmed write left", got, err)
		}
	})

	t.Run("a sign-out retried finds the session gone", func(t *testing.T) {
		sess := storage.Session{IDHash: "s1", UserID: "u1", CreatedAt: now, IdleUntil: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}
		unconfirmed(t, replica, func() error { return s.CreateSession(ctx, sess, now) })
		if _, err := s.GetSession(ctx, "s1", now); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("session after an unconfirmed sign-in: %v, want it undone", err)
		}
		mustOK(t, s.CreateSession(ctx, sess, now))
		unconfirmed(t, replica, func() error { return s.DeleteSession(ctx, "s1") })
		if err := s.DeleteSession(ctx, "s1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("retried sign-out: %v, want not found", err)
		}
	})

	t.Run("reads and writes no answer depends on do not wait", func(t *testing.T) {
		replica.Freeze()
		defer replica.Thaw()
		start := time.Now()
		reuse := storage.Admission{Now: now, Pool: storage.Pool{ClientID: "c", Subject: "r"}, Reuse: true, Capacity: 2, Reservation: "res",
			ReserveUntil: now.Add(time.Second), MinRemaining: time.Minute}
		if got, err := s.Admit(ctx, reuse); err != nil || !got.Allowed {
			t.Fatalf("reuse admission: %+v %v", got, err)
		}
		mustOK(t, s.Settle(ctx, storage.Settlement{Admission: reuse}))
		mustOK(t, s.LoginFailed(ctx, storage.LoginAttempt{Username: "ann", Remote: "1.2.3.4", Now: now, Limit: 5, UserLimit: 50, Window: time.Hour, MaxDelay: time.Minute}))
		mustOK(t, s.TouchPersonalTokens(ctx, map[string]time.Time{"p1": now}))
		if _, err := s.GetClient(ctx, "cl"); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > replicaWait/2 {
			t.Fatalf("took %v with the replica frozen: something waited for it", took)
		}
	})

	if w.unconfirmed.Load() == 0 || w.confirmed.Load() == 0 {
		t.Fatalf("observer heard %d confirmed and %d unconfirmed writes, want some of each", w.confirmed.Load(), w.unconfirmed.Load())
	}
}

// TestReadyCountsReplicas: readiness fails while fewer replicas than min_replicas are connected.
func TestReadyCountsReplicas(t *testing.T) {
	s, replica, _ := withReplica(t)
	ctx := context.Background()
	// The replica links up on its own after it starts: ready once it has.
	deadline := time.Now().Add(5 * time.Second)
	for err := s.Ready(ctx); err != nil; err = s.Ready(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 5 s after its replica started: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	replica.Stop()
	deadline = time.Now().Add(5 * time.Second)
	for s.Ready(ctx) == nil {
		if time.Now().After(deadline) {
			t.Fatal("still ready 5 s after its only replica stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Ready(ctx); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Ready = %v, want an ErrUnavailable", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping = %v: the master itself still answers", err)
	}
}

// TestClusterWaitsOnTheWritesShard: on a Cluster, WAIT runs on the master that took the write
// and counts its own replicas: a frozen replica of one shard makes writes to that shard
// unconfirmed and leaves the other shards' writes confirmed.
func TestClusterWaitsOnTheWritesShard(t *testing.T) {
	cluster := redistest.NewCluster(t, 3)
	s, err := redis.Open(context.Background(), cluster.URL+"?replica_timeout="+replicaWait.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now().UTC()
	revoke := func(client string) error {
		return s.RevokeAccessToken(ctx, storage.AccessRevocation{JTI: "j", Pool: storage.Pool{ClientID: client}, Now: now, ExpiresAt: now.Add(time.Hour)})
	}
	// Clients whose marks live on different masters.
	byShard := map[string]string{}
	for i := 0; len(byShard) < 3 && i < 1000; i++ {
		c := fmt.Sprintf("client-%d", i)
		addr, err := redis.ShardOf(s, c, "j")
		mustOK(t, err)
		if _, ok := byShard[addr]; !ok {
			byShard[addr] = c
		}
	}
	if len(byShard) != 3 {
		t.Fatalf("found clients on %d shards, want 3", len(byShard))
	}
	for _, c := range byShard {
		// A cluster just formed may take a moment before every replica acknowledges.
		for deadline := time.Now().Add(10 * time.Second); ; {
			err := revoke(c)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			t.Logf("a write before any freeze: %v", err)
		}
	}
	var frozenMaster string
	for addr := range byShard {
		frozenMaster = addr
		break
	}
	rdb := cluster.Node(frozenMaster).Client()
	info, err := rdb.Info(ctx, "replication").Result()
	rdb.Close()
	mustOK(t, err)
	m := regexp.MustCompile(`slave0:ip=([^,]+),port=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("no replica in INFO of %s:\n%s", frozenMaster, info)
	}
	replica := cluster.Node(m[1] + ":" + m[2])
	replica.Freeze()
	defer replica.Thaw()
	for addr, c := range byShard {
		err := revoke(c)
		if addr == frozenMaster {
			if !errors.Is(err, storage.ErrUnconfirmed) {
				t.Errorf("write to the shard whose replica is frozen: %v, want ErrUnconfirmed", err)
			}
		} else if err != nil {
			t.Errorf("write to shard %s, whose replica is fine: %v", addr, err)
		}
	}
}

// TestReadyWantsWrites: a Redis that answers PING but refuses writes is not ready, whatever
// the reason it refuses them, and is ready again once it takes them; on a Cluster every
// master is probed.
func TestReadyWantsWrites(t *testing.T) {
	ctx := context.Background()
	single := redistest.Start(t)
	cluster := redistest.NewCluster(t, 3)
	for _, tc := range []struct {
		name     string
		url      string
		refuse   []string // CONFIG SET arguments that make Redis refuse writes
		restore  []string
		wantText string
	}{
		{"out of memory under noeviction", single.URL(), []string{"maxmemory", "1", "maxmemory-policy", "noeviction"}, []string{"maxmemory", "0"}, "OOM"},
		{"too few replicas for min-replicas-to-write", single.URL(), []string{"min-replicas-to-write", "1"}, []string{"min-replicas-to-write", "0"}, "NOREPLICAS"},
		{"one Cluster master out of memory", cluster.URL + "?min_replicas=0", []string{"maxmemory", "1", "maxmemory-policy", "noeviction"}, []string{"maxmemory", "0"}, "OOM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redis.Open(ctx, tc.url)
			mustOK(t, err)
			defer s.Close()
			mustOK(t, s.Ready(ctx))
			// The first master (or the only server) refuses writes from now on.
			node := goredis.NewClient(&goredis.Options{Addr: firstMaster(t, tc.url)})
			defer node.Close()
			set := func(args []string) {
				for i := 0; i < len(args); i += 2 {
					mustOK(t, node.ConfigSet(ctx, args[i], args[i+1]).Err())
				}
			}
			set(tc.refuse)
			err = s.Ready(ctx)
			set(tc.restore)
			if !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("Ready while writes are refused = %v, want ErrUnavailable naming %s", err, tc.wantText)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping = %v: Redis itself still answers", err)
			}
			mustOK(t, s.Ready(ctx))
		})
	}
}

// firstMaster is the address of the server a storage URL names, or of a Cluster's first
// master.
func firstMaster(t *testing.T, url string) string {
	t.Helper()
	o, err := redis.Options(url)
	mustOK(t, err)
	if len(o.Addrs) == 1 {
		return o.Addrs[0]
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: o.Addrs})
	defer c.Close()
	var addrs []string
	var mu sync.Mutex
	mustOK(t, c.ForEachMaster(context.Background(), func(_ context.Context, m *goredis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		addrs = append(addrs, m.Options().Addr)
		return nil
	}))
	slices.Sort(addrs)
	return addrs[0]
}

// graceBeforeUndo runs fn once, just before the store sends the script that takes back an
// unconfirmed rotation (its first key is the old token's hash key).
type graceBeforeUndo struct {
	once sync.Once
	fn   func()
}

func (h *graceBeforeUndo) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *graceBeforeUndo) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}
func (h *graceBeforeUndo) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if args := cmd.Args(); len(args) > 3 && (cmd.Name() == "evalsha" || cmd.Name() == "eval") {
			if k, _ := args[3].(string); strings.Contains(k, "}:rt:") {
				h.once.Do(h.fn)
			}
		}
		return next(ctx, cmd)
	}
}

// TestUnconfirmedRotationHandedOut: a rotation too few replicas confirmed is not taken back
// once a retry in the grace window has been answered with its successor: that successor is
// out, so it stays the family's current token and the old one stays used.
func TestUnconfirmedRotationHandedOut(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	ctx := context.Background()
	s, err := redis.Open(ctx, fmt.Sprintf("%s?min_replicas=1&replica_timeout=%v", master.URL(), replicaWait))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	other, err := redis.Open(ctx, master.URL()) // another replica of the server, waiting for none
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	now := time.Now().UTC()
	first := storage.RefreshToken{Hash: "h0", FamilyID: "f", ClientID: "client", Subject: "user", AccessTTL: time.Hour,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	// Set-up, not under test: written without waiting, then the replica given all the time it
	// needs, so a loaded machine cannot make this write the unconfirmed one.
	mustOK(t, other.CreateRefreshToken(ctx, first))
	replica.CaughtUp()
	rot := func(next string) storage.Rotation {
		n := first
		n.Hash = next
		return storage.Rotation{FamilyID: "f", Hash: "h0", ClientID: "client", Now: now, Grace: 5 * time.Second, Next: n, Sealed: []byte("sealed-" + next)}
	}
	var graced storage.Rotated
	var gerr error
	s.Client().AddHook(&graceBeforeUndo{fn: func() { graced, gerr = other.RotateRefreshToken(ctx, rot("h1-retry")) }})
	unconfirmed(t, replica, func() error { _, err := s.RotateRefreshToken(ctx, rot("h1")); return err })
	if gerr != nil || graced.Fresh || string(graced.Sealed) != "sealed-h1" {
		t.Fatalf("the retry in the grace window: %+v %v, want the successor sealed-h1", graced, gerr)
	}
	if got, err := s.GetRefreshToken(ctx, "f", "h1"); err != nil || !got.UsedAt.IsZero() {
		t.Errorf("the handed-out successor: %+v %v, want it the family's current token", got, err)
	}
	if got, err := s.GetRefreshToken(ctx, "f", "h0"); err != nil || got.UsedAt.IsZero() {
		t.Errorf("the old token: %+v %v, want it still used", got, err)
	}
}
