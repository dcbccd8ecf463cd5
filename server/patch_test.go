package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// backends are the stores a test runs on: memory, file and (when redis-server is there, always
// in CI) a real Redis.
func backends(t *testing.T) map[string]func(t *testing.T) storage.Storage {
	return map[string]func(t *testing.T) storage.Storage{
		"memory": func(t *testing.T) storage.Storage {
			s, err := embedded.OpenMemory()
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"file": func(t *testing.T) storage.Storage {
			s, err := embedded.OpenFile(filepath.Join(t.TempDir(), "ts.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"redis": func(t *testing.T) storage.Storage {
			srv := redistest.Start(t)
			s, err := redis.Open(context.Background(), srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

// TestPatchEveryFieldOnEveryBackend: PATCH with each field alone, then with all at once, and
// the token path keeps answering while it happens. PATCH with an owner used to hang the embedded
// store (the update read a user under buntdb's write lock).
func TestPatchEveryFieldOnEveryBackend(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withStore(open(t)))
			owner := ts.user(t, "olga", "olga-password")
			id, sec := ts.client(t, registry.ClientInput{})
			fields := []struct{ field, value, want string }{
				{"name", `"Billing"`, `"Billing"`},
				{"grant_types", `["client_credentials","password","refresh_token"]`, `["client_credentials","password","refresh_token"]`},
				{"scopes", `["a","b"]`, `["a","b"]`},
				{"audience", `"https://api.example.com"`, `["https://api.example.com"]`},
				{"access_token_ttl", `"2h"`, `"2h"`},
				{"refresh_token_ttl", `"7d"`, `"7d"`},
				{"refresh_grace", `"0s"`, `"0s"`},
				{"reuse", `true`, `true`},
				{"reuse_min_remaining", `"10m"`, `"10m"`},
				{"daily_limit", `50`, `50`},
				{"hourly_limit", `500`, `500`},
				{"daily_limit_shadow", `true`, `true`},
				{"hourly_limit_shadow", `true`, `true`},
				{"token_endpoint_auth_method", `"client_secret_basic"`, `"client_secret_basic"`},
				{"owner", `"` + owner + `"`, `"` + owner + `"`},
				{"resource_server", `true`, `true`},
			}
			all := map[string]json.RawMessage{}
			for _, f := range fields {
				all[f.field] = json.RawMessage(f.value)
				done := make(chan reply, 1)
				go func() {
					done <- ts.admin(t, "PATCH", "/admin/clients/"+url.PathEscape(id), `{"`+f.field+`":`+f.value+`}`)
				}()
				select {
				case r := <-done:
					got, _ := json.Marshal(r.Body[f.field])
					if r.Status != 200 || string(got) != compact(f.want) {
						t.Fatalf("PATCH %s: %d %s", f.field, r.Status, r.RawBody)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("PATCH %s did not answer within 5s", f.field)
				}
				// The token path and readiness are not stuck behind it.
				if r := ts.form(t, id, sec, url.Values{"grant_type": {"client_credentials"}}); r.Status != 200 {
					t.Fatalf("token after PATCH %s: %d %s", f.field, r.Status, r.RawBody)
				}
				resp, err := http.Get(ts.URL + "/readyz")
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("readyz after PATCH %s: %v %v", f.field, resp, err)
				}
				resp.Body.Close()
			}
			body, _ := json.Marshal(all)
			if r := ts.admin(t, "PATCH", "/admin/clients/"+url.PathEscape(id), string(body)); r.Status != 200 {
				t.Fatalf("PATCH with every field: %d %s", r.Status, r.RawBody)
			}
			if r := ts.admin(t, "PATCH", "/admin/clients/"+url.PathEscape(id), `{"owner":"nobody"}`); r.Status != 400 {
				t.Fatalf("PATCH with an unknown owner: %d %s", r.Status, r.RawBody)
			}
		})
	}
}

func compact(s string) string {
	var v any
	_ = json.Unmarshal([]byte(s), &v)
	b, _ := json.Marshal(v)
	return string(b)
}
