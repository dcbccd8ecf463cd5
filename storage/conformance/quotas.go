package conformance

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

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

// quota is an admission against a daily and an hourly limit (0: none), either in shadow mode.
func quota(now time.Time, daily, hourly int, hour string) storage.Admission {
	return storage.Admission{
		Now: now, Pool: storage.Pool{ClientID: "q", Subject: "u"},
		Limit: daily, Day: "2026-11-23", ResetAt: now.Add(12 * time.Hour),
		HourlyLimit: hourly, Hour: hour, HourResetAt: now.Add(30 * time.Minute),
	}
}

func admitOne(t *testing.T, s storage.Storage, a storage.Admission) storage.Admitted {
	t.Helper()
	got, err := s.Admit(context.Background(), a)
	mustNoErr(t, err)
	return got
}

// testHourlyAndDaily: both windows are counted in one step; whichever enforced limit is
// reached refuses, and a refused admission counts in neither window.
func testHourlyAndDaily(t *testing.T, s storage.Storage) {
	now := time.Now().UTC()
	steps := []struct {
		hour          string
		allowed       bool
		daily, hourly int
	}{
		{"h1", true, 1, 1},
		{"h1", true, 2, 2},
		{"h1", false, 2, 2}, // the hour is full; the day is not charged
		{"h2", true, 3, 1},
		{"h2", false, 3, 1}, // the day is full; the hour is not charged
		{"h3", false, 3, 0},
	}
	for i, st := range steps {
		got := admitOne(t, s, quota(now, 3, 2, st.hour))
		if got.Allowed != st.allowed || got.Limited == st.allowed || got.DailyCount != st.daily || got.HourlyCount != st.hourly {
			t.Fatalf("step %d (%s): %+v, want allowed=%v day=%d hour=%d", i+1, st.hour, got, st.allowed, st.daily, st.hourly)
		}
	}
	// A failed issuance gives both counts back.
	mustNoErr(t, s.Settle(context.Background(), storage.Settlement{Admission: quota(now, 3, 2, "h2")}))
	if got := admitOne(t, s, quota(now, 3, 2, "h2")); !got.Allowed || got.DailyCount != 3 || got.HourlyCount != 1 {
		t.Fatalf("after a refund: %+v, want allowed with day=3 hour=1", got)
	}
	// Without a daily limit only the hour counts.
	if got := admitOne(t, s, quota(now, 0, 2, "h4")); !got.Allowed || got.DailyCount != 0 || got.HourlyCount != 1 {
		t.Fatalf("hourly only: %+v", got)
	}
}

// testShadowLimits: a shadow limit counts past its limit and never refuses; an enforced limit
// beside it still does, and refunds reach shadow counts too.
func testShadowLimits(t *testing.T, s storage.Storage) {
	now := time.Now().UTC()
	shadowDay := func(hour string) storage.Admission {
		a := quota(now, 2, 3, hour)
		a.Shadow = true
		return a
	}
	for i := 1; i <= 3; i++ {
		if got := admitOne(t, s, shadowDay("h1")); !got.Allowed || got.DailyCount != i || got.HourlyCount != i {
			t.Fatalf("shadow day, admission %d: %+v", i, got)
		}
	}
	// The enforced hour (3) refuses although the day is only shadowed.
	if got := admitOne(t, s, shadowDay("h1")); !got.Limited || got.DailyCount != 3 || got.HourlyCount != 3 {
		t.Fatalf("enforced hour beside a shadow day: %+v, want limited", got)
	}
	mustNoErr(t, s.Settle(context.Background(), storage.Settlement{Admission: shadowDay("h1")}))
	if got := admitOne(t, s, shadowDay("h2")); !got.Allowed || got.DailyCount != 3 || got.HourlyCount != 1 {
		t.Fatalf("after a refund of a shadow count: %+v, want day=3", got)
	}
	// Both in shadow: nothing is ever refused, and the counts keep going.
	both := quota(now, 1, 1, "h3")
	both.Pool.Subject, both.Shadow, both.HourlyShadow = "w", true, true
	for i := 1; i <= 5; i++ {
		if got := admitOne(t, s, both); !got.Allowed || got.DailyCount != i || got.HourlyCount != i {
			t.Fatalf("both shadowed, admission %d: %+v", i, got)
		}
	}
}

// testLimitsConcurrent: racing admissions are counted exactly in both windows, enforced or
// shadowed: every allowed admission sees its own count, none twice.
func testLimitsConcurrent(t *testing.T, s storage.Storage) {
	now := time.Now().UTC()
	const n = 60
	cases := []struct {
		name                string
		daily, hourly       int
		shadowDay, shadowHr bool
		allowed             int
		dailySeq, hourlySeq bool // the allowed admissions saw 1..allowed in that window
	}{
		{"hourly enforced", 100, 20, false, false, 20, true, true},
		{"daily enforced, hourly shadow", 25, 5, false, true, 25, true, true},
		{"daily shadow, no hourly", 10, 0, true, false, n, true, false},
		{"both shadow", 3, 4, true, true, n, true, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mk := func(int) storage.Admission {
				a := quota(now, tc.daily, tc.hourly, "h")
				a.Pool.Subject = string(rune('a' + i))
				a.Shadow, a.HourlyShadow = tc.shadowDay, tc.shadowHr
				return a
			}
			var days, hours []int
			limited := 0
			for _, got := range admitAll(t, s, n, mk) {
				switch {
				case got.Allowed:
					days, hours = append(days, got.DailyCount), append(hours, got.HourlyCount)
				case got.Limited:
					limited++
				}
			}
			if len(days) != tc.allowed || limited != n-tc.allowed {
				t.Fatalf("%d racing admissions: %d allowed, %d limited; want %d allowed", n, len(days), limited, tc.allowed)
			}
			seq := func(got []int, want bool) {
				t.Helper()
				slices.Sort(got)
				for j, c := range got {
					if want && c != j+1 || !want && c != 0 {
						t.Fatalf("counts seen by the allowed admissions: %v", got)
					}
				}
			}
			seq(days, tc.dailySeq)
			seq(hours, tc.hourlySeq)
		})
	}
}

// testAdmissionWithFamily: a login's refresh family passed with a limited admission is stored
// exactly when the admission is allowed.
func testAdmissionWithFamily(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	fam := func(id string) *storage.RefreshToken {
		return &storage.RefreshToken{Hash: "h-" + id, FamilyID: id, ClientID: "c", Subject: "u", AccessTTL: time.Hour,
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	a := limitAdmission(now, 1, "d")
	a.Family = fam("f1")
	if got, err := s.Admit(ctx, a); err != nil || !got.Allowed {
		t.Fatalf("first admission with a family: %+v %v", got, err)
	}
	if _, err := s.GetRefreshToken(ctx, "f1", "h-f1"); err != nil {
		t.Fatalf("the allowed admission's family was not stored: %v", err)
	}
	a.Family = fam("f2")
	if got, err := s.Admit(ctx, a); err != nil || !got.Limited {
		t.Fatalf("second admission (limit 1): %+v %v", got, err)
	}
	if _, err := s.GetRefreshToken(ctx, "f2", "h-f2"); err == nil {
		t.Fatal("a refused admission stored its family")
	}
	if !familyRevoked(t, s, "f2", now) || familyRevoked(t, s, "f1", now) {
		t.Fatal("family states after the admissions are wrong")
	}
}
