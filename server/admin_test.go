package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tokensmith/tokensmith/registry"
)

func TestAdminAuth(t *testing.T) {
	ts := newTestServer(t)
	for _, h := range []string{"", "Bearer wrong-token-wrong-token", "Basic " + b64("admin:"+testAdminToken), testAdminToken} {
		req, _ := http.NewRequest("GET", ts.AdminURL+"/admin/clients", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("Authorization %q: %d, want 401 with a Bearer challenge", h, resp.StatusCode)
		}
	}
	if r := ts.admin(t, "GET", "/admin/clients", ""); r.Status != 200 {
		t.Fatalf("right token: %d", r.Status)
	}
}

func TestAdminClients(t *testing.T) {
	ts := newTestServer(t)
	r := ts.admin(t, "POST", "/admin/clients", `{"client_id":"atol-1","name":"ATOL","grant_types":["client_credentials","password"],
		"scopes":["kkt"],"audience":"https://api.example.com","access_token_ttl":"24h","refresh_token_ttl":"14d",
		"refresh_grace":"0s","reuse":true,"reuse_min_remaining":"5m","daily_limit":100,"token_endpoint_auth_method":"client_secret_post"}`)
	if r.Status != 201 || r.str("client_secret") == "" || r.str("client_id") != "atol-1" {
		t.Fatalf("create: %d %s", r.Status, r.RawBody)
	}
	for k, want := range map[string]any{"access_token_ttl": "24h", "refresh_token_ttl": "14d", "refresh_grace": "0s",
		"reuse": true, "reuse_min_remaining": "5m", "daily_limit": float64(100), "token_endpoint_auth_method": "client_secret_post"} {
		if r.Body[k] != want {
			t.Errorf("%s = %v, want %v", k, r.Body[k], want)
		}
	}
	if aud, _ := r.Body["audience"].([]any); len(aud) != 1 || aud[0] != "https://api.example.com" {
		t.Errorf("audience = %v", r.Body["audience"])
	}
	// The secret is shown once: never in show or list.
	if g := ts.admin(t, "GET", "/admin/clients/atol-1", ""); g.Status != 200 || g.str("client_secret") != "" || strings.Contains(g.RawBody, "secret_hash") {
		t.Fatalf("show: %d %s", g.Status, g.RawBody)
	}
	if l := ts.admin(t, "GET", "/admin/clients", ""); l.Status != 200 || strings.Contains(l.RawBody, `"client_secret":`) || !strings.Contains(l.RawBody, "atol-1") {
		t.Fatalf("list: %s", l.RawBody)
	}
	if p := ts.admin(t, "PATCH", "/admin/clients/atol-1", `{"name":"ATOL Online","daily_limit":0}`); p.Status != 200 ||
		p.str("name") != "ATOL Online" || p.Body["daily_limit"] != float64(0) || p.Body["reuse"] != true {
		t.Fatalf("patch: %d %s", p.Status, p.RawBody)
	}

	bad := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"duplicate id", "POST", "/admin/clients", `{"client_id":"atol-1"}`, 409, "already_exists"},
		{"unknown field", "POST", "/admin/clients", `{"client_idd":"x"}`, 400, "invalid_request"},
		{"bad grant", "POST", "/admin/clients", `{"grant_types":["implicit"]}`, 400, "invalid_request"},
		{"empty grants", "POST", "/admin/clients", `{"grant_types":[]}`, 400, "invalid_request"},
		{"bad duration", "POST", "/admin/clients", `{"access_token_ttl":"soon"}`, 400, "invalid_request"},
		{"too short ttl", "POST", "/admin/clients", `{"access_token_ttl":"500ms"}`, 400, "invalid_request"},
		{"negative limit", "POST", "/admin/clients", `{"daily_limit":-1}`, 400, "invalid_request"},
		{"bad auth method", "POST", "/admin/clients", `{"token_endpoint_auth_method":"private_key_jwt"}`, 400, "invalid_request"},
		{"bad scope", "POST", "/admin/clients", `{"scopes":["a b"]}`, 400, "invalid_request"},
		{"id with a control character", "POST", "/admin/clients", `{"client_id":"a\u0007b"}`, 400, "invalid_request"},
		{"id beyond ASCII", "POST", "/admin/clients", `{"client_id":"клиент"}`, 400, "invalid_request"},
		{"id too long", "POST", "/admin/clients", `{"client_id":"` + strings.Repeat("x", 129) + `"}`, 400, "invalid_request"},
		{"invalid UTF-8", "POST", "/admin/clients", "{\"name\":\"caf\xe9\"}", 400, "invalid_request"},
		{"duplicate key", "POST", "/admin/clients", `{"name":"a","name":"b"}`, 400, "invalid_request"},
		{"nested duplicate key", "POST", "/admin/clients", `{"audience":["a"],"scopes":["x"],"name":"n","reuse":true,"reuse":false}`, 400, "invalid_request"},
		{"escape in name", "POST", "/admin/clients", `{"name":"\u001b[31mred"}`, 400, "invalid_request"},
		{"escape in audience", "POST", "/admin/clients", `{"audience":"https://api\u001b[2J"}`, 400, "invalid_request"},
		{"space in audience", "POST", "/admin/clients", `{"audience":"a b"}`, 400, "invalid_request"},
		{"overflowing duration", "POST", "/admin/clients", `{"access_token_ttl":"213504d"}`, 400, "invalid_request"},
		{"overflowing hours", "POST", "/admin/clients", `{"refresh_token_ttl":"9999999h"}`, 400, "invalid_request"},
		{"unknown owner", "POST", "/admin/clients", `{"owner":"nobody"}`, 400, "invalid_request"},
		{"audience of wrong type", "POST", "/admin/clients", `{"audience":5}`, 400, "invalid_request"},
		{"not JSON", "POST", "/admin/clients", `name=x`, 400, "invalid_request"},
		{"trailing data", "POST", "/admin/clients", `{} {}`, 400, "invalid_request"},
		{"show missing", "GET", "/admin/clients/nope", "", 404, "not_found"},
		{"patch missing", "PATCH", "/admin/clients/nope", `{"name":"x"}`, 404, "not_found"},
		{"patch id", "PATCH", "/admin/clients/atol-1", `{"client_id":"other"}`, 400, "invalid_request"},
		{"delete missing", "DELETE", "/admin/clients/nope", "", 404, "not_found"},
		{"rotate missing", "POST", "/admin/clients/nope/rotate-secret", "", 404, "not_found"},
		{"rotate bad grace", "POST", "/admin/clients/atol-1/rotate-secret", `{"grace":"-1h"}`, 400, "invalid_request"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.admin(t, tc.method, tc.path, tc.body)
			if r.Status != tc.status || r.str("error") != tc.code || r.str("error_description") == "" {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.RawBody, tc.status, tc.code)
			}
		})
	}
	// Bad input changed nothing.
	if g := ts.admin(t, "GET", "/admin/clients", ""); strings.Count(g.RawBody, `"client_id"`) != 1 {
		t.Fatalf("failed requests created clients: %s", g.RawBody)
	}
	if d := ts.admin(t, "DELETE", "/admin/clients/atol-1", ""); d.Status != 204 {
		t.Fatalf("delete: %d", d.Status)
	}
}

