package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// claims is what a resource server reads from our tokens, decoded by go-jose (not golang-jwt,
// which signs them).
type claims struct {
	josejwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// family is the refresh family named in the token's jti.
func (c claims) family() string { f, _ := grants.FamilyOf(c.ID); return f }

// verify checks tok the way an independent resource server would: JWKS fetched over HTTP,
// kid lookup, an asymmetric algorithm that must be the alg of the key the kid names, typ
// at+jwt, iss and exp validated by go-jose.
func verify(t *testing.T, ts *testServer, tok string) claims {
	t.Helper()
	resp, err := http.Get(ts.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("go-jose cannot parse our token: %v", err)
	}
	h := parsed.Headers[0]
	if h.ExtraHeaders["typ"] != "at+jwt" {
		t.Fatalf("typ header = %v, want at+jwt", h.ExtraHeaders["typ"])
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not in the JWKS", h.KeyID)
	}
	if keys[0].Algorithm != h.Algorithm {
		t.Fatalf("a %s token names a key for %s", h.Algorithm, keys[0].Algorithm)
	}
	var c claims
	if err := parsed.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("signature does not verify against the JWKS: %v", err)
	}
	if err := c.Claims.ValidateWithLeeway(josejwt.Expected{Issuer: ts.URL, Time: ts.Clock.Now()}, 0); err != nil {
		t.Fatalf("claims invalid: %v", err)
	}
	return c
}

func TestClientCredentialsWithOAuth2Library(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{Scopes: &[]string{"read", "write"}})

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		t.Run(fmt.Sprint("authstyle=", style), func(t *testing.T) {
			cfg := clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: ts.URL + "/oauth2/token",
				Scopes: []string{"read"}, AuthStyle: style}
			tok, err := cfg.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "Bearer" || tok.RefreshToken != "" {
				t.Fatalf("token type %q refresh %q; want Bearer and no refresh token", tok.TokenType, tok.RefreshToken)
			}
			if got := tok.Extra("expires_in"); got != (3 * time.Hour).Seconds() {
				t.Fatalf("expires_in = %d, want 10800", got)
			}
			if got, want := tok.Extra("expires_at"), float64(ts.Clock.Now().Unix()+10800); got != want {
				t.Fatalf("expires_at = %v, want %v", got, want)
			}
			c := verify(t, ts, tok.AccessToken)
			if c.Subject != id || c.ClientID != id || c.Scope != "read" || c.ID == "" {
				t.Fatalf("claims = %+v", c)
			}
			if !c.Audience.Contains("https://api.example.com") {
				t.Fatalf("aud = %v, want the server default audience", c.Audience)
			}
			if d := c.Expiry.Time().Sub(c.IssuedAt.Time()); d != 3*time.Hour {
				t.Fatalf("exp-iat = %s, want 3h", d)
			}
		})
	}
}

func TestPasswordAndRefreshWithOAuth2Library(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{
		GrantTypes: &[]string{"password", "refresh_token"}, Scopes: &[]string{"profile"},
	})
	uid := ts.user(t, "alice", "correct horse battery")
	cfg := oauth2.Config{ClientID: id, ClientSecret: sec, Endpoint: oauth2.Endpoint{TokenURL: ts.URL + "/oauth2/token"}}
	ctx := context.Background()

	tok, err := cfg.PasswordCredentialsToken(ctx, "alice", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	c := verify(t, ts, tok.AccessToken)
	if c.Subject != uid || c.Scope != "profile" || c.family() == "" {
		t.Fatalf("claims = %+v; want sub = user id, scope profile and a family in jti", c)
	}
	if d := c.Expiry.Time().Sub(c.IssuedAt.Time()); d != 24*time.Hour {
		t.Fatalf("password token lifetime %s, want 24h", d)
	}
	if tok.RefreshToken == "" || tok.Extra("refresh_token_expires_in") != float64(14*24*3600) {
		t.Fatalf("refresh token %q expires_in %v; want one for 14 days", tok.RefreshToken, tok.Extra("refresh_token_expires_in"))
	}

	// Let the access token expire as far as the library knows; TokenSource then refreshes.
	ts.Clock.Advance(time.Minute)
	old := *tok
	tok.Expiry = time.Now().Add(-time.Hour)
	fresh, err := cfg.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == old.AccessToken || fresh.RefreshToken == old.RefreshToken || fresh.RefreshToken == "" {
		t.Fatal("refresh did not rotate the pair")
	}
	c2 := verify(t, ts, fresh.AccessToken)
	if c2.Subject != uid || c2.family() != c.family() {
		t.Fatalf("refreshed claims %+v; want the same subject and family", c2)
	}

	_, err = cfg.PasswordCredentialsToken(ctx, "alice", "wrong password!")
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || re.Response.StatusCode != 400 {
		t.Fatalf("wrong password: %v; want 400 invalid_grant", err)
	}
}

