package storage_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func TestPooledTokenEncoding(t *testing.T) {
	t.Parallel()
	at := time.Unix(1795519669, 123456789)
	tests := []storage.PooledToken{
		{AccessToken: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", JTI: "Xq3w0J9CTe3n", Family: "fam0fam0fam0",
			Scope: "orders:read orders:write a|b", IssuedAt: at, ExpiresAt: at.Add(3 * time.Hour)},
		{AccessToken: "a.b.c", JTI: "j", IssuedAt: at, ExpiresAt: at},
		{AccessToken: "a.b.c", JTI: "j", Family: "f", IssuedAt: at, ExpiresAt: at, Epoch: 7},
	}
	same := func(a, b storage.PooledToken) bool {
		return a.AccessToken == b.AccessToken && a.JTI == b.JTI && a.Family == b.Family && a.Scope == b.Scope &&
			a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.Epoch == b.Epoch
	}
	for _, tc := range tests {
		if got, ok := storage.DecodePooledToken(storage.EncodePooledToken(tc)); !ok || !same(got, tc) {
			t.Errorf("round trip of %+v: %+v, %v", tc, got, ok)
		}
		// What earlier builds stored.
		old, _ := json.Marshal(tc)
		if got, ok := storage.DecodePooledToken(string(old)); !ok || !same(got, tc) {
			t.Errorf("JSON %s: %+v, %v", old, got, ok)
		}
	}
	// Version 1 (before credential versions) reads as epoch 0.
	v1 := "t1\nj\nf\ns\n" + "1795519669123456789\n1795519669123456789\na.b.c"
	if got, ok := storage.DecodePooledToken(v1); !ok || got.Epoch != 0 || got.JTI != "j" || got.AccessToken != "a.b.c" {
		t.Errorf("version 1: %+v, %v", got, ok)
	}
	for _, bad := range []string{"", "t1\n", "t2\n", "t2\nx\nj\nf\ns\n1\n2\ntoken", "t1\nj\nf\ns\n1\n2\n", "t1\nj\nf\ns\nx\n2\ntoken", "{", "{}"} {
		if _, ok := storage.DecodePooledToken(bad); ok {
			t.Errorf("decoded %q", bad)
		}
	}
}
