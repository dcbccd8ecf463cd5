package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPublicClients: token_endpoint_auth_method none is a client identified by its id alone
// (RFC 6749 §2.1), allowed the password and refresh grants and nothing else, which never has a
// secret and refuses one sent anyway.
func TestPublicClients(t *testing.T) {
	ts := newTestServer(t)
	ts.user(t, "ivan", "ivan-password")

	t.Run("admin API", func(t *testing.T) {
		r := ts.admin(t, "POST", "/admin/clients", `{"client_id":"mobile","token_endpoint_auth_method":"none"}`)
		if gts, _ := r.Body["grant_types"].([]any); r.Status != 201 || strings.Contains(r.RawBody, "client_secret") || fmt.Sprint(gts) != "[password refresh_token]" {
			t.Fatalf("create: %d %s", r.Status, r.RawBody)
		}
		confidential := ts.admin(t, "POST", "/admin/clients", `{}`).str("client_id")
		for _, tc := range []struct{ name, method, path, body string }{
			{"public with client_credentials", "POST", "/admin/clients", `{"token_endpoint_auth_method":"none","grant_types":["client_credentials"]}`},
			{"public with token exchange", "POST", "/admin/clients", `{"token_endpoint_auth_method":"none","grant_types":["password","urn:ietf:params:oauth:grant-type:token-exchange"]}`},
			{"client_credentials added to a public client", "PATCH", "/admin/clients/mobile", `{"grant_types":["password","client_credentials"]}`},
			{"a client_credentials client made public", "PATCH", "/admin/clients/" + confidential, `{"token_endpoint_auth_method":"none"}`},
			{"a public client's secret rotated", "POST", "/admin/clients/mobile/rotate-secret", `{}`},
			{"an unknown method", "POST", "/admin/clients", `{"token_endpoint_auth_method":"private_key_jwt"}`},
		} {
			if r := ts.admin(t, tc.method, tc.path, tc.body); r.Status != 400 || r.str("error") != "invalid_request" {
				t.Errorf("%s: %d %s, want 400 invalid_request", tc.name, r.Status, r.RawBody)
			}
		}
	})

	login := url.Values{"grant_type": {"password"}, "client_id": {"mobile"}, "username": {"ivan"}, "password": {"ivan-password"}}
	t.Run("password and refresh with the id alone", func(t *testing.T) {
		r := ts.postTo(t, "/oauth2/token", login.Encode())
		if r.Status != 200 || r.str("refresh_token") == "" {
			t.Fatalf("login: %d %s", r.Status, r.RawBody)
		}
		if c := verify(t, ts, r.str("access_token")); c.ClientID != "mobile" {
			t.Fatalf("claims %+v", c)
		}
		rr := ts.postTo(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"mobile"}, "refresh_token": {r.str("refresh_token")}}.Encode())
		if rr.Status != 200 || rr.str("refresh_token") == "" {
			t.Fatalf("refresh: %d %s", rr.Status, rr.RawBody)
		}
		// HTTP Basic with an empty password is the id alone too (x/oauth2's AuthStyleInHeader).
		b := url.Values{"grant_type": {"password"}, "username": {"ivan"}, "password": {"ivan-password"}}
		if r := ts.form(t, "mobile", "", b); r.Status != 200 {
			t.Fatalf("Basic with no secret: %d %s", r.Status, r.RawBody)
		}
		// It revokes its own tokens (RFC 7009 §5 foresees public clients doing so).
		req, _ := http.NewRequest("POST", ts.URL+"/oauth2/revoke", strings.NewReader(url.Values{"client_id": {"mobile"}, "token": {rr.str("refresh_token")}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := send(t, req); r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.RawBody)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			body   url.Values
			status int
			code   string
		}{
			{"a secret sent anyway", with(login, "client_secret", "guess"), 401, "invalid_client"},
			{"client_credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {"mobile"}}, 400, "unauthorized_client"},
			{"introspection", url.Values{"client_id": {"mobile"}, "token": {"x"}}, 400, "unauthorized_client"},
			{"refresh without its id", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"tsr_x"}}, 401, "invalid_client"},
		} {
			path := "/oauth2/token"
			if tc.name == "introspection" {
				path = "/oauth2/introspect"
			}
			if r := ts.postTo(t, path, tc.body.Encode()); r.Status != tc.status || r.str("error") != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, r.Status, r.RawBody, tc.status, tc.code)
			}
		}
	})

	t.Run("failed-login backoff", func(t *testing.T) {
		for range 3 {
			ts.postTo(t, "/oauth2/token", with(login, "password", "wrong-password").Encode())
		}
		if r := ts.postTo(t, "/oauth2/token", login.Encode()); r.Status != 429 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("after 3 failures: %d %s", r.Status, r.RawBody)
		}
		ts.Clock.Advance(2 * time.Second)
	})

	t.Run("a confidential client made public loses its secret", func(t *testing.T) {
		c := ts.admin(t, "POST", "/admin/clients", `{"grant_types":["password","refresh_token"]}`)
		id, sec := c.str("client_id"), c.str("client_secret")
		b := url.Values{"grant_type": {"password"}, "username": {"ivan"}, "password": {"ivan-password"}}
		if r := ts.form(t, id, sec, b); r.Status != 200 {
			t.Fatalf("before: %d %s", r.Status, r.RawBody)
		}
		if r := ts.admin(t, "PATCH", "/admin/clients/"+id, `{"token_endpoint_auth_method":"none"}`); r.Status != 200 {
			t.Fatalf("PATCH: %d %s", r.Status, r.RawBody)
		}
		if r := ts.form(t, id, sec, b); r.Status != 401 {
			t.Fatalf("the old secret after the change: %d %s", r.Status, r.RawBody)
		}
		if r := ts.form(t, id, "", b); r.Status != 200 {
			t.Fatalf("the id alone after the change: %d %s", r.Status, r.RawBody)
		}
	})

	t.Run("discovery", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.URL+"/.well-known/oauth-authorization-server", nil)
		r := send(t, req)
		methods, _ := r.Body["token_endpoint_auth_methods_supported"].([]any)
		if !slices.Contains(methods, any("none")) {
			t.Fatalf("token_endpoint_auth_methods_supported %v lacks none", methods)
		}
		if m, _ := r.Body["introspection_endpoint_auth_methods_supported"].([]any); slices.Contains(m, any("none")) {
			t.Fatalf("introspection offers none: %v", m)
		}
	})
}

func with(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for key, vs := range v {
		out[key] = vs
	}
	out.Set(k, val)
	return out
}
