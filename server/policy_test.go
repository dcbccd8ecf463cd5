package server_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/registry"
)

// TestReusedAnswer: a reused token is answered with the lifetime it has left and its own
// expires_at, and a reused password answer carries no refresh_token. Which token is reused, and
// when, is the grants package's (TestReuse there).
func TestReusedAnswer(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{Reuse: ptr(true), GrantTypes: &[]string{"client_credentials", "password", "refresh_token"}})
	cc := url.Values{"grant_type": {"client_credentials"}}
	first := ts.form(t, id, sec, cc)
	ts.Clock.Advance(time.Hour)
	again := ts.form(t, id, sec, cc)
	if again.str("access_token") != first.str("access_token") {
		t.Fatal("a reuse client got a new token while the first had 2h left")
	}
	if got := again.Body["expires_in"]; got != float64(2*3600) {
		t.Fatalf("reused expires_in = %v, want the 7200 s left", got)
	}
	if again.Body["expires_at"] != first.Body["expires_at"] {
		t.Fatal("reused expires_at changed")
	}

	ts.user(t, "dave", "dave-password")
	login := url.Values{"grant_type": {"password"}, "username": {"dave"}, "password": {"dave-password"}}
	p1 := ts.form(t, id, sec, login)
	p2 := ts.form(t, id, sec, login)
	if p1.str("refresh_token") == "" || p2.str("refresh_token") != "" || p2.str("access_token") != p1.str("access_token") {
		t.Fatalf("password reuse: first %s, second %s", p1.RawBody, p2.RawBody)
	}
}
