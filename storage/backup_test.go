package storage

import (
	"testing"
	"time"
)

func TestRestored(t *testing.T) {
	now := time.Date(2026, 5, 4, 9, 12, 44, 123456789, time.UTC)
	east := time.FixedZone("east", 3*3600)
	c := Client{ID: "c", CreatedAt: now, AccessTokenTTL: 1<<53 + 1}
	for _, tc := range []struct {
		name     string
		held     *Client
		restored Client
		want     Outcome
	}{
		{"nothing held", nil, c, Created},
		{"the same", &c, c, Unchanged},
		{"the same instant in another zone", &Client{ID: "c", CreatedAt: now.In(east), AccessTokenTTL: 1<<53 + 1}, c, Unchanged},
		{"another instant", &Client{ID: "c", CreatedAt: now.Add(time.Nanosecond), AccessTokenTTL: 1<<53 + 1}, c, Updated},
		// Two numbers one float64 cannot tell apart still differ.
		{"a large number off by one", &Client{ID: "c", CreatedAt: now.In(east), AccessTokenTTL: 1 << 53}, c, Updated},
		{"another field", &Client{ID: "c", Name: "x", CreatedAt: now, AccessTokenTTL: 1<<53 + 1}, c, Updated},
	} {
		if got := Restored(tc.held, tc.restored); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
