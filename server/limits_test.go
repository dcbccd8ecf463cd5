package server_test

import (
	"context"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/registry"
	"golang.org/x/oauth2/clientcredentials"
)

// TestVSCHARClientIDs: a client_id may be any RFC 6749 VSCHAR string. client_secret_basic
// carries it form-urlencoded (RFC 6749 §2.3.1, as x/oauth2 sends it), the admin API
// path-escaped; every admin path and the token endpoint work with it.
func TestVSCHARClientIDs(t *testing.T) {
	ts := newTestServer(t)
	for _, id := range []string{"partner:one/two", "with space", "100%", `q"uote`, "a+b=c&d", "~!@#$^*()[]{}|;,<>?"} {
		t.Run(id, func(t *testing.T) {
			path := "/admin/clients/" + url.PathEscape(id)
			r := ts.admin(t, "POST", "/admin/clients", fmt.Sprintf(`{"client_id":%q}`, id))
			if r.Status != 201 || r.str("client_id") != id {
				t.Fatalf("create: %d %s", r.Status, r.RawBody)
			}
			sec := r.str("client_secret")
			cc := clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: ts.URL + "/oauth2/token"}
			if _, err := cc.Token(context.Background()); err != nil {
				t.Fatalf("x/oauth2 with Basic: %v", err)
			}
			if r := ts.post(t, "application/x-www-form-urlencoded", url.Values{"grant_type": {"client_credentials"},
				"client_id": {id}, "client_secret": {sec}}.Encode(), nil); r.Status != 200 {
				t.Fatalf("client_secret_post: %d %s", r.Status, r.RawBody)
			}
			for _, step := range []struct{ method, path, body string }{
				{"GET", path, ""},
				{"PATCH", path, `{"name":"renamed"}`},
				{"POST", path + "/rotate-secret", `{"grace":"1m"}`},
			} {
				if r := ts.admin(t, step.method, step.path, step.body); r.Status != 200 || r.str("error") != "" {
					t.Fatalf("%s %s: %d %s", step.method, step.path, r.Status, r.RawBody)
				}
			}
			if r := ts.admin(t, "DELETE", path, ""); r.Status != 204 {
				t.Fatalf("delete: %d %s", r.Status, r.RawBody)
			}
		})
	}
}

// TestFailedLoginMemoryIsBounded: a spray of wrong logins with distinct usernames, some of them
// huge, must not grow the heap for good. Huge ones are refused before anything is kept; the
// others are kept as fixed-size digests.
func TestFailedLoginMemoryIsBounded(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password"}})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for i := range 1000 {
		huge := fmt.Sprintf("%06d", i) + strings.Repeat("u", 60<<10)
		if r := ts.form(t, id, sec, url.Values{"grant_type": {"password"}, "username": {huge}, "password": {"x"}}); r.Status != 400 || r.str("error") != "invalid_request" {
			t.Fatalf("60 KB username: %d %s", r.Status, r.RawBody)
		}
	}
	// Each of these costs a bcrypt comparison (about 60 ms, several times that under -race).
	for i := range 20 {
		long := fmt.Sprintf("%06d", i) + strings.Repeat("u", registry.MaxUsernameLen-6)
		if r := ts.form(t, id, sec, url.Values{"grant_type": {"password"}, "username": {long}, "password": {"x"}}); r.Status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("128-byte username: %d %s", r.Status, r.RawBody)
		}
	}
	grew := int64(heap()) - int64(before)
	t.Logf("heap grew %d KB over 1,000 refused 60 KB usernames and 20 counted 128-byte ones", grew>>10)
	if grew > 8<<20 {
		t.Fatalf("heap grew %d MB", grew>>20)
	}
}
