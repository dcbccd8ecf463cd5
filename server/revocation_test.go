package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/registry"
)

// tokenSet is what one client holds after a password login and a client_credentials request.
type tokenSet struct {
	id, sec       string
	userID        string
	access        string // client_credentials
	userAccess    string // password grant
	refresh       string
	otherID       string // another client, not a resource server
	otherSec      string
	otherAccess   string
	resourceID    string // a client marked as resource server
	resourceSec   string
	expiredAccess string
}

func issueTokenSet(t *testing.T, ts *testServer) tokenSet {
	t.Helper()
	var s tokenSet
	s.id, s.sec = ts.client(t, registry.ClientInput{Scopes: &[]string{"orders:read"},
		GrantTypes: &[]string{"client_credentials", "password", "refresh_token"}, AccessTokenTTL: ptr("1h")})
	s.userID = ts.user(t, "alice", "alice-password")
	cc := url.Values{"grant_type": {"client_credentials"}}
	s.access = mustToken(t, ts.form(t, s.id, s.sec, cc)).str("access_token")
	l := mustToken(t, ts.form(t, s.id, s.sec, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"}}))
	s.userAccess, s.refresh = l.str("access_token"), l.str("refresh_token")
	s.otherID, s.otherSec = ts.client(t, registry.ClientInput{})
	s.otherAccess = mustToken(t, ts.form(t, s.otherID, s.otherSec, cc)).str("access_token")
	s.resourceID, s.resourceSec = ts.client(t, registry.ClientInput{ResourceServer: ptr(true)})
	// A token that expired: minted an hour and a half ago with a 1 h lifetime.
	ts.Clock.Advance(-90 * time.Minute)
	s.expiredAccess = mustToken(t, ts.form(t, s.id, s.sec, cc)).str("access_token")
	ts.Clock.Advance(90 * time.Minute)
	return s
}

func mustToken(t *testing.T, r reply) reply {
	t.Helper()
	if r.Status != 200 || r.str("access_token") == "" {
		t.Fatalf("token request: %d %s", r.Status, r.RawBody)
	}
	return r
}

// forged returns tokens that look like ours but must never be accepted: signed by a stranger's
// key under our kid, alg none, HS256 keyed with our public key, and a valid token with one
// character of its signature changed.
func forged(t *testing.T, ts *testServer, real string) map[string]string {
	t.Helper()
	var c jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(real, &c); err != nil {
		t.Fatal(err)
	}
	kid := ts.Keys.ActiveID()
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	sign := func(m jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(m, c)
		tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pub, _, _ := ts.Keys.PublicKey(kid)
	pubDER, _ := json.Marshal(pub)
	sig := real[strings.LastIndexByte(real, '.')+1:]
	flipped := []byte(sig)
	flipped[10] ^= 1
	if flipped[10] == sig[10] || !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", rune(flipped[10])) {
		flipped[10] = 'A' + (sig[10]-'A'+1)%26
	}
	return map[string]string{
		"stranger's key":     sign(jwt.SigningMethodRS256, stranger),
		"alg none":           sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType),
		"HS256 with our key": sign(jwt.SigningMethodHS256, pubDER),
		"RS512":              sign(jwt.SigningMethodRS512, stranger),
		"changed signature":  real[:strings.LastIndexByte(real, '.')+1] + string(flipped),
		"garbage":            "not-a-token",
		"three dots":         "a.b.c",
		"empty segments":     "..",
		"unknown refresh":    "tsr_AAAAAAAAAAAA." + base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		"malformed refresh":  "tsr_x",
	}
}

func TestIntrospection(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withStore(open(t)))
			s := issueTokenSet(t, ts)

			// A live access token of the client itself: every RFC 7662 §2.2 member.
			r := ts.introspect(t, s.id, s.sec, s.access)
			want := map[string]any{"active": true, "client_id": s.id, "sub": s.id, "scope": "orders:read",
				"token_type": "Bearer", "iss": ts.URL, "aud": "https://api.example.com"}
			for k, v := range want {
				if r.Body[k] != v {
					t.Errorf("introspect access %s = %v, want %v (%s)", k, r.Body[k], v, r.RawBody)
				}
			}
			if r.Status != 200 || r.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Errorf("introspect answer: %d %v", r.Status, r.Header)
			}
			c := verify(t, ts, s.access)
			if r.Body["jti"] != c.ID || r.Body["exp"] != float64(c.Expiry.Time().Unix()) || r.Body["iat"] != float64(c.IssuedAt.Time().Unix()) {
				t.Errorf("jti/exp/iat differ from the token: %s", r.RawBody)
			}
			if _, ok := r.Body["username"]; ok {
				t.Errorf("a client's own token has a username: %s", r.RawBody)
			}

			// A user's access token and refresh token name the user.
			r = ts.introspect(t, s.id, s.sec, s.userAccess)
			if r.Body["active"] != true || r.Body["username"] != "alice" || r.Body["sub"] != s.userID {
				t.Errorf("user access token: %s", r.RawBody)
			}
			r = ts.introspect(t, s.id, s.sec, s.refresh)
			if r.Body["active"] != true || r.Body["token_type"] != "refresh_token" || r.Body["username"] != "alice" ||
				r.Body["client_id"] != s.id || r.Body["scope"] != "orders:read" || r.str("jti") == "" {
				t.Errorf("refresh token: %s", r.RawBody)
			}

			// Inactive, and nothing else said, for everything that is not a live token of the
			// caller's.
			inactive := map[string][3]string{
				"another client's token":  {s.otherID, s.otherSec, s.access},
				"token of another client": {s.id, s.sec, s.otherAccess},
				"expired":                 {s.id, s.sec, s.expiredAccess},
			}
			for name, tok := range forged(t, ts, s.access) {
				inactive[name] = [3]string{s.id, s.sec, tok}
			}
			for name, tc := range inactive {
				r := ts.introspect(t, tc[0], tc[1], tc[2])
				if r.Status != 200 || strings.TrimSpace(r.RawBody) != `{"active":false}` {
					t.Errorf("%s: %d %s, want {\"active\":false}", name, r.Status, r.RawBody)
				}
			}

			// A resource server sees every client's tokens.
			if r := ts.introspect(t, s.resourceID, s.resourceSec, s.access); r.Body["active"] != true || r.Body["client_id"] != s.id {
				t.Errorf("resource server: %s", r.RawBody)
			}

			// Request errors.
			if r := ts.call(t, "/oauth2/introspect", s.id, s.sec, url.Values{}); r.Status != 400 || r.str("error") != "invalid_request" {
				t.Errorf("missing token: %d %s", r.Status, r.RawBody)
			}
			if r := ts.call(t, "/oauth2/introspect", s.id, "wrong", url.Values{"token": {s.access}}); r.Status != 401 ||
				r.str("error") != "invalid_client" || r.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("wrong secret: %d %s", r.Status, r.RawBody)
			}
			noAuth := ts.postTo(t, "/oauth2/introspect", "token="+s.access)
			if noAuth.Status != 401 {
				t.Errorf("no client authentication: %d %s", noAuth.Status, noAuth.RawBody)
			}
		})
	}
}

