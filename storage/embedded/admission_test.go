package embedded

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func TestPoolEntriesRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Unix(1795519669, 123456789)
	tests := []struct {
		name string
		e    poolEntry
	}{
		{"reservation", poolEntry{Until: at}},
		{"token", poolEntry{Until: at.Add(time.Hour), Token: &storage.PooledToken{
			AccessToken: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", JTI: "Xq3w0J9CTe3n", Family: "fam0fam0fam0",
			Scope: "orders:read orders:write a|b", IssuedAt: at, ExpiresAt: at.Add(time.Hour)}}},
		{"token without family or scope", poolEntry{Until: at, Token: &storage.PooledToken{AccessToken: "a.b.c", JTI: "j", IssuedAt: at, ExpiresAt: at}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := decodePoolEntry(encodePoolEntry(tc.e))
			if !ok || !got.Until.Equal(tc.e.Until) || (got.Token == nil) != (tc.e.Token == nil) {
				t.Fatalf("decode(encode(%+v)) = %+v, %v", tc.e, got, ok)
			}
			if tc.e.Token != nil {
				w, g := *tc.e.Token, *got.Token
				if g.AccessToken != w.AccessToken || g.JTI != w.JTI || g.Family != w.Family || g.Scope != w.Scope ||
					!g.IssuedAt.Equal(w.IssuedAt) || !g.ExpiresAt.Equal(w.ExpiresAt) {
					t.Fatalf("token %+v, want %+v", g, w)
				}
			}
			// Entries written by earlier builds are JSON.
			old, _ := json.Marshal(tc.e)
			if got, ok := decodePoolEntry(string(old)); !ok || !got.Until.Equal(tc.e.Until) || (got.Token == nil) != (tc.e.Token == nil) {
				t.Fatalf("JSON entry: %+v, %v", got, ok)
			}
		})
	}
	for _, bad := range []string{"", "p2\n", "p2\nnot-a-number", "p2\n1\njti", "p2\n1\nt1\nj\nf\ns\nx\n2\ntoken", "{"} {
		if _, ok := decodePoolEntry(bad); ok {
			t.Errorf("decoded %q", bad)
		}
	}
}
