package grants

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

func TestPasswordRefusals(t *testing.T) {
	t.Parallel()
	// Room for every wrong password here before the backoff starts.
	e := newEnv(t, func(p *Policy) { p.FailedLoginLimit = 100 })
	id, sec := e.client(t, storage.Client{Scopes: []string{"profile"}, GrantTypes: []string{protocol.GrantPassword}})
	e.user(t, "alice", "alice-password")
	// bcrypt reads 72 bytes: a longer password that starts with the right 72 is still wrong.
	long := strings.Repeat("p", 72)
	e.user(t, "long", long)
	pw := func(user, pass string, kv ...string) *Request {
		return req(id, sec, protocol.GrantPassword, append([]string{"username", user, "password", pass}, kv...)...)
	}
	tests := []struct {
		name string
		r    *Request
		code string
	}{
		{"missing username", req(id, sec, protocol.GrantPassword, "password", "alice-password"), protocol.InvalidRequest},
		{"missing password", req(id, sec, protocol.GrantPassword, "username", "alice"), protocol.InvalidRequest},
		{"wrong password", pw("alice", "alice-passwore"), protocol.InvalidGrant},
		{"unknown user", pw("nobody", "alice-password"), protocol.InvalidGrant},
		{"the username's case is not the password's", pw("alice", "ALICE-PASSWORD"), protocol.InvalidGrant},
		{"past 72 bytes", pw("long", long+"x"), protocol.InvalidGrant},
		{"scope not allowed, before the password is checked", pw("alice", "wrong", "scope", "admin"), protocol.InvalidScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.refused(t, tc.r, tc.code)
		})
	}
	// The same answer for an unknown user and a wrong password: nothing tells which exist.
	if a, b := e.refused(t, pw("alice", "nope-nope"), protocol.InvalidGrant), e.refused(t, pw("nobody", "nope-nope"), protocol.InvalidGrant); a.Description != b.Description {
		t.Errorf("wrong password %q, unknown user %q: the answers differ", a.Description, b.Description)
	}
	// Usernames are found case-insensitively; exactly 72 bytes is a password.
	e.token(t, pw("ALICE", "alice-password"))
	e.token(t, pw("long", long))
}

// TestPasswordLogin: sub is the user; the lifetimes are the client's or the policy's; a refresh
// token comes only with the refresh_token grant, and names the login's family, as the access
// token's jti does.
func TestPasswordLogin(t *testing.T) {
	t.Parallel()
	both := []string{protocol.GrantPassword, protocol.GrantRefreshToken}
	tests := []struct {
		name       string
		client     storage.Client
		ttl        time.Duration
		refreshTTL time.Duration
	}{
		{"policy lifetimes", storage.Client{GrantTypes: both}, 24 * time.Hour, 14 * 24 * time.Hour},
		{"client lifetimes", storage.Client{GrantTypes: both, AccessTokenTTL: 90 * time.Second, RefreshTokenTTL: 2 * time.Minute}, 90 * time.Second, 2 * time.Minute},
		{"no refresh_token grant", storage.Client{GrantTypes: []string{protocol.GrantPassword}}, 24 * time.Hour, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			id, sec := e.client(t, tc.client)
			uid := e.user(t, "dave", "dave-password")
			tok := e.token(t, loginReq(id, sec, "dave"))
			now := e.clock.Now()
			c := e.claimsOf(t, tok.AccessToken)
			if c.Subject != uid || c.ClientID != id {
				t.Errorf("sub %q client_id %q, want the user %q and the client %q", c.Subject, c.ClientID, uid, id)
			}
			if got := tok.ExpiresIn(now); got != int64(tc.ttl/time.Second) {
				t.Errorf("expires_in %d, want %v", got, tc.ttl)
			}
			fam, hasFamily := FamilyOf(c.ID)
			if tc.refreshTTL == 0 {
				if tok.RefreshToken != "" || hasFamily {
					t.Errorf("refresh token %q, family %q; want none", tok.RefreshToken, fam)
				}
				return
			}
			if got := tok.RefreshExpiresIn(now); got != int64(tc.refreshTTL/time.Second) {
				t.Errorf("refresh_token_expires_in %d, want %v", got, tc.refreshTTL)
			}
			rfam, hash, ok := parseRefreshToken(tok.RefreshToken)
			if !ok || !hasFamily || rfam != fam {
				t.Fatalf("refresh token family %q, jti family %q (%v)", rfam, fam, hasFamily)
			}
			rec, err := e.store.GetRefreshToken(context.Background(), fam, hash)
			if err != nil || rec.ClientID != id || rec.Subject != uid || rec.AccessTTL != tc.ttl || !rec.ExpiresAt.Equal(now.Add(tc.refreshTTL)) {
				t.Errorf("stored refresh token %+v, %v", rec, err)
			}
		})
	}
}

