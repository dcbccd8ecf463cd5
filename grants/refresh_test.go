package grants

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

var loginGrants = []string{protocol.GrantPassword, protocol.GrantRefreshToken}

// TestRefreshRotation: every use returns a new pair of the same login (family), subject and
// lifetimes; the used token is no longer active.
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{GrantTypes: loginGrants, Scopes: []string{"a", "b"},
		AccessTokenTTL: 90 * time.Second, RefreshTokenTTL: 10 * time.Minute})
	uid := e.user(t, "dave", "dave-password")
	first := e.token(t, loginReq(id, sec, "dave"))
	e.clock.Advance(time.Minute)
	next := e.token(t, refreshReq(id, sec, first.RefreshToken))
	if next.AccessToken == first.AccessToken || next.RefreshToken == first.RefreshToken || next.RefreshToken == "" {
		t.Fatal("refresh did not rotate the pair")
	}
	c0, c1 := e.claimsOf(t, first.AccessToken), e.claimsOf(t, next.AccessToken)
	f0, _ := FamilyOf(c0.ID)
	f1, _ := FamilyOf(c1.ID)
	if c1.Subject != uid || f1 != f0 || c1.Scope != "a b" {
		t.Errorf("refreshed claims %+v; want the user, the login's family %q and its scope", c1, f0)
	}
	now := e.clock.Now()
	if next.ExpiresIn(now) != 90 || next.RefreshExpiresIn(now) != 600 {
		t.Errorf("expires_in %d, refresh_token_expires_in %d; want the client's 90 and 600", next.ExpiresIn(now), next.RefreshExpiresIn(now))
	}
	if e.active(t, first.RefreshToken) || !e.active(t, next.RefreshToken) {
		t.Error("after a rotation the used token must be inactive and the new one active")
	}
	if e.minted(protocol.GrantRefreshToken) != 1 {
		t.Errorf("minted %d on refresh, want 1", e.minted(protocol.GrantRefreshToken))
	}
	// The new refresh token lives the client's 10 minutes.
	e.clock.Advance(10*time.Minute + time.Second)
	if pe := e.refused(t, refreshReq(id, sec, next.RefreshToken), protocol.InvalidGrant); pe != errUnknownRefresh {
		t.Errorf("after the client's refresh lifetime: %v, want %v", pe, errUnknownRefresh)
	}
}

// TestRefreshGraceAndReplay: inside the grace window the old token gets the very same pair
// back, with the lifetime actually left; after it the old token is a replay, which revokes the
// whole login.
func TestRefreshGraceAndReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{GrantTypes: loginGrants})
	e.user(t, "dave", "dave-password")
	rt0 := e.token(t, loginReq(id, sec, "dave")).RefreshToken
	a := e.token(t, refreshReq(id, sec, rt0))
	e.clock.Advance(3 * time.Second)
	b := e.token(t, refreshReq(id, sec, rt0))
	if b.AccessToken != a.AccessToken || b.RefreshToken != a.RefreshToken {
		t.Fatal("a retry in the grace window got a different pair")
	}
	now := e.clock.Now()
	if got, want := b.ExpiresIn(now), a.ExpiresIn(now.Add(-3*time.Second))-3; got != want {
		t.Errorf("retry expires_in %d, want %d", got, want)
	}
	if e.minted(protocol.GrantRefreshToken) != 1 {
		t.Errorf("minted %d for a refresh and its retry, want 1", e.minted(protocol.GrantRefreshToken))
	}

	e.clock.Advance(3 * time.Second)
	pe := e.refused(t, refreshReq(id, sec, rt0), protocol.InvalidGrant)
	if pe != errReplayRefresh {
		t.Errorf("replay answered %v, want %v", pe, errReplayRefresh)
	}
	if pe := e.refused(t, refreshReq(id, sec, a.RefreshToken), protocol.InvalidGrant); pe != errRevokedRefresh {
		t.Errorf("the newest token after a replay: %v, want %v", pe, errRevokedRefresh)
	}
	if e.active(t, a.AccessToken) {
		t.Error("an access token of a replayed login is active")
	}
	// Only that login ended.
	e.token(t, refreshReq(id, sec, e.token(t, loginReq(id, sec, "dave")).RefreshToken))
}