func TestAdminUsers(t *testing.T) {
	ts := newTestServer(t)
	r := ts.admin(t, "POST", "/admin/users", `{"username":"alice","password":"alice-password"}`)
	id := r.str("id")
	if r.Status != 201 || id == "" || strings.Contains(r.RawBody, "password") {
		t.Fatalf("create: %d %s", r.Status, r.RawBody)
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"username":"alice","password":"another-password"}`, 409},
		{`{"username":"bob","password":"short"}`, 400},
		{`{"username":"with space","password":"long-enough"}`, 400},
		{`{"username":"","password":"long-enough"}`, 400},
		{`{"username":"carol","password":"` + strings.Repeat("p", 73) + `"}`, 400},
	} {
		if r := ts.admin(t, "POST", "/admin/users", tc.body); r.Status != tc.status {
			t.Errorf("%s: %d, want %d", tc.body, r.Status, tc.status)
		}
	}
	if l := ts.admin(t, "GET", "/admin/users", ""); !strings.Contains(l.RawBody, `"alice"`) || strings.Contains(l.RawBody, "hash") {
		t.Fatalf("list: %s", l.RawBody)
	}
	// A client can name its owner.
	if c := ts.admin(t, "POST", "/admin/clients", `{"owner":"`+id+`"}`); c.Status != 201 || c.str("owner") != id {
		t.Fatalf("client with owner: %d %s", c.Status, c.RawBody)
	}
	if d := ts.admin(t, "DELETE", "/admin/users/"+id, ""); d.Status != 204 {
		t.Fatalf("delete: %d", d.Status)
	}
	if d := ts.admin(t, "DELETE", "/admin/users/"+id, ""); d.Status != 404 {
		t.Fatalf("second delete: %d", d.Status)
	}
}

func TestAdminUsersByNameAndPassword(t *testing.T) {
	ts := newTestServer(t)
	id := ts.user(t, "Alice", "alice-password")
	cid, sec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password"}})
	login := func(pw string) int {
		return ts.form(t, cid, sec, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {pw}}).Status
	}

	if r := ts.admin(t, "GET", "/admin/users/"+id, ""); r.Status != 200 || r.str("username") != "Alice" || strings.Contains(r.RawBody, "hash") {
		t.Fatalf("show by id: %d %s", r.Status, r.RawBody)
	}
	for _, tc := range []struct{ query, want string }{
		{"alice", id}, {"ALICE", id}, {"nobody", ""},
	} {
		r := ts.admin(t, "GET", "/admin/users?username="+tc.query, "")
		var got []map[string]any
		_ = json.Unmarshal([]byte(r.RawBody), &got)
		if r.Status != 200 || tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0]["id"] != tc.want) {
			t.Errorf("?username=%s: %d %s", tc.query, r.Status, r.RawBody)
		}
	}

	bad := []struct {
		name, path, body string
		status           int
	}{
		{"nothing to change", "/admin/users/" + id, `{}`, 400},
		{"short password", "/admin/users/" + id, `{"password":"short"}`, 400},
		{"unknown field", "/admin/users/" + id, `{"username":"mallory"}`, 400},
		{"unknown user", "/admin/users/nobody", `{"password":"long-enough-1"}`, 404},
	}
	for _, tc := range bad {
		if r := ts.admin(t, "PATCH", tc.path, tc.body); r.Status != tc.status || r.str("error") == "" {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.RawBody, tc.status)
		}
	}
	if s := login("alice-password"); s != 200 {
		t.Fatalf("failed changes altered the password: login %d", s)
	}

	if r := ts.admin(t, "PATCH", "/admin/users/"+id, `{"password":"new-alice-password"}`); r.Status != 200 || r.str("id") != id {
		t.Fatalf("change password: %d %s", r.Status, r.RawBody)
	}
	if s := login("new-alice-password"); s != 200 {
		t.Fatalf("new password: %d", s)
	}
	if s := login("alice-password"); s != 400 {
		t.Fatalf("old password after the change: %d, want 400", s)
	}
}

func TestAdminAuthFailuresAreSlowedAndCounted(t *testing.T) {
	ts := newTestServer(t)
	call := func(token string) reply {
		req, _ := http.NewRequest("GET", ts.AdminURL+"/admin/clients", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return send(t, req)
	}
	failures := func(reason string) int {
		return int(testutil.ToFloat64(ts.Metrics.AdminAuthFailures.WithLabelValues(reason)))
	}
	for i := 1; i <= 5; i++ {
		if r := call("wrong-token"); r.Status != 401 {
			t.Fatalf("wrong token %d: %d", i, r.Status)
		}
	}
	// A wrong token now waits; the right one still gets in at once (the owner is not the
	// guesser), and its success does not lift the address's delay.
	if r := call("wrong-token"); r.Status != 429 || r.str("error") != "rate_limited" || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("after 5 failures: %d %s Retry-After %q", r.Status, r.RawBody, r.Header.Get("Retry-After"))
	}
	for i := 0; i < 20; i++ {
		if r := call(testAdminToken); r.Status != 200 {
			t.Fatalf("the right token while the address is slowed down: %d %s", r.Status, r.RawBody)
		}
	}
	if r := call("wrong-token"); r.Status != 429 {
		t.Fatalf("a wrong token after the owner's successes: %d, want 429", r.Status)
	}
	if got, want := failures("invalid_token"), 5; got != want {
		t.Errorf("invalid_token failures = %d, want %d", got, want)
	}
	if got, want := failures("throttled"), 2; got != want {
		t.Errorf("throttled = %d, want %d", got, want)
	}
	// The delay doubles with each further failure.
	ts.Clock.Advance(time.Second)
	if r := call("wrong-token"); r.Status != 401 {
		t.Fatalf("after the delay: %d", r.Status)
	}
	if r := call("wrong-token"); r.Status != 429 || r.Header.Get("Retry-After") != "2" {
		t.Fatalf("after a 6th failure: %d Retry-After %q, want 429 and 2", r.Status, r.Header.Get("Retry-After"))
	}
	// The count lapses a window after the last failure.
	ts.Clock.Advance(16 * time.Minute) // past the 15-minute window
	if r := call("wrong-token"); r.Status != 401 {
		t.Fatalf("a failure after the window: %d, want 401", r.Status)
	}
}