// TestTokenLengthWithTenScopesOfTwenty checks ATOL's 1000-character cap for every grant, with
// both RSA algorithms (PS256's header and signature are as long as RS256's; ES256 and EdDSA
// signatures are shorter still). The fixed part (header with the RFC 7638 kid, RSA-2048
// signature, 10×20-character scopes) takes 733 characters; what is left holds iss, aud and the
// ids. Here iss is the loopback URL (22 characters) and aud a 23-character API URL, the
// budget docs/design.md documents.
func TestTokenLengthWithTenScopesOfTwenty(t *testing.T) {
	ts := newTestServer(t, withAlgorithms("RS256", "PS256"))
	var scopes []string
	for i := range 10 {
		scopes = append(scopes, fmt.Sprintf("scope-%02d-%s", i, strings.Repeat("x", 11)))
	}
	if len(scopes[0]) != 20 || len(ts.URL) < 21 {
		t.Fatalf("scope length %d, issuer %q", len(scopes[0]), ts.URL)
	}
	ts.user(t, "dave", "dave-password")
	for _, alg := range []string{"RS256", "PS256"} {
		id, sec := ts.client(t, registry.ClientInput{
			GrantTypes: &[]string{"client_credentials", "password", "refresh_token"}, Scopes: &scopes,
			Audience: &protocol.Audience{"https://api.example.com"}, AccessTokenSigningAlg: &alg,
		})
		t.Run(alg, func(t *testing.T) { checkTokenLengths(t, ts, id, sec, alg) })
	}
}

func checkTokenLengths(t *testing.T, ts *testServer, id, sec, alg string) {
	l := login(t, ts, id, sec)
	for grant, values := range map[string]url.Values{
		"client_credentials": {"grant_type": {"client_credentials"}},
		"password":           {"grant_type": {"password"}, "username": {"dave"}, "password": {"dave-password"}},
		"refresh_token":      {"grant_type": {"refresh_token"}, "refresh_token": {l.str("refresh_token")}},
	} {
		r := ts.form(t, id, sec, values)
		if r.Status != 200 {
			t.Fatalf("%s: status %d: %s", grant, r.Status, r.RawBody)
		}
		tok := r.str("access_token")
		t.Logf("%s %s token with 10×20-character scopes: %d characters", alg, grant, len(tok))
		if len(tok) > 1000 {
			t.Fatalf("%s %s token is %d characters, the limit is 1000", alg, grant, len(tok))
		}
		if h, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0]); !strings.Contains(string(h), `"alg":"`+alg+`"`) {
			t.Fatalf("%s token header %s", alg, h)
		}
		if c := verify(t, ts, tok); len(strings.Fields(c.Scope)) != 10 {
			t.Fatalf("scope claim %q", c.Scope)
		}
	}
}

