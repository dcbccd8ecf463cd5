package server_test

import (
	"context"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
)

// countingStore counts the lookups of personal tokens a server makes.
type countingStore struct {
	storage.Storage
	lookups atomic.Int64
}

func (s *countingStore) GetPersonalToken(ctx context.Context, id string) (storage.PersonalToken, error) {
	s.lookups.Add(1)
	return s.Storage.GetPersonalToken(ctx, id)
}

func (s *countingStore) TokenState(ctx context.Context, q storage.TokenQuery) (storage.TokenState, error) {
	s.lookups.Add(1)
	return s.Storage.TokenState(ctx, q)
}

// newPAT creates a user with scopes and gives it a personal token through the admin API.
func newPAT(t *testing.T, ts *testServer, username, body string) (userID, id, tok string) {
	t.Helper()
	u := ts.admin(t, "POST", "/admin/users", `{"username":"`+username+`","password":"`+username+`-password","scopes":["orders:read","orders:write"]}`)
	if u.Status != 201 {
		t.Fatalf("user: %d %s", u.Status, u.RawBody)
	}
	r := ts.admin(t, "POST", "/admin/users/"+u.str("id")+"/tokens", body)
	if r.Status != 201 || !strings.HasPrefix(r.str("token"), "tsp_") {
		t.Fatalf("create personal token: %d %s", r.Status, r.RawBody)
	}
	return u.str("id"), r.str("id"), r.str("token")
}

func exchangeForm(tok string, extra ...string) url.Values {
	v := url.Values{"grant_type": {protocol.GrantTokenExchange}, "subject_token": {tok},
		"subject_token_type": {protocol.TokenTypeURIAccess}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

func TestPersonalTokensAdminAPI(t *testing.T) {
	ts := newTestServer(t)
	userID, id, tok := newPAT(t, ts, "lena", `{"name":"CI deploys","scopes":["orders:read"],"expires_in":"90d"}`)
	l := ts.admin(t, "GET", "/admin/users/"+userID+"/tokens", "")
	if l.Status != 200 || strings.Contains(l.RawBody, tok) || strings.Contains(l.RawBody, `"token"`) ||
		!strings.Contains(l.RawBody, `"name":"CI deploys"`) || !strings.Contains(l.RawBody, id) || !strings.Contains(l.RawBody, "expires_at") {
		t.Fatalf("list: %d %s", l.Status, l.RawBody)
	}
	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"scope the user lacks", "/admin/users/" + userID + "/tokens", `{"name":"x","scopes":["admin"]}`, 400},
		{"no name", "/admin/users/" + userID + "/tokens", `{"scopes":[]}`, 400},
		{"control character in name", "/admin/users/" + userID + "/tokens", `{"name":"a\u0007"}`, 400},
		{"zero lifetime", "/admin/users/" + userID + "/tokens", `{"name":"x","expires_in":0}`, 400},
		{"bad lifetime", "/admin/users/" + userID + "/tokens", `{"name":"x","expires_in":"soon"}`, 400},
		{"overflowing lifetime", "/admin/users/" + userID + "/tokens", `{"name":"x","expires_in":"213504d"}`, 400},
		{"unknown user", "/admin/users/nobody/tokens", `{"name":"x"}`, 404},
	} {
		if r := ts.admin(t, "POST", tc.path, tc.body); r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.RawBody, tc.status)
		}
	}
	// expires_in as a number of seconds, as OAuth says it.
	if r := ts.admin(t, "POST", "/admin/users/"+userID+"/tokens", `{"name":"short","expires_in":3600}`); r.Status != 201 {
		t.Fatalf("expires_in in seconds: %d %s", r.Status, r.RawBody)
	}
	if r := ts.admin(t, "DELETE", "/admin/users/other/tokens/"+id, ""); r.Status != 404 {
		t.Fatalf("deleting through another user: %d", r.Status)
	}
	if r := ts.admin(t, "DELETE", "/admin/users/"+userID+"/tokens/"+id, ""); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.RawBody)
	}
	if r := ts.admin(t, "DELETE", "/admin/users/"+userID+"/tokens/"+id, ""); r.Status != 404 {
		t.Fatalf("second delete: %d", r.Status)
	}
}

