package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

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
