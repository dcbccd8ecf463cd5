package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// testAssertionOnce: a client assertion's jti is accepted once; another client's identical jti
// is its own; the caller's clock decides, whatever the skew.
func testAssertionOnce(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for _, skew := range []time.Duration{0, -72 * time.Hour, 72 * time.Hour} {
		t.Run(fmt.Sprintf("skew=%s", skew), func(t *testing.T) {
			now := time.Now().UTC().Add(skew)
			jti := fmt.Sprintf("jti-%d", skew)
			a := storage.AssertionUse{ClientID: "c1", JTI: jti, Now: now, ExpiresAt: now.Add(time.Minute)}
			mustNoErr(t, s.UseAssertion(ctx, a))
			later := a
			later.Now = now.Add(50 * time.Second)
			for _, again := range []storage.AssertionUse{a, later} {
				wantErr(t, s.UseAssertion(ctx, again), storage.ErrAlreadyExists)
			}
			other := a
			other.ClientID = "c2"
			mustNoErr(t, s.UseAssertion(ctx, other))
		})
	}
}

// testAssertionOnceConcurrent: of many requests racing with one assertion, exactly one wins.
func testAssertionOnceConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	a := storage.AssertionUse{ClientID: "c", JTI: "race", Now: now, ExpiresAt: now.Add(time.Minute)}
	var ok, replay atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch err := s.UseAssertion(ctx, a); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, storage.ErrAlreadyExists):
				replay.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replay.Load() != 19 {
		t.Fatalf("%d accepted, %d refused as replays; want 1 and 19", ok.Load(), replay.Load())
	}
}

// testAssertionExpires: the store forgets a jti by itself once its exp has passed, with no
// sweep (an assertion past its exp is refused before the store is asked).
func testAssertionExpires(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	a := storage.AssertionUse{ClientID: "c", JTI: "short", Now: now, ExpiresAt: now.Add(300 * time.Millisecond)}
	mustNoErr(t, s.UseAssertion(ctx, a))
	wantErr(t, s.UseAssertion(ctx, a), storage.ErrAlreadyExists)
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.Now = time.Now().UTC()
		a.ExpiresAt = a.Now.Add(time.Minute)
		err := s.UseAssertion(ctx, a)
		if err == nil {
			return
		}
		if !errors.Is(err, storage.ErrAlreadyExists) || time.Now().After(deadline) {
			t.Fatalf("the jti 5 s after its exp: %v, want it forgotten", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