func TestPersonalTokensWithIntrospectionAndRevocation(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			counting := &countingStore{Storage: open(t)}
			ts := newTestServer(t, withStore(counting))
			userID, id, tok := newPAT(t, ts, "lena", `{"name":"CI deploys","scopes":["orders:read"]}`)
			// Any authenticated client may ask about a personal token: it belongs to none.
			cid, csec := ts.client(t, registry.ClientInput{})
			r := ts.introspect(t, cid, csec, tok)
			want := map[string]any{"active": true, "token_type": "personal_token", "sub": userID, "username": "lena",
				"scope": "orders:read", "jti": id}
			for k, v := range want {
				if r.Body[k] != v {
					t.Errorf("%s = %v, want %v (%s)", k, r.Body[k], v, r.RawBody)
				}
			}

			// One changed character is refused by the checksum, without a store lookup.
			before := counting.lookups.Load()
			typo := []byte(tok)
			typo[20] ^= 'a' ^ 'b'
			if strings.IndexByte("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", typo[20]) < 0 {
				typo[20] = 'Q'
			}
			if r := ts.introspect(t, cid, csec, string(typo)); r.Body["active"] != false {
				t.Fatalf("a personal token with a typo: %s", r.RawBody)
			}
			if got := counting.lookups.Load() - before; got != 0 {
				t.Fatalf("a typo cost %d store lookups, want 0", got)
			}

			// Last use is written in batches, not per use.
			ts.flushUsage(t)
			l := ts.admin(t, "GET", "/admin/users/"+userID+"/tokens", "")
			if !strings.Contains(l.RawBody, "last_used_at") {
				t.Fatalf("last use not shown after a flush: %s", l.RawBody)
			}

			// Any client may revoke it (RFC 7009); it is gone for everyone.
			if r := ts.revoke(t, cid, csec, tok); r.Status != 200 {
				t.Fatalf("revoke: %d %s", r.Status, r.RawBody)
			}
			if r := ts.introspect(t, cid, csec, tok); r.Body["active"] != false {
				t.Fatalf("after revocation: %s", r.RawBody)
			}
			if l := ts.admin(t, "GET", "/admin/users/"+userID+"/tokens", ""); strings.Contains(l.RawBody, id) {
				t.Fatalf("revoked token still listed: %s", l.RawBody)
			}
		})
	}
}