func TestBodiesAndClientAuthentication(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{ClientID: ptr("ATOL.client_1"), Scopes: &[]string{"a"}})
	pin, pinSec := ts.client(t, registry.ClientInput{TokenEndpointAuthMethod: ptr("client_secret_basic")})
	tests := []struct {
		name   string
		ctype  string
		body   string
		header map[string]string
		status int
	}{
		{"form with Basic", "application/x-www-form-urlencoded", "grant_type=client_credentials",
			map[string]string{"Authorization": basic(id, sec)}, 200},
		{"Basic credentials are URL-decoded (RFC 6749 §2.3.1)", "application/x-www-form-urlencoded", "grant_type=client_credentials",
			map[string]string{"Authorization": "Basic " + b64("ATOL%2Eclient%5F1:"+sec)}, 200},
		{"form with client_secret_post", "application/x-www-form-urlencoded; charset=UTF-8",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {sec}}.Encode(), nil, 200},
		{"JSON body", "application/json",
			fmt.Sprintf(`{"grant_type":"client_credentials","client_id":%q,"client_secret":%q}`, id, sec), nil, 200},
		{"JSON body with a Bearer header (livedigital)", "application/json",
			fmt.Sprintf(`{"grant_type":"client_credentials","client_id":%q,"client_secret":%q,"scope":"a"}`, id, sec),
			map[string]string{"Authorization": "Bearer some-client-token"}, 200},
		{"client pinned to Basic refuses post", "application/x-www-form-urlencoded",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {pin}, "client_secret": {pinSec}}.Encode(), nil, 401},
		{"client pinned to Basic accepts Basic", "application/x-www-form-urlencoded", "grant_type=client_credentials",
			map[string]string{"Authorization": basic(pin, pinSec)}, 200},
		{"Basic and body secret together", "application/x-www-form-urlencoded",
			"grant_type=client_credentials&client_secret=" + sec, map[string]string{"Authorization": basic(id, sec)}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.post(t, tc.ctype, tc.body, tc.header)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.RawBody)
			}
			if r.Status == 200 {
				if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
					t.Fatalf("headers %v; want Cache-Control no-store and Pragma no-cache", r.Header)
				}
				verify(t, ts, r.str("access_token"))
			}
		})
	}
}

