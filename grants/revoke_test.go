package grants

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// tokenSet is what one client holds after a password login and a client_credentials request,
// beside another client, a resource server and a personal token.
type tokenSet struct {
	id, sec                 string
	userID                  string
	access                  string // client_credentials
	userAccess              string // password grant
	refresh                 string
	otherID, otherSec       string
	otherAccess             string
	resourceID, resourceSec string
	publicID                string
	expiredAccess           string
	patID, pat              string
}

func issueTokenSet(t *testing.T, e *testEnv) tokenSet {
	t.Helper()
	var s tokenSet
	s.id, s.sec = e.client(t, storage.Client{Scopes: []string{"orders:read"}, AccessTokenTTL: time.Hour,
		GrantTypes: []string{protocol.GrantClientCredentials, protocol.GrantPassword, protocol.GrantRefreshToken}})
	s.userID = e.user(t, "alice", "alice-password", "orders:read")
	// A token that expired: minted an hour and a half ago with a 1 h lifetime.
	e.clock.Advance(-90 * time.Minute)
	s.expiredAccess = e.token(t, req(s.id, s.sec, protocol.GrantClientCredentials)).AccessToken
	e.clock.Advance(90 * time.Minute)
	s.access = e.token(t, req(s.id, s.sec, protocol.GrantClientCredentials)).AccessToken
	l := e.token(t, loginReq(s.id, s.sec, "alice"))
	s.userAccess, s.refresh = l.AccessToken, l.RefreshToken
	s.otherID, s.otherSec = e.client(t, storage.Client{})
	s.otherAccess = e.token(t, req(s.otherID, s.otherSec, protocol.GrantClientCredentials)).AccessToken
	s.resourceID, s.resourceSec = e.client(t, storage.Client{ResourceServer: true})
	s.publicID, _ = e.client(t, storage.Client{TokenEndpointAuthMethod: protocol.AuthNone, GrantTypes: PublicGrants})
	s.patID, s.pat = e.personal(t, s.userID, 0, "orders:read")
	return s
}

