package conformance

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

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
	// Another signing algorithm is another pool: a client switched to ES256 is never handed
	// its RS256 token; RS256 named or not is the same pool.
	es := admission(now.Add(time.Minute), 1, "r3es")
	es.Pool.Alg = "ES256"
	if got, _ := s.Admit(ctx, es); !got.Allowed || got.Reused != nil {
		t.Fatalf("other algorithm: %+v, want its own pool", got)
	}
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: es}))
	rs := admission(now.Add(time.Minute), 1, "r3rs")
	rs.Pool.Alg = "RS256"
	if got, _ := s.Admit(ctx, rs); got.Reused == nil || got.Reused.JTI != "j1" {
		t.Fatalf("RS256 named: %+v, want j1 from the pool without an algorithm", got)
	}
	// A token bound to a key (or a certificate) is in a pool of that binding: never handed to a
	// bearer request, nor to a request bound to another key, nor by one kind to the other.
	for i, b := range []string{storage.Binding("key-a", ""), storage.Binding("key-b", ""), storage.Binding("", "key-a")} {
		bound := admission(now.Add(time.Minute), 1, "r3b"+strconv.Itoa(i))
		bound.Pool.Binding = b
		if got, _ := s.Admit(ctx, bound); !got.Allowed || got.Reused != nil {
			t.Fatalf("binding %q: %+v, want its own pool", b, got)
		}
		mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: bound, Token: pooled("jb"+strconv.Itoa(i), now, time.Hour)}))
		bound.Reservation = "r3b-again" + strconv.Itoa(i)
		if got, _ := s.Admit(ctx, bound); got.Reused == nil || got.Reused.JTI != "jb"+strconv.Itoa(i) {
			t.Fatalf("binding %q again: %+v, want jb%d", b, got, i)
		}
	}
	if got, _ := s.Admit(ctx, admission(now.Add(time.Minute), 1, "r3unbound")); got.Reused == nil || got.Reused.JTI != "j1" {
		t.Fatalf("unbound after bound pools: %+v, want j1", got)
	}

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

func testIncarnations(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	a := admission(now, 1, "r1")
	a.Pool.Incarnation = "1"
	if got, _ := s.Admit(ctx, a); !got.Allowed {
		t.Fatalf("first incarnation: %+v", got)
	}
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: a, Token: pooled("j1", now, time.Hour)}))
	b := admission(now, 1, "r2")
	b.Pool.Incarnation = "2"
	if got, _ := s.Admit(ctx, b); !got.Allowed || got.Reused != nil {
		t.Fatalf("a client created again must not see its predecessor's pool: %+v", got)
	}
	l1 := limitAdmission(now, 1, "d")
	l1.Pool.Incarnation = "1"
	l2 := l1
	l2.Pool.Incarnation = "2"
	if got, _ := s.Admit(ctx, l1); !got.Allowed {
		t.Fatal(got)
	}
	if got, _ := s.Admit(ctx, l2); !got.Allowed {
		t.Fatalf("a client created again shares its predecessor's daily count: %+v", got)
	}
}