// TestRefreshWithoutGrace: a client with no grace window (0, not unset) gets a replay for any
// second presentation.
func TestRefreshWithoutGrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var zero time.Duration
	id, sec := e.client(t, storage.Client{GrantTypes: loginGrants, RefreshGrace: &zero})
	e.user(t, "dave", "dave-password")
	rt := e.token(t, loginReq(id, sec, "dave")).RefreshToken
	e.token(t, refreshReq(id, sec, rt))
	if pe := e.refused(t, refreshReq(id, sec, rt), protocol.InvalidGrant); pe != errReplayRefresh {
		t.Errorf("second presentation: %v, want %v", pe, errReplayRefresh)
	}
}

// TestConcurrentRefresh: with a grace window every caller gets the one new pair, minted once;
// without one exactly one caller succeeds.
func TestConcurrentRefresh(t *testing.T) {
	t.Parallel()
	var zero time.Duration
	for _, tc := range []struct {
		name      string
		grace     *time.Duration
		successes int
	}{
		{"grace on: all get the one new pair", nil, 20},
		{"grace off: exactly one success", &zero, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			id, sec := e.client(t, storage.Client{GrantTypes: loginGrants, RefreshGrace: tc.grace})
			e.user(t, "dave", "dave-password")
			rt := e.token(t, loginReq(id, sec, "dave")).RefreshToken
			const n = 20
			var wg sync.WaitGroup
			var mu sync.Mutex
			pairs := map[string]int{}
			start := make(chan struct{})
			for range n {
				wg.Go(func() {
					<-start
					tok, err := e.svc.Token(context.Background(), refreshReq(id, sec, rt))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						if protocol.As(err).Code != protocol.InvalidGrant {
							t.Errorf("unexpected refusal %v", err)
						}
						return
					}
					pairs[tok.AccessToken+" "+tok.RefreshToken]++
				})
			}
			close(start)
			wg.Wait()
			ok := 0
			for _, k := range pairs {
				ok += k
			}
			if ok != tc.successes || len(pairs) != 1 {
				t.Fatalf("%d successes with %d distinct pairs; want %d and 1", ok, len(pairs), tc.successes)
			}
			// Callers share one rotation only with a grace window: without one, each mints a
			// successor and the store lets one win.
			if got := e.minted(protocol.GrantRefreshToken); tc.grace == nil && got != 1 {
				t.Errorf("%d access tokens minted for %d concurrent refreshes, want 1", got, n)
			}
		})
	}
}