// TestErrorTable walks every row of the token endpoint's error table (docs/integrators.md).
func TestErrorTable(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{Scopes: &[]string{"read"}})
	pw, pwSec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password", "refresh_token"}})
	other, otherSec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password", "refresh_token"}})
	ts.user(t, "bob", "bob-password-1")
	login := ts.form(t, pw, pwSec, url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"bob-password-1"}})
	refresh := login.str("refresh_token")
	if refresh == "" {
		t.Fatalf("login failed: %s", login.RawBody)
	}
	form := "application/x-www-form-urlencoded"
	auth := map[string]string{"Authorization": basic(id, sec)}

	tests := []struct {
		name   string
		ctype  string
		body   string
		header map[string]string
		status int
		code   string
	}{
		{"missing grant_type", form, "scope=read", auth, 400, "invalid_request"},
		{"duplicated parameter", form, "grant_type=client_credentials&grant_type=client_credentials", auth, 400, "invalid_request"},
		{"duplicated JSON key", "application/json", `{"grant_type":"client_credentials","grant_type":"password"}`, auth, 400, "invalid_request"},
		{"malformed form", form, "grant_type=%zz", auth, 400, "invalid_request"},
		{"malformed JSON", "application/json", `{"grant_type":`, auth, 400, "invalid_request"},
		{"nested JSON", "application/json", `{"grant_type":{"a":1}}`, auth, 400, "invalid_request"},
		{"wrong content type", "text/plain", "grant_type=client_credentials", auth, 400, "invalid_request"},
		{"no content type", "", "grant_type=client_credentials", auth, 400, "invalid_request"},
		{"invalid UTF-8", form, "grant_type=client_credentials&scope=\xff", auth, 400, "invalid_request"},
		{"invalid UTF-8 escaped", form, "grant_type=client_credentials&scope=%ff", auth, 400, "invalid_request"},
		{"oversized body", form, "grant_type=client_credentials&x=" + strings.Repeat("a", 70<<10), auth, 400, "invalid_request"},
		{"missing client", form, "grant_type=client_credentials", nil, 401, "invalid_client"},
		{"unknown client", form, "grant_type=client_credentials", map[string]string{"Authorization": basic("nobody", sec)}, 401, "invalid_client"},
		{"wrong secret", form, "grant_type=client_credentials", map[string]string{"Authorization": basic(id, "wrong")}, 401, "invalid_client"},
		{"wrong secret in body", form, url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {"x"}}.Encode(), nil, 401, "invalid_client"},
		{"malformed Basic", form, "grant_type=client_credentials", map[string]string{"Authorization": "Basic !!!"}, 401, "invalid_client"},
		{"wrong user password", form, url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"nope-nope"}}.Encode(),
			map[string]string{"Authorization": basic(pw, pwSec)}, 400, "invalid_grant"},
		{"unknown user", form, url.Values{"grant_type": {"password"}, "username": {"nobody"}, "password": {"nope-nope"}}.Encode(),
			map[string]string{"Authorization": basic(pw, pwSec)}, 400, "invalid_grant"},
		{"unknown refresh token", form, "grant_type=refresh_token&refresh_token=tsr_AAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			map[string]string{"Authorization": basic(pw, pwSec)}, 400, "invalid_grant"},
		{"garbage refresh token", form, "grant_type=refresh_token&refresh_token=garbage",
			map[string]string{"Authorization": basic(pw, pwSec)}, 400, "invalid_grant"},
		{"foreign refresh token", form, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode(),
			map[string]string{"Authorization": basic(other, otherSec)}, 400, "invalid_grant"},
		{"grant not allowed", form, "grant_type=password&username=bob&password=bob-password-1", auth, 400, "unauthorized_client"},
		{"unknown grant type", form, "grant_type=urn:example:magic", auth, 400, "unsupported_grant_type"},
		{"scope not allowed", form, "grant_type=client_credentials&scope=admin", auth, 400, "invalid_scope"},
		{"scope with a forbidden character", form, "grant_type=client_credentials&scope=re%22ad", auth, 400, "invalid_scope"},
		{"audience not allowed", form, "grant_type=client_credentials&audience=https://evil.example", auth, 400, "invalid_target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.post(t, tc.ctype, tc.body, tc.header)
			if r.Status != tc.status || r.str("error") != tc.code {
				t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.str("error"), tc.status, tc.code, r.RawBody)
			}
			if r.str("error_description") == "" {
				t.Fatal("error_description is empty")
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("error answers must not be cached")
			}
			wantChallenge := tc.code == "invalid_client" && strings.HasPrefix(tc.header["Authorization"], "Basic")
			if got := r.Header.Get("WWW-Authenticate"); (got == `Basic realm="tokensmith"`) != wantChallenge {
				t.Fatalf("WWW-Authenticate = %q, want challenge: %v", got, wantChallenge)
			}
		})
	}

	// The foreign client's attempt did not burn the owner's refresh token.
	r := ts.form(t, pw, pwSec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if r.Status != 200 {
		t.Fatalf("owner refresh after a foreign attempt: %d %s", r.Status, r.RawBody)
	}

	t.Run("repeated failed logins are slowed down", func(t *testing.T) {
		ts.user(t, "carol", "carol-password")
		try := func(pass string) reply {
			return ts.form(t, pw, pwSec, url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {pass}})
		}
		for range 3 {
			if r := try("wrong-wrong"); r.Status != 400 {
				t.Fatalf("failure answered %d", r.Status)
			}
		}
		r := try("carol-password")
		if r.Status != 429 || r.str("error") != protocol.RateLimited || r.Header.Get("Retry-After") == "" {
			t.Fatalf("after 3 failures even the right password must wait: %d %s %v", r.Status, r.RawBody, r.Header)
		}
		ts.Clock.Advance(2 * time.Second)
		if r := try("carol-password"); r.Status != 200 {
			t.Fatalf("after the delay the right password works: %d %s", r.Status, r.RawBody)
		}
	})

	t.Run("store unreachable", func(t *testing.T) {
		ts.Store.Close()
		r := ts.form(t, id, sec, url.Values{"grant_type": {"client_credentials"}})
		if r.Status != 503 || r.str("error") != "temporarily_unavailable" {
			t.Fatalf("got %d %s, want 503 temporarily_unavailable", r.Status, r.RawBody)
		}
		if resp, err := http.Get(ts.URL + "/readyz"); err != nil || resp.StatusCode != 503 {
			t.Fatalf("readyz with the store down: %v %v", resp.StatusCode, err)
		}
		// The JWKS is served from memory.
		if resp, err := http.Get(ts.URL + "/.well-known/jwks.json"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("jwks with the store down: %v %v", resp.StatusCode, err)
		}
	})
}