func TestRevocation(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withStore(open(t)))
			s := issueTokenSet(t, ts)
			active := func(tok string) bool {
				t.Helper()
				return ts.introspect(t, s.resourceID, s.resourceSec, tok).Body["active"] == true
			}
			ok := func(what string, r reply) {
				t.Helper()
				if r.Status != 200 || r.RawBody != "{}" || r.Header.Get("Cache-Control") != "no-store" {
					t.Fatalf("%s: %d %q, want 200 with an empty JSON object", what, r.Status, r.RawBody)
				}
			}

			// Another client's live token: answered as an unknown one (no oracle), and it stays valid.
			ok("another client's token", ts.revoke(t, s.otherID, s.otherSec, s.access))
			if !active(s.access) {
				t.Fatal("revoking another client's token ended it")
			}

			// Unknown, malformed, forged and expired tokens: 200, nothing changes.
			for name, tok := range forged(t, ts, s.access) {
				ok(name, ts.revoke(t, s.id, s.sec, tok))
			}
			ok("expired", ts.revoke(t, s.id, s.sec, s.expiredAccess))
			if !active(s.access) || !active(s.refresh) {
				t.Fatal("a refused or no-op revocation changed a live token")
			}

			// The client's own access token, with a wrong hint: revoked, and again is fine.
			ok("own access token", ts.call(t, "/oauth2/revoke", s.id, s.sec, url.Values{"token": {s.access}, "token_type_hint": {"refresh_token"}}))
			ok("again", ts.revoke(t, s.id, s.sec, s.access))
			if active(s.access) {
				t.Fatal("a revoked access token is active")
			}
			// The user's access token is revoked alone: its login goes on.
			ok("user access token", ts.call(t, "/oauth2/revoke", s.id, s.sec, url.Values{"token": {s.userAccess}, "token_type_hint": {"nonsense"}}))
			if active(s.userAccess) || !active(s.refresh) {
				t.Fatal("revoking an access token must not revoke its refresh token")
			}

			// The refresh token: the whole login ends.
			next := ts.form(t, s.id, s.sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.refresh}})
			if next.Status != 200 {
				t.Fatalf("refresh: %d %s", next.Status, next.RawBody)
			}
			// Revoking the rotated (used) token still ends the family.
			ok("used refresh token", ts.revoke(t, s.id, s.sec, s.refresh))
			if active(next.str("access_token")) || active(next.str("refresh_token")) {
				t.Fatal("the family's newest tokens survived revoking its refresh token")
			}
			if r := ts.form(t, s.id, s.sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.str("refresh_token")}}); r.Status != 400 || r.str("error") != "invalid_grant" {
				t.Fatalf("refresh after revocation: %d %s", r.Status, r.RawBody)
			}

			// Request errors.
			if r := ts.call(t, "/oauth2/revoke", s.id, s.sec, url.Values{}); r.Status != 400 || r.str("error") != "invalid_request" {
				t.Errorf("missing token: %d %s", r.Status, r.RawBody)
			}
			if r := ts.call(t, "/oauth2/revoke", s.id, "wrong", url.Values{"token": {s.otherAccess}}); r.Status != 401 || r.str("error") != "invalid_client" {
				t.Errorf("wrong secret: %d %s", r.Status, r.RawBody)
			}
			if r := ts.postTo(t, "/oauth2/revoke", "token=x"); r.Status != 401 || r.str("error") != "invalid_client" {
				t.Errorf("no client authentication: %d %s", r.Status, r.RawBody)
			}
		})
	}
}