// TestTokenExchange covers RFC 8693 for personal tokens on every backend.
func TestTokenExchange(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withStore(open(t)))
			userID, patID, tok := newPAT(t, ts, "lena", `{"name":"CI","scopes":["orders:read","orders:write"]}`)
			id, sec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{protocol.GrantTokenExchange}, Scopes: &[]string{"orders:read", "orders:write"}, DailyLimit: ptr(5)})

			r := ts.form(t, id, sec, exchangeForm(tok))
			if r.Status != 200 || r.str("issued_token_type") != protocol.TokenTypeURIAccess || r.str("token_type") != "Bearer" ||
				r.str("refresh_token") != "" || r.str("scope") != "orders:read orders:write" || r.Body["expires_in"] != float64(15*60) {
				t.Fatalf("exchange: %d %s", r.Status, r.RawBody)
			}
			c := verify(t, ts, r.str("access_token"))
			if c.Subject != userID || c.ClientID != id {
				t.Fatalf("exchanged token sub=%s client_id=%s, want the user %s and the client %s", c.Subject, c.ClientID, userID, id)
			}
			if in := ts.introspect(t, id, sec, r.str("access_token")); in.Body["active"] != true || in.Body["username"] != "lena" {
				t.Fatalf("exchanged token introspection: %s", in.RawBody)
			}
			narrowed := ts.form(t, id, sec, exchangeForm(tok, "scope", "orders:read", "subject_token_type", protocol.TokenTypeURIPersonal,
				"requested_token_type", protocol.TokenTypeURIAccess))
			if narrowed.Status != 200 || narrowed.str("scope") != "orders:read" {
				t.Fatalf("narrowed exchange: %d %s", narrowed.Status, narrowed.RawBody)
			}

			accessTok := ts.form(t, id, sec, exchangeForm(tok)).str("access_token")
			other, otherSec := ts.client(t, registry.ClientInput{})
			cases := []struct {
				name   string
				id     string
				sec    string
				form   url.Values
				status int
				code   string
			}{
				{"missing subject_token", id, sec, url.Values{"grant_type": {protocol.GrantTokenExchange}, "subject_token_type": {protocol.TokenTypeURIAccess}}, 400, "invalid_request"},
				{"missing subject_token_type", id, sec, url.Values{"grant_type": {protocol.GrantTokenExchange}, "subject_token": {tok}}, 400, "invalid_request"},
				{"unsupported subject_token_type", id, sec, exchangeForm(tok, "subject_token_type", "urn:ietf:params:oauth:token-type:saml2"), 400, "invalid_request"},
				{"an access token as subject", id, sec, exchangeForm(accessTok), 400, "invalid_request"},
				{"a typo", id, sec, exchangeForm(typo(tok)), 400, "invalid_request"},
				{"garbage subject", id, sec, exchangeForm("garbage"), 400, "invalid_request"},
				{"actor_token", id, sec, exchangeForm(tok, "actor_token", tok, "actor_token_type", protocol.TokenTypeURIAccess), 400, "invalid_request"},
				{"requested refresh token", id, sec, exchangeForm(tok, "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), 400, "invalid_request"},
				{"scope beyond the token's", id, sec, exchangeForm(tok, "scope", "orders:delete"), 400, "invalid_scope"},
				{"audience not allowed", id, sec, exchangeForm(tok, "audience", "https://elsewhere.example"), 400, "invalid_target"},
				{"resource not allowed", id, sec, exchangeForm(tok, "resource", "https://elsewhere.example"), 400, "invalid_target"},
				{"client without the grant", other, otherSec, exchangeForm(tok), 400, "unauthorized_client"},
				{"wrong secret", id, "wrong", exchangeForm(tok), 401, "invalid_client"},
			}
			for _, tc := range cases {
				r := ts.form(t, tc.id, tc.sec, tc.form)
				if r.Status != tc.status || r.str("error") != tc.code || r.str("error_description") == "" {
					t.Errorf("%s: %d %s, want %d %s", tc.name, r.Status, r.RawBody, tc.status, tc.code)
				}
			}
			if ok := ts.form(t, id, sec, exchangeForm(tok, "resource", "https://api.example.com")); ok.Status != 200 {
				t.Errorf("resource that is allowed: %d %s", ok.Status, ok.RawBody)
			}

			// The client's daily limit counts exchanges (5 set; 4 so far, refusals not counted).
			if r := ts.form(t, id, sec, exchangeForm(tok)); r.Status != 200 {
				t.Errorf("5th exchange with a daily limit of 5: %d %s", r.Status, r.RawBody)
			}
			if r := ts.form(t, id, sec, exchangeForm(tok)); r.Status != 429 || r.str("error") != "rate_limited" {
				t.Errorf("6th exchange with a daily limit of 5: %d %s", r.Status, r.RawBody)
			}

			// Deleting the personal token ends what was exchanged for it.
			if d := ts.admin(t, "DELETE", "/admin/users/"+userID+"/tokens/"+patID, ""); d.Status != 204 {
				t.Fatal(d.RawBody)
			}
			if in := ts.introspect(t, id, sec, r.str("access_token")); in.Body["active"] != false {
				t.Fatalf("exchanged token after its personal token was deleted: %s", in.RawBody)
			}
			if r := ts.form(t, id, sec, exchangeForm(tok)); r.Status != 400 || r.str("error") != "invalid_request" {
				t.Fatalf("exchange of a deleted personal token: %d %s", r.Status, r.RawBody)
			}
		})
	}
}

// typo changes a token's last character to another one (a fixed "0" was no change for one
// token in 62).
func typo(tok string) string {
	if strings.HasSuffix(tok, "0") {
		return tok[:len(tok)-1] + "1"
	}
	return tok[:len(tok)-1] + "0"
}