// login returns a fresh refresh token for a password+refresh client.
func login(t *testing.T, ts *testServer, id, sec string) reply {
	t.Helper()
	r := ts.form(t, id, sec, url.Values{"grant_type": {"password"}, "username": {"dave"}, "password": {"dave-password"}})
	if r.Status != 200 || r.str("refresh_token") == "" {
		t.Fatalf("login: %d %s", r.Status, r.RawBody)
	}
	return r
}

func TestSecretRotationGrace(t *testing.T) {
	ts := newTestServer(t)
	id, oldSec := ts.client(t, registry.ClientInput{})
	cc := url.Values{"grant_type": {"client_credentials"}}

	r := ts.admin(t, "POST", "/admin/clients/"+id+"/rotate-secret", `{"grace":"1h"}`)
	newSec := r.str("client_secret")
	if r.Status != 200 || newSec == "" || newSec == oldSec || r.str("previous_secret_valid_until") == "" {
		t.Fatalf("rotate: %d %s", r.Status, r.RawBody)
	}
	for name, s := range map[string]string{"new": newSec, "old in grace": oldSec} {
		if r := ts.form(t, id, s, cc); r.Status != 200 {
			t.Fatalf("%s secret: %d %s", name, r.Status, r.RawBody)
		}
	}
	ts.Clock.Advance(time.Hour + time.Second)
	if r := ts.form(t, id, oldSec, cc); r.Status != 401 {
		t.Fatalf("old secret after grace: %d", r.Status)
	}
	// Without grace the old secret stops at once.
	r = ts.admin(t, "POST", "/admin/clients/"+id+"/rotate-secret", "")
	if r.Status != 200 {
		t.Fatalf("rotate without grace: %d %s", r.Status, r.RawBody)
	}
	if r := ts.form(t, id, newSec, cc); r.Status != 401 {
		t.Fatalf("secret rotated without grace still works: %d", r.Status)
	}
}

func TestMetadataAndHealth(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var md map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&md)
		resp.Body.Close()
		if md["issuer"] != ts.URL || md["token_endpoint"] != ts.URL+"/oauth2/token" || md["jwks_uri"] != ts.URL+"/.well-known/jwks.json" ||
			md["revocation_endpoint"] != ts.URL+"/oauth2/revoke" || md["introspection_endpoint"] != ts.URL+"/oauth2/introspect" {
			t.Fatalf("%s = %v", path, md)
		}
		if algs, _ := md["access_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "RS256" {
			t.Errorf("%s access_token_signing_alg_values_supported = %v, want [RS256]", path, md["access_token_signing_alg_values_supported"])
		}
		// Only what exists: no ID tokens, no authorization endpoint and so no response types.
		for _, absent := range []string{"id_token_signing_alg_values_supported", "authorization_endpoint", "response_types_supported", "userinfo_endpoint"} {
			if v, ok := md[absent]; ok {
				t.Errorf("%s advertises %s = %v", path, absent, v)
			}
		}
		// Every advertised endpoint answers: none is a 404.
		for k, v := range md {
			u, ok := v.(string)
			if !ok || !strings.HasSuffix(k, "_endpoint") && k != "jwks_uri" {
				continue
			}
			method := "POST"
			if k == "jwks_uri" {
				method = "GET"
			}
			req, _ := http.NewRequest(method, u, strings.NewReader(""))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 404 || resp.StatusCode == 405 {
				t.Errorf("%s %s (%s): %d", method, u, k, resp.StatusCode)
			}
		}
	}
	resp, err := http.Get(ts.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Fatalf("JWKS Cache-Control = %q, want a max-age", cc)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/nope": 404} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err = http.Get(ts.URL + "/oauth2/token")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET /oauth2/token: %d, want 405", resp.StatusCode)
	}
}