// TestRefreshRefusals: tokens that are not a live token of this client's login are invalid_grant,
// and refusing one changes nothing for its owner.
func TestRefreshRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type setup struct {
		e        *testEnv
		id, sec  string
		uid      string
		rt       string
		otherID  string
		otherSec string
	}
	tests := []struct {
		name string
		// prepare changes the world and returns the request to refuse.
		prepare func(t *testing.T, s setup) *Request
		code    string
		want    *protocol.Error
		// owner: the owner's token still works afterwards.
		owner bool
	}{
		{name: "missing refresh_token", prepare: func(t *testing.T, s setup) *Request {
			return req(s.id, s.sec, protocol.GrantRefreshToken)
		}, code: protocol.InvalidRequest, owner: true},
		{name: "garbage", prepare: func(t *testing.T, s setup) *Request {
			return refreshReq(s.id, s.sec, "garbage")
		}, want: errUnknownRefresh, owner: true},
		{name: "unknown", prepare: func(t *testing.T, s setup) *Request {
			return refreshReq(s.id, s.sec, newRefreshToken(newFamilyID()))
		}, want: errUnknownRefresh, owner: true},
		{name: "another client's", prepare: func(t *testing.T, s setup) *Request {
			return refreshReq(s.otherID, s.otherSec, s.rt)
		}, want: errUnknownRefresh, owner: true},
		{name: "a wider scope", prepare: func(t *testing.T, s setup) *Request {
			return refreshReq(s.id, s.sec, s.rt, "scope", "c")
		}, code: protocol.InvalidScope, owner: true},
		{name: "expired", prepare: func(t *testing.T, s setup) *Request {
			s.e.clock.Advance(14*24*time.Hour + time.Second)
			return refreshReq(s.id, s.sec, s.rt)
		}, want: errUnknownRefresh},
		{name: "revoked", prepare: func(t *testing.T, s setup) *Request {
			if _, err := s.e.svc.RevokeAny(ctx, s.rt); err != nil {
				t.Fatal(err)
			}
			return refreshReq(s.id, s.sec, s.rt)
		}, want: errRevokedRefresh},
		{name: "the user deleted", prepare: func(t *testing.T, s setup) *Request {
			if err := s.e.store.DeleteUser(ctx, s.uid); err != nil {
				t.Fatal(err)
			}
			s.e.user(t, "dave", "dave-password") // the same name is someone else
			return refreshReq(s.id, s.sec, s.rt)
		}, code: protocol.InvalidGrant},
		{name: "the password changed", prepare: func(t *testing.T, s setup) *Request {
			s.e.clock.Advance(time.Second)
			if _, err := s.e.store.UpdateUser(ctx, s.uid, func(u *storage.User) error { u.NotBefore = s.e.clock.Now(); return nil }); err != nil {
				t.Fatal(err)
			}
			return refreshReq(s.id, s.sec, s.rt)
		}, code: protocol.InvalidGrant},
		{name: "the client created again under the same id", prepare: func(t *testing.T, s setup) *Request {
			s.e.clock.Advance(time.Second)
			if err := s.e.store.DeleteClient(ctx, s.id, s.e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			_, sec := s.e.client(t, storage.Client{ID: s.id, GrantTypes: loginGrants, Scopes: []string{"a", "b"}})
			return refreshReq(s.id, sec, s.rt)
		}, want: errUnknownRefresh},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			id, sec := e.client(t, storage.Client{GrantTypes: loginGrants, Scopes: []string{"a", "b"}})
			otherID, otherSec := e.client(t, storage.Client{GrantTypes: loginGrants, Scopes: []string{"a", "b"}})
			uid := e.user(t, "dave", "dave-password")
			rt := e.token(t, loginReq(id, sec, "dave")).RefreshToken
			r := tc.prepare(t, setup{e, id, sec, uid, rt, otherID, otherSec})
			code := tc.code
			if tc.want != nil {
				code = tc.want.Code
			}
			pe := e.refused(t, r, code)
			if tc.want != nil && pe != tc.want {
				t.Errorf("refused with %v, want %v", pe, tc.want)
			}
			if tc.owner {
				e.token(t, refreshReq(id, sec, rt))
			}
		})
	}
}

// TestRefreshNarrowsScope: a refresh may ask for less than the login's scope (RFC 6749 §6);
// the refresh token keeps the whole of it.
func TestRefreshNarrowsScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{GrantTypes: loginGrants, Scopes: []string{"a", "b"}})
	e.user(t, "dave", "dave-password")
	rt := e.token(t, loginReq(id, sec, "dave")).RefreshToken
	narrow := e.token(t, refreshReq(id, sec, rt, "scope", "b"))
	if narrow.Scope != "b" || e.claimsOf(t, narrow.AccessToken).Scope != "b" {
		t.Errorf("narrowed scope %q, want b", narrow.Scope)
	}
	if whole := e.token(t, refreshReq(id, sec, narrow.RefreshToken)); whole.Scope != "a b" {
		t.Errorf("scope after a narrowed refresh %q, want the login's %q", whole.Scope, "a b")
	}
}

// TestPublicClientRefresh: a public client's refresh token names its client, so the request
// may carry the token alone.
func TestPublicClientRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.client(t, storage.Client{ID: "mobile", TokenEndpointAuthMethod: protocol.AuthNone, GrantTypes: PublicGrants})
	e.user(t, "ivan", "ivan-password")
	l := e.token(t, publicReq("mobile", protocol.GrantPassword, "username", "ivan", "password", "ivan-password"))
	r := publicReq("", protocol.GrantRefreshToken, "refresh_token", l.RefreshToken)
	next := e.token(t, r)
	if r.ClientID != "mobile" || e.claimsOf(t, next.AccessToken).ClientID != "mobile" {
		t.Errorf("request client %q, token client_id %q; want mobile", r.ClientID, e.claimsOf(t, next.AccessToken).ClientID)
	}
	e.token(t, publicReq("mobile", protocol.GrantRefreshToken, "refresh_token", next.RefreshToken))
}