// TestDeletingEndsAccess: a deleted user's and a deleted client's tokens stop working at once
// on the replica that deleted them, and a client created again under the same id owns none of
// its predecessor's tokens.
func TestDeletingEndsAccess(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			// A long client cache: only the change notice can make the deletion visible.
			ts := newTestServer(t, withStore(open(t)), withClientCache(time.Hour))
			s := issueTokenSet(t, ts)
			refresh := func(rt string) reply {
				return ts.form(t, s.id, s.sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			}

			if r := ts.admin(t, "DELETE", "/admin/users/"+s.userID, ""); r.Status != 204 {
				t.Fatal(r.RawBody)
			}
			if r := ts.introspect(t, s.id, s.sec, s.userAccess); r.Body["active"] != false {
				t.Errorf("access token of a deleted user: %s", r.RawBody)
			}
			if r := ts.introspect(t, s.id, s.sec, s.refresh); r.Body["active"] != false {
				t.Errorf("refresh token of a deleted user: %s", r.RawBody)
			}
			if r := refresh(s.refresh); r.Status != 400 || r.str("error") != "invalid_grant" {
				t.Fatalf("refresh of a deleted user: %d %s", r.Status, r.RawBody)
			}
			// A new user with the same name is someone else.
			ts.user(t, "alice", "alice-password2")
			if r := refresh(s.refresh); r.Status != 400 {
				t.Fatalf("refresh after the username was taken again: %d %s", r.Status, r.RawBody)
			}

			// A second login of a new user, then the client goes. iat has whole seconds, so a
			// token of the very second its client is deleted in counts as the next client's; the
			// deletion here happens a second after the tokens.
			l := mustToken(t, ts.form(t, s.id, s.sec, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password2"}}))
			ts.Clock.Advance(time.Second)
			if r := ts.admin(t, "DELETE", "/admin/clients/"+url.PathEscape(s.id), ""); r.Status != 204 {
				t.Fatal(r.RawBody)
			}
			if r := ts.form(t, s.id, s.sec, url.Values{"grant_type": {"client_credentials"}}); r.Status != 401 {
				t.Fatalf("the very next request of a deleted client: %d %s", r.Status, r.RawBody)
			}
			for _, tok := range []string{s.access, l.str("access_token"), l.str("refresh_token")} {
				if r := ts.introspect(t, s.resourceID, s.resourceSec, tok); r.Body["active"] != false {
					t.Errorf("token of a deleted client: %s", r.RawBody)
				}
			}

			// Created again under the same id: the old tokens are not its own.
			v, err := ts.Registry.CreateClient(t.Context(), registry.ClientInput{ClientID: &s.id,
				GrantTypes: &[]string{"client_credentials", "password", "refresh_token"}, Scopes: &[]string{"orders:read"}})
			if err != nil {
				t.Fatal(err)
			}
			if r := ts.form(t, s.id, v.ClientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.str("refresh_token")}}); r.Status != 400 || r.str("error") != "invalid_grant" {
				t.Fatalf("the new client used its predecessor's refresh token: %d %s", r.Status, r.RawBody)
			}
			for _, tok := range []string{s.access, l.str("access_token")} {
				if r := ts.introspect(t, s.id, v.ClientSecret, tok); r.Body["active"] != false {
					t.Errorf("the new client owns its predecessor's token: %s", r.RawBody)
				}
			}
			fresh := mustToken(t, ts.form(t, s.id, v.ClientSecret, url.Values{"grant_type": {"client_credentials"}}))
			if r := ts.introspect(t, s.id, v.ClientSecret, fresh.str("access_token")); r.Body["active"] != true {
				t.Errorf("the new client's own token: %s", r.RawBody)
			}
		})
	}
}