func TestIntrospect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := issueTokenSet(t, e)
	now := e.clock.Now()
	c := e.claimsOf(t, s.access)
	fam, hash, _ := parseRefreshToken(s.refresh)
	tests := []struct {
		name, id, sec, token string
		want                 Introspection
	}{
		{"the client's own access token", s.id, s.sec, s.access, Introspection{Active: true, ClientID: s.id, Subject: s.id,
			Scope: "orders:read", TokenType: "Bearer", Issuer: testIssuer, Audience: []string{testAudience}, ID: c.ID,
			IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt}},
		{"a user's access token", s.id, s.sec, s.userAccess, Introspection{Active: true, ClientID: s.id, Subject: s.userID,
			Username: "alice", Scope: "orders:read", TokenType: "Bearer", Issuer: testIssuer, Audience: []string{testAudience},
			ID: e.claimsOf(t, s.userAccess).ID, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}},
		{"a refresh token", s.id, s.sec, s.refresh, Introspection{Active: true, ClientID: s.id, Subject: s.userID,
			Username: "alice", Scope: "orders:read", TokenType: protocol.TokenTypeRefresh, Issuer: testIssuer,
			Audience: []string{testAudience}, ID: fam + "." + hash[:8], IssuedAt: now.Unix(), ExpiresAt: now.Add(14 * 24 * time.Hour).Unix()}},
		{"a personal token, asked by any client", s.otherID, s.otherSec, s.pat, Introspection{Active: true, TokenType: TokenTypePersonal,
			Subject: s.userID, Username: "alice", Scope: "orders:read", Issuer: testIssuer, ID: s.patID, IssuedAt: now.Unix()}},
		{"a resource server sees every client's", s.resourceID, s.resourceSec, s.access, Introspection{Active: true, ClientID: s.id,
			Subject: s.id, Scope: "orders:read", TokenType: "Bearer", Issuer: testIssuer, Audience: []string{testAudience}, ID: c.ID,
			IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt}},
		{"another client's token", s.otherID, s.otherSec, s.access, Introspection{}},
		{"a token of another client", s.id, s.sec, s.otherAccess, Introspection{}},
		{"expired", s.id, s.sec, s.expiredAccess, Introspection{}},
		{"garbage", s.id, s.sec, "not-a-token", Introspection{}},
		{"three dots", s.id, s.sec, "a.b.c", Introspection{}},
		{"unknown refresh token", s.id, s.sec, newRefreshToken(newFamilyID()), Introspection{}},
		{"malformed refresh token", s.id, s.sec, "tsr_x", Introspection{}},
		{"a personal token with a typo", s.id, s.sec, personalTypo(s.pat), Introspection{}},
		{"a forged signature", s.id, s.sec, s.access[:len(s.access)-4] + "AAAA", Introspection{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := e.introspect(t, tc.id, tc.sec, tc.token)
			if !equalIntrospection(*got, tc.want) {
				t.Errorf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func equalIntrospection(a, b Introspection) bool {
	return a.Active == b.Active && a.Scope == b.Scope && a.ClientID == b.ClientID && a.Username == b.Username &&
		a.TokenType == b.TokenType && a.ExpiresAt == b.ExpiresAt && a.IssuedAt == b.IssuedAt && a.Subject == b.Subject &&
		strings.Join(a.Audience, " ") == strings.Join(b.Audience, " ") && a.Issuer == b.Issuer && a.ID == b.ID
}

func TestIntrospectRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := issueTokenSet(t, e)
	tests := []struct {
		name string
		r    *Request
		code string
	}{
		{"missing token", req(s.id, s.sec, ""), protocol.InvalidRequest},
		{"wrong secret", req(s.id, "wrong", "", "token", s.access), protocol.InvalidClient},
		{"no client", req("", "", "", "token", s.access), protocol.InvalidClient},
		{"a public client", publicReq(s.publicID, "", "token", s.access), protocol.UnauthorizedClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Introspect(context.Background(), tc.r)
			if got := protocol.As(err).Code; got != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			if _, ok := e.audit.find(audit.TokenRefused, func(ev audit.Event) bool {
				return ev.Endpoint == EndpointIntrospect && ev.Error == tc.code
			}); !ok {
				t.Error("the refusal is not in the audit trail")
			}
		})
	}
}

// TestIntrospectEndedLogins: a used refresh token, a deleted user's tokens, and the logins
// made before a password change are inactive; personal tokens outlive a password change.
func TestIntrospectEndedLogins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("used refresh token", func(t *testing.T) {
		e := newEnv(t, nil)
		s := issueTokenSet(t, e)
		e.token(t, refreshReq(s.id, s.sec, s.refresh))
		if e.active(t, s.refresh) {
			t.Error("a rotated refresh token is active")
		}
	})
	t.Run("password changed", func(t *testing.T) {
		e := newEnv(t, nil)
		s := issueTokenSet(t, e)
		e.clock.Advance(time.Second)
		if _, err := e.store.UpdateUser(ctx, s.userID, func(u *storage.User) error { u.NotBefore = e.clock.Now(); return nil }); err != nil {
			t.Fatal(err)
		}
		if e.active(t, s.userAccess) || e.active(t, s.refresh) {
			t.Error("a login made before the password changed is active")
		}
		if !e.active(t, s.pat) || !e.active(t, s.access) {
			t.Error("a personal token or a client's own token ended with a user's password")
		}
	})
	t.Run("user deleted", func(t *testing.T) {
		e := newEnv(t, nil)
		s := issueTokenSet(t, e)
		if err := e.store.DeleteUser(ctx, s.userID); err != nil {
			t.Fatal(err)
		}
		e.svc.Forget(storage.Change{Kind: storage.ChangeUser, ID: s.userID})
		for name, tok := range map[string]string{"access": s.userAccess, "refresh": s.refresh, "personal": s.pat} {
			if e.active(t, tok) {
				t.Errorf("the %s token of a deleted user is active", name)
			}
		}
	})
	t.Run("client created again", func(t *testing.T) {
		e := newEnv(t, nil)
		s := issueTokenSet(t, e)
		e.clock.Advance(time.Second)
		if err := e.store.DeleteClient(ctx, s.id, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if e.active(t, s.access) {
			t.Error("a deleted client's token is active")
		}
		id, sec := e.client(t, storage.Client{ID: s.id})
		for _, tok := range []string{s.access, s.userAccess, s.refresh} {
			if e.introspect(t, id, sec, tok).Active {
				t.Error("the new client owns its predecessor's token")
			}
		}
		if !e.introspect(t, id, sec, e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken).Active {
			t.Error("the new client's own token is inactive")
		}
	})
}

// TestRevokeIsNoOracle: another client's live token is answered exactly as an unknown one (RFC
// 7009 §2.2), by confidential and public clients alike, and stays valid; the attempt is in the
// audit trail for the operator.
func TestRevokeIsNoOracle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := issueTokenSet(t, e)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		r    *Request
		live string // the foreign token that must stay live
	}{
		{"a confidential client, an access token", req(s.otherID, s.otherSec, "", "token", s.access), s.access},
		{"a confidential client, a refresh token", req(s.otherID, s.otherSec, "", "token", s.refresh), s.refresh},
		{"a confidential client, a refresh token hinted", req(s.otherID, s.otherSec, "", "token", s.refresh, "token_type_hint", "refresh_token"), s.refresh},
		{"a public client, an access token", publicReq(s.publicID, "", "token", s.access), s.access},
		{"a public client, a refresh token", publicReq(s.publicID, "", "token", s.refresh), s.refresh},
		{"a public client, an unknown token", publicReq(s.publicID, "", "token", newRefreshToken(newFamilyID())), s.refresh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.svc.Revoke(ctx, tc.r); err != nil {
				t.Fatalf("answered %v, want what an unknown token gets (no error)", err)
			}
			if !e.active(t, tc.live) {
				t.Fatal("a foreign revocation ended the token")
			}
		})
	}
	if _, ok := e.audit.find(audit.TokenRefused, func(ev audit.Event) bool {
		return ev.Endpoint == EndpointRevoke && ev.ClientID == s.publicID && ev.Error == protocol.UnauthorizedClient
	}); !ok {
		t.Error("the foreign revocation is not in the audit trail")
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := issueTokenSet(t, e)
	ctx := context.Background()
	revoke := func(id, sec, tok string, kv ...string) error {
		return e.svc.Revoke(ctx, req(id, sec, "", append([]string{"token", tok}, kv...)...))
	}

	// Another client's live token: answered as an unknown one, and it stays valid.
	if err := revoke(s.otherID, s.otherSec, s.access); err != nil || !e.active(t, s.access) {
		t.Fatalf("revoking another client's token: %v", err)
	}
	// Unknown, malformed, forged and expired tokens: nothing to do, and no error (RFC 7009 §2.2).
	for name, tok := range map[string]string{"garbage": "not-a-token", "unknown refresh": newRefreshToken(newFamilyID()),
		"forged": s.access[:len(s.access)-4] + "AAAA", "expired": s.expiredAccess, "personal typo": personalTypo(s.pat)} {
		if err := revoke(s.id, s.sec, tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !e.active(t, s.access) || !e.active(t, s.refresh) || !e.active(t, s.pat) {
		t.Fatal("a refused or no-op revocation changed a live token")
	}
	// The client's own access token, whatever the hint: revoked, and again is fine.
	if err := revoke(s.id, s.sec, s.access, "token_type_hint", "refresh_token"); err != nil || e.active(t, s.access) {
		t.Fatalf("own access token: %v, active %v", err, e.active(t, s.access))
	}
	if err := revoke(s.id, s.sec, s.access); err != nil {
		t.Errorf("revoking again: %v", err)
	}
	// A user's access token is revoked alone: its login goes on.
	if err := revoke(s.id, s.sec, s.userAccess); err != nil || e.active(t, s.userAccess) || !e.active(t, s.refresh) {
		t.Fatalf("user access token: %v; it must end alone", err)
	}
	// A refresh token, even a used one, ends its whole login.
	next := e.token(t, refreshReq(s.id, s.sec, s.refresh))
	if err := revoke(s.id, s.sec, s.refresh); err != nil {
		t.Fatal(err)
	}
	if e.active(t, next.AccessToken) || e.active(t, next.RefreshToken) {
		t.Fatal("the login's newest tokens survived revoking its refresh token")
	}
	e.refused(t, refreshReq(s.id, s.sec, next.RefreshToken), protocol.InvalidGrant)
	fam, _, _ := parseRefreshToken(s.refresh)
	if ev, ok := e.audit.find(audit.TokenRevoked, func(ev audit.Event) bool { return ev.Family == fam }); !ok ||
		ev.TokenType != protocol.TokenTypeRefresh || ev.Who != s.id || ev.Subject != s.userID {
		t.Errorf("audit of the revoked login: %+v, %v", ev, ok)
	}

	// A personal token belongs to no client: any client may revoke it; every replica hears.
	if err := revoke(s.otherID, s.otherSec, s.pat); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.GetPersonalToken(ctx, s.patID); !errors.Is(err, storage.ErrNotFound) || e.active(t, s.pat) {
		t.Errorf("the revoked personal token: %v", err)
	}
	if got := e.announce.changes; len(got) != 1 || got[0] != (storage.Change{Kind: storage.ChangePersonalToken, ID: s.patID}) {
		t.Errorf("announced %+v, want the personal token", got)
	}
	if ev, ok := e.audit.find(audit.TokenRevoked, func(ev audit.Event) bool { return ev.JTI == s.patID }); !ok ||
		ev.TokenType != TokenTypePersonal || ev.Who != s.otherID || ev.Subject != s.userID {
		t.Errorf("audit of the revoked personal token: %+v, %v", ev, ok)
	}

	// Request errors.
	for name, tc := range map[string]struct {
		r    *Request
		code string
	}{
		"missing token": {req(s.id, s.sec, ""), protocol.InvalidRequest},
		"wrong secret":  {req(s.id, "wrong", "", "token", s.otherAccess), protocol.InvalidClient},
		"no client":     {req("", "", "", "token", "x"), protocol.InvalidClient},
	} {
		if err := e.svc.Revoke(ctx, tc.r); protocol.As(err).Code != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
}

// TestRevokeAny: the operator revokes any client's token and is told whether it was live.
func TestRevokeAny(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := issueTokenSet(t, e)
	ctx := context.Background()
	tests := []struct {
		name  string
		token string
		live  bool
	}{
		{"an access token", s.otherAccess, true},
		{"the same again", s.otherAccess, false},
		{"a refresh token", s.refresh, true},
		{"a personal token", s.pat, true},
		{"expired", s.expiredAccess, false},
		{"garbage", "garbage", false},
	}
	for _, tc := range tests {
		live, err := e.svc.RevokeAny(ctx, tc.token)
		if err != nil || live != tc.live {
			t.Errorf("%s: live %v, %v; want %v", tc.name, live, err, tc.live)
		}
		if e.active(t, tc.token) {
			t.Errorf("%s: active after RevokeAny", tc.name)
		}
	}
	if ev, ok := e.audit.find(audit.TokenRevoked, func(ev audit.Event) bool { return ev.ClientID == s.otherID }); !ok || ev.Who != "admin" {
		t.Errorf("audit of the operator's revocation: %+v, %v", ev, ok)
	}
}

// TestSigningAlgorithms: each client's tokens are signed with its access_token_signing_alg
// (a client stored without one gets RS256) on every grant, verify with that algorithm's key,
// and are introspected and revoked alike; a token whose header names another algorithm than
// its key's is no token of ours.
func TestSigningAlgorithms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.user(t, "alice", "alice-password", "orders:read")
	resourceID, resourceSec := e.client(t, storage.Client{ResourceServer: true})
	for _, alg := range append([]string{""}, protocol.SigningAlgorithms()...) {
		want := alg
		if want == "" {
			want = keys.RS256
		}
		t.Run(want+"/"+alg, func(t *testing.T) {
			id, sec := e.client(t, storage.Client{AccessTokenSigningAlg: alg, Scopes: []string{"orders:read"},
				GrantTypes: []string{protocol.GrantClientCredentials, protocol.GrantPassword, protocol.GrantRefreshToken}})
			login := e.token(t, loginReq(id, sec, "alice"))
			for name, tok := range map[string]string{
				"client_credentials": e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken,
				"password":           login.AccessToken,
				"refresh_token":      e.token(t, refreshReq(id, sec, login.RefreshToken)).AccessToken,
			} {
				if c := e.claimsOfAlg(t, tok, want); c.ClientID != id {
					t.Fatalf("%s: client_id %s", name, c.ClientID)
				}
				if got := e.introspect(t, resourceID, resourceSec, tok); !got.Active || got.ClientID != id {
					t.Fatalf("%s: introspection of a %s token: %+v", name, want, got)
				}
			}
			tok := e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken
			if err := e.svc.Revoke(context.Background(), req(id, sec, "", protocol.ParamToken, tok)); err != nil {
				t.Fatal(err)
			}
			if got := e.introspect(t, resourceID, resourceSec, tok); got.Active {
				t.Fatalf("a revoked %s token is active", want)
			}
		})
	}

	// Signed by our PS256 key, with its kid, but labelled RS256 (RSASSA-PKCS1-v1_5 with that
	// same RSA key): a valid RS256 signature that our keys never make.
	ks, _ := testKeys()
	ps := ks.ActiveAt(keys.PS256, e.clock.Now())
	id, sec := e.client(t, storage.Client{})
	c := e.claimsOf(t, e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken)
	forged := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	forged.Header["typ"], forged.Header["kid"] = keys.TokenType, ps.ID
	raw, err := forged.SignedString(ps.Private)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(t, resourceID, resourceSec, raw); got.Active {
		t.Fatalf("a token whose alg is not its key's is active: %+v", got)
	}
	relabelled := forged
	relabelled.Method = jwt.SigningMethodPS256
	relabelled.Header["alg"] = "PS256"
	if raw, err = relabelled.SignedString(ps.Private); err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(t, resourceID, resourceSec, raw); !got.Active {
		t.Fatalf("the same claims signed as PS256 with the PS256 key are refused: %+v", got)
	}
}