// TestFailedLoginBackoff: after FailedLoginLimit wrong passwords even the right one waits, and
// the console's sign-in (CheckPassword) shares the count.
func TestFailedLoginBackoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantPassword}})
	e.user(t, "carol", "carol-password")
	ctx := context.Background()
	wrong := req(id, sec, protocol.GrantPassword, "username", "carol", "password", "wrong-wrong")
	e.refused(t, wrong, protocol.InvalidGrant)
	e.refused(t, wrong, protocol.InvalidGrant)
	if _, err := e.svc.CheckPassword(ctx, "carol", "wrong-wrong", "192.0.2.1"); protocol.As(err).Code != protocol.InvalidGrant {
		t.Fatalf("console sign-in with a wrong password: %v", err)
	}
	pe := e.refused(t, loginReq(id, sec, "carol"), protocol.RateLimited)
	if pe.RetryAfter <= 0 {
		t.Errorf("Retry-After %d, want a wait", pe.RetryAfter)
	}
	if _, err := e.svc.CheckPassword(ctx, "carol", "carol-password", "192.0.2.1"); protocol.As(err).Code != protocol.RateLimited {
		t.Errorf("console sign-in during the backoff: %v, want rate_limited", err)
	}
	// Another address is not slowed down by these failures.
	other := loginReq(id, sec, "carol")
	other.Remote = "198.51.100.7"
	e.token(t, other)
	e.clock.Advance(time.Duration(pe.RetryAfter) * time.Second)
	e.token(t, loginReq(id, sec, "carol"))
	u, err := e.svc.CheckPassword(ctx, "carol", "carol-password", "192.0.2.1")
	if err != nil || u.Username != "carol" {
		t.Fatalf("console sign-in after the wait: %v, %v", u, err)
	}
}

// TestRefusedUsernameAudit: a refused password grant or console sign-in names its username in
// the audit trail only when it is an existing user's; any other (a password typed into the
// username field) appears only as a keyed digest, the same for every attempt with that name
// (any case), on every Service that shares the key, and different under another key.
func TestRefusedUsernameAudit(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	e := newEnv(t, nil, WithAuditKey(key))
	twin := newEnv(t, nil, WithAuditKey(key))
	stranger := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantPassword}})
	e.user(t, "dora", "dora-password")
	const typo = "S3cret-Passw0rd!"
	// Every attempt comes from an address of its own, so the failed-login backoff, which
	// would answer rate_limited, stays out of the way.
	addr := 0
	remote := func() string { addr++; return fmt.Sprintf("192.0.2.%d", addr) }
	type attempt func(t *testing.T, env *testEnv, name string)
	console := func(t *testing.T, env *testEnv, name string) {
		if _, err := env.svc.CheckPassword(context.Background(), name, "wrong-password", remote()); protocol.As(err).Code != protocol.InvalidGrant {
			t.Fatalf("%s: %v, want invalid_grant", name, err)
		}
	}
	token := func(t *testing.T, env *testEnv, name string) {
		r := req(id, sec, protocol.GrantPassword, "username", name, "password", "wrong-password")
		r.Remote = remote()
		env.refused(t, r, protocol.InvalidGrant)
	}
	last := func(t *testing.T, env *testEnv) audit.Event {
		ev, ok := env.audit.find(audit.TokenRefused, func(audit.Event) bool { return true })
		if !ok {
			t.Fatal("no refusal in the trail")
		}
		return ev
	}
	for _, tc := range []struct {
		endpoint string
		try      attempt
	}{{EndpointConsole, console}, {EndpointToken, token}} {
		t.Run(tc.endpoint, func(t *testing.T) {
			for _, c := range []struct {
				name, username string
				wantName       string
			}{
				{"unknown username", typo, ""},
				{"existing user, wrong password", "dora", "dora"},
				{"existing user in another case", "DORA", "DORA"},
			} {
				tc.try(t, e, c.username)
				ev := last(t, e)
				if ev.Endpoint != tc.endpoint || ev.Username != c.wantName || len(ev.UsernameDigest) != usernameDigestLen {
					t.Errorf("%s: endpoint %q username %q digest %q, want %q %q and a digest", c.name, ev.Endpoint, ev.Username, ev.UsernameDigest, tc.endpoint, c.wantName)
				}
				if b, _ := json.Marshal(ev); strings.Contains(string(b), typo) {
					t.Errorf("%s: the trail holds the typed text: %s", c.name, b)
				}
			}
			tc.try(t, e, typo)
			first := last(t, e).UsernameDigest
			tc.try(t, e, strings.ToLower(typo))
			if got := last(t, e).UsernameDigest; got != first {
				t.Errorf("the same name in another case: digest %s, want %s", got, first)
			}
			tc.try(t, e, "dora")
			if got := last(t, e).UsernameDigest; got == first {
				t.Errorf("another name has the same digest %s", got)
			}
		})
	}
	// The digest depends on the key alone: another replica with the same key writes the same.
	console(t, e, typo)
	console(t, twin, typo)
	console(t, stranger, typo)
	if a, b, c := last(t, e).UsernameDigest, last(t, twin).UsernameDigest, last(t, stranger).UsernameDigest; a != b || a == c {
		t.Errorf("digests under one key %s and %s, under another %s: want the first two equal, the third not", a, b, c)
	}
}