// TestChangesReachTheNextRequest: on the replica that made the change, the very next request
// sees it, even with a long client cache.
func TestChangesReachTheNextRequest(t *testing.T) {
	ts := newTestServer(t, withClientCache(time.Hour))
	cc := url.Values{"grant_type": {"client_credentials"}}
	id, sec := ts.client(t, registry.ClientInput{Scopes: &[]string{"a", "b"}})
	mustToken(t, ts.form(t, id, sec, cc))
	// Rotation without grace: the old secret fails at once.
	rot := ts.admin(t, "POST", "/admin/clients/"+id+"/rotate-secret", "")
	if r := ts.form(t, id, sec, cc); r.Status != 401 {
		t.Fatalf("old secret right after a rotation without grace: %d", r.Status)
	}
	sec = rot.str("client_secret")
	mustToken(t, ts.form(t, id, sec, cc))
	// A change of scopes applies to the next token.
	ts.admin(t, "PATCH", "/admin/clients/"+id, `{"scopes":["a"]}`)
	if r := ts.form(t, id, sec, cc); r.str("scope") != "a" {
		t.Fatalf("scope right after PATCH: %s", r.RawBody)
	}
	// A grant taken away is refused at once.
	ts.admin(t, "PATCH", "/admin/clients/"+id, `{"grant_types":["password"]}`)
	if r := ts.form(t, id, sec, cc); r.Status != 400 || r.str("error") != "unauthorized_client" {
		t.Fatalf("grant right after it was removed: %d %s", r.Status, r.RawBody)
	}
}

// TestPasswordChangeEndsLogins: a new password ends every login made with the old one, on
// every backend; a login with the new one works; personal tokens stay.
func TestPasswordChangeEndsLogins(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withStore(open(t)))
			userID, _, pat := newPAT(t, ts, "mira", `{"name":"ci","scopes":["orders:read"]}`)
			id, sec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password", "refresh_token"}})
			login := func(pw string) reply {
				return ts.form(t, id, sec, url.Values{"grant_type": {"password"}, "username": {"mira"}, "password": {pw}})
			}
			old := mustToken(t, login("mira-password"))
			ts.Clock.Advance(time.Second)
			if r := ts.admin(t, "PATCH", "/admin/users/"+userID, `{"password":"mira-new-password"}`); r.Status != 200 {
				t.Fatalf("PATCH password: %d %s", r.Status, r.RawBody)
			}
			ts.Clock.Advance(time.Second)
			if r := ts.form(t, id, sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old.str("refresh_token")}}); r.Status != 400 || r.str("error") != "invalid_grant" {
				t.Fatalf("refresh of a login made with the old password: %d %s", r.Status, r.RawBody)
			}
			if r := ts.introspect(t, id, sec, old.str("access_token")); r.Body["active"] != false {
				t.Fatalf("access token of the old login: %s", r.RawBody)
			}
			if r := login("mira-password"); r.Status != 400 {
				t.Fatalf("the old password: %d", r.Status)
			}
			fresh := mustToken(t, login("mira-new-password"))
			if r := ts.introspect(t, id, sec, fresh.str("access_token")); r.Body["active"] != true {
				t.Fatalf("a login with the new password: %s", r.RawBody)
			}
			if r := ts.introspect(t, id, sec, pat); r.Body["active"] != true {
				t.Fatalf("a personal token after the password change: %s", r.RawBody)
			}
		})
	}
}
