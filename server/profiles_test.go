package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
)

// allProfiles turns every seed API profile on at its default paths.
var allProfiles = map[string]map[string]string{"rahmet": nil, "tokens-make": nil, "atol": nil}

// raw sends a request the way a seed API's integrator does: method, path, content type, body.
func (ts *testServer) raw(t *testing.T, method, path, contentType, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return send(t, req)
}

// postJSON posts v as JSON to path.
func (ts *testServer) postJSON(t *testing.T, path string, v any) reply {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return ts.raw(t, "POST", path, "application/json", string(b))
}

// kind names the JSON type of a decoded value.
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// shape checks that m has exactly the fields of want, each of the JSON type named.
func shape(t *testing.T, m map[string]any, want map[string]string) {
	t.Helper()
	for k, w := range want {
		v, ok := m[k]
		if !ok || kind(v) != w {
			t.Fatalf("field %q: %v (%s), want a %s; in %v", k, v, kind(v), w, m)
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok {
			t.Fatalf("unexpected field %q in %v", k, m)
		}
	}
}

func obj(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not an object", v)
	}
	return m
}

// TestRahmetAsTheSeedShows drives POST /auth/token exactly as seed 002's example: client_id,
// client_secret and grant_type=client_credentials (as a form and as JSON, the numeric id also
// as a JSON number), answered in the seed's success envelope with its field types.
func TestRahmetAsTheSeedShows(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withStore(open(t)), withProfiles(allProfiles))
			id, sec := ts.client(t, registry.ClientInput{ClientID: ptr("12697011")})
			for _, b := range []struct{ name, contentType, body string }{
				{"form", "application/x-www-form-urlencoded",
					url.Values{"client_id": {id}, "client_secret": {sec}, "grant_type": {"client_credentials"}}.Encode()},
				{"json", "application/json",
					`{"client_id":"12697011","client_secret":"` + sec + `","grant_type":"client_credentials"}`},
				{"json with a numeric id", "application/json",
					`{"client_id":12697011,"client_secret":"` + sec + `","grant_type":"client_credentials"}`},
			} {
				r := ts.raw(t, "POST", "/auth/token", b.contentType, b.body)
				if r.Status != 200 {
					t.Fatalf("%s: %d %s", b.name, r.Status, r.RawBody)
				}
				shape(t, r.Body, map[string]string{"error_code": "number", "status": "string", "message": "string", "data": "object"})
				if r.Body["error_code"] != 0.0 || r.Body["status"] != "success" || r.Body["message"] != "Токен успешно создан" {
					t.Fatalf("%s: envelope %s", b.name, r.RawBody)
				}
				data := obj(t, r.Body["data"])
				shape(t, data, map[string]string{"token_type": "string", "token": "string", "expire_in": "number"})
				// 10800 s is the seed's 3 hours, the client_credentials default.
				if data["token_type"] != "Bearer" || data["expire_in"] != 10800.0 {
					t.Fatalf("%s: data %v", b.name, data)
				}
				if c := verify(t, ts, data["token"].(string)); c.Subject != id || c.ClientID != id {
					t.Fatalf("%s: claims %+v", b.name, c)
				}
				if r.Header.Get("Cache-Control") != "no-store" {
					t.Fatalf("%s: Cache-Control %q", b.name, r.Header.Get("Cache-Control"))
				}
			}
		})
	}
}

// TestRahmetFailures: every refusal in the seed's error envelope, with its documented code.
func TestRahmetFailures(t *testing.T) {
	ts := newTestServer(t, withProfiles(allProfiles))
	id, sec := ts.client(t, registry.ClientInput{ClientID: ptr("12697011"), Scopes: &[]string{"pay"}})
	pwOnly, pwOnlySec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password"}})
	limited, limitedSec := ts.client(t, registry.ClientInput{DailyLimit: ptr(1)})
	form := func(id, sec string, extra ...string) string {
		v := url.Values{"client_id": {id}, "client_secret": {sec}, "grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v.Encode()
	}
	if r := ts.raw(t, "POST", "/auth/token", "application/x-www-form-urlencoded", form(limited, limitedSec)); r.Status != 200 {
		t.Fatalf("the limited client's one token: %d %s", r.Status, r.RawBody)
	}
	const formType = "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        float64
		message     string
	}{
		// The seed's own failure, byte for byte.
		{"wrong secret", formType, form(id, "wrong"), 401, 4, "Client authentication failed"},
		{"unknown client", formType, form("nobody", sec), 401, 4, "Client authentication failed"},
		{"no credentials", formType, "grant_type=client_credentials", 401, 4, "Client authentication failed"},
		{"missing grant_type", formType, url.Values{"client_id": {id}, "client_secret": {sec}}.Encode(), 400, 3, ""},
		{"another grant", formType, form(id, sec, "grant_type", "password"), 400, 2, ""},
		{"client without client_credentials", formType, form(pwOnly, pwOnlySec), 400, 9, ""},
		{"scope not allowed", formType, form(id, sec, "scope", "admin"), 400, 5, ""},
		{"malformed JSON", "application/json", `{"client_id":`, 400, 3, ""},
		{"wrong content type", "text/plain", form(id, sec), 400, 3, ""},
		{"repeated parameter", formType, form(id, sec) + "&client_id=" + id, 400, 3, ""},
		{"daily limit", formType, form(limited, limitedSec), 429, 429, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.raw(t, "POST", "/auth/token", tc.contentType, tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.RawBody)
			}
			shape(t, r.Body, map[string]string{"error_code": "number", "status": "string", "message": "string", "data": "null"})
			if r.Body["error_code"] != tc.code || r.Body["status"] != "error" || r.str("message") == "" {
				t.Fatalf("got %s, want error_code %v", r.RawBody, tc.code)
			}
			if tc.message != "" && r.Body["message"] != tc.message {
				t.Fatalf("message %q, want %q", r.Body["message"], tc.message)
			}
			if tc.code == 4 && strings.TrimSpace(r.RawBody) != `{"error_code":4,"status":"error","message":"Client authentication failed","data":null}` {
				t.Fatalf("not the seed's answer: %s", r.RawBody)
			}
			if tc.status == 429 && (r.Header.Get("Retry-After") == "" || r.Header.Get("X-RateLimit-Remaining") != "0") {
				t.Fatalf("429 without Retry-After or X-RateLimit-Remaining: %v", r.Header)
			}
		})
	}
	t.Run("store unreachable", func(t *testing.T) {
		ts.Store.Close()
		r := ts.raw(t, "POST", "/auth/token", formType, form(id, sec))
		if r.Status != 503 || r.Body["error_code"] != 503.0 || r.Body["status"] != "error" {
			t.Fatalf("got %d %s, want 503 with error_code 503", r.Status, r.RawBody)
		}
	})
}

// TestTokensMakeAsTheSeedShows drives POST /tokens.make with email, password and appId, then
// POST /tokens.refresh with the refreshToken alone, as seed 001 describes, and checks the
// answer's fields and types (end times in unix seconds).
func TestTokensMakeAsTheSeedShows(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withStore(open(t)), withProfiles(allProfiles))
			app, sec := ts.client(t, registry.ClientInput{ClientID: ptr("app-4000"), TokenEndpointAuthMethod: ptr("none"), DailyLimit: ptr(100)})
			if sec != "" {
				t.Fatalf("a public client was given a secret")
			}
			uid := ts.user(t, "ivan@example.com", "ivan-password")
			pairShape := map[string]string{"success": "bool", "accessToken": "string", "accessTokenEndTime": "number",
				"refreshToken": "string", "refreshTokenEndTime": "number"}
			check := func(r reply, what string) {
				t.Helper()
				if r.Status != 200 {
					t.Fatalf("%s: %d %s", what, r.Status, r.RawBody)
				}
				shape(t, r.Body, pairShape)
				now := ts.Clock.Now().Unix()
				if r.Body["success"] != true || r.Body["accessTokenEndTime"] != float64(now+24*3600) ||
					r.Body["refreshTokenEndTime"] != float64(now+14*24*3600) {
					t.Fatalf("%s: %s, want end times %d and %d", what, r.RawBody, now+24*3600, now+14*24*3600)
				}
				if c := verify(t, ts, r.str("accessToken")); c.Subject != uid || c.ClientID != app {
					t.Fatalf("%s: claims %+v", what, c)
				}
			}
			made := ts.postJSON(t, "/tokens.make", map[string]string{"email": "ivan@example.com", "password": "ivan-password", "appId": app})
			check(made, "tokens.make (JSON)")
			form := url.Values{"email": {"ivan@example.com"}, "password": {"ivan-password"}, "appId": {app}}.Encode()
			check(ts.raw(t, "POST", "/tokens.make", "application/x-www-form-urlencoded", form), "tokens.make (form)")

			ts.Clock.Advance(time.Hour)
			refreshed := ts.postJSON(t, "/tokens.refresh", map[string]string{"refreshToken": made.str("refreshToken")})
			check(refreshed, "tokens.refresh")
			if refreshed.str("refreshToken") == made.str("refreshToken") || refreshed.str("accessToken") == made.str("accessToken") {
				t.Fatal("tokens.refresh answered the old pair")
			}
			// The new refresh token works in turn.
			ts.Clock.Advance(time.Hour)
			check(ts.postJSON(t, "/tokens.refresh", map[string]string{"refreshToken": refreshed.str("refreshToken")}), "second tokens.refresh")
		})
	}
}

// TestTokensMakeFailures: every refusal of both routes in the seed's error envelope.
func TestTokensMakeFailures(t *testing.T) {
	ts := newTestServer(t, withProfiles(allProfiles))
	app, _ := ts.client(t, registry.ClientInput{TokenEndpointAuthMethod: ptr("none"), DailyLimit: ptr(2)})
	other, _ := ts.client(t, registry.ClientInput{TokenEndpointAuthMethod: ptr("none")})
	refreshOnly, _ := ts.client(t, registry.ClientInput{TokenEndpointAuthMethod: ptr("none"), GrantTypes: &[]string{"refresh_token"}})
	conf, confSec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password", "refresh_token"}})
	ts.user(t, "ivan@example.com", "ivan-password")
	ts.user(t, "olga@example.com", "olga-password")
	ts.user(t, "petr@example.com", "petr-password")
	makeTokens := func(email, pw, appID string) reply {
		return ts.postJSON(t, "/tokens.make", map[string]string{"email": email, "password": pw, "appId": appID})
	}
	first := makeTokens("ivan@example.com", "ivan-password", app)
	if first.Status != 200 {
		t.Fatalf("first tokens.make: %d %s", first.Status, first.RawBody)
	}
	used := first.str("refreshToken")
	if r := ts.postJSON(t, "/tokens.refresh", map[string]string{"refreshToken": used}); r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.RawBody)
	}
	ts.Clock.Advance(6 * time.Second) // past the grace window: the used token is a replay now
	confLogin := ts.form(t, conf, confSec, url.Values{"grant_type": {"password"}, "username": {"petr@example.com"}, "password": {"petr-password"}})

	tests := []struct {
		name    string
		path    string
		body    map[string]string
		status  int
		code    string
		message string
	}{
		{"make: no email", "/tokens.make", map[string]string{"password": "x", "appId": app}, 400, "ApiValidationError", "email, password and appId are required"},
		{"make: wrong password", "/tokens.make", map[string]string{"email": "olga@example.com", "password": "wrong-password", "appId": app}, 400, "ApiInvalidCredentialsError", "Invalid email or password"},
		{"make: unknown email", "/tokens.make", map[string]string{"email": "nobody@example.com", "password": "whatever1", "appId": app}, 400, "ApiInvalidCredentialsError", "Invalid email or password"},
		{"make: unknown appId", "/tokens.make", map[string]string{"email": "olga@example.com", "password": "olga-password", "appId": "nope"}, 401, "ApiInvalidAppIdError", "Invalid appId"},
		{"make: appId of a confidential client", "/tokens.make", map[string]string{"email": "olga@example.com", "password": "olga-password", "appId": conf}, 401, "ApiInvalidAppIdError", "Invalid appId"},
		{"make: app without the password grant", "/tokens.make", map[string]string{"email": "olga@example.com", "password": "olga-password", "appId": refreshOnly}, 400, "ApiAccessDeniedError", ""},
		{"refresh: no refreshToken", "/tokens.refresh", map[string]string{}, 400, "ApiValidationError", "refreshToken is required"},
		{"refresh: not a refresh token", "/tokens.refresh", map[string]string{"refreshToken": "garbage"}, 400, "ApiInvalidRefreshTokenError", ""},
		{"refresh: replayed", "/tokens.refresh", map[string]string{"refreshToken": used}, 400, "ApiInvalidRefreshTokenError", "refresh token was already used; every token of its login has been revoked"},
		{"refresh: of a confidential client", "/tokens.refresh", map[string]string{"refreshToken": confLogin.str("refresh_token")}, 401, "ApiInvalidAppIdError", ""},
		{"refresh: another app's appId", "/tokens.refresh", map[string]string{"refreshToken": first.str("refreshToken"), "appId": other}, 400, "ApiInvalidRefreshTokenError", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkTokensError(t, ts.postJSON(t, tc.path, tc.body), tc.status, tc.code, tc.message)
		})
	}
	t.Run("make: 100 a day is the daily limit (2 here)", func(t *testing.T) {
		if r := makeTokens("ivan@example.com", "ivan-password", app); r.Status != 200 {
			t.Fatalf("second token of the day: %d %s", r.Status, r.RawBody)
		}
		r := makeTokens("ivan@example.com", "ivan-password", app)
		checkTokensError(t, r, 429, "ApiTokensLimitError", "")
		if !strings.Contains(r.RawBody, "daily limit of 2") || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %v", r.RawBody, r.Header)
		}
		// Per (email, appId): another user of the app and the same user of another app go on.
		if r := makeTokens("olga@example.com", "olga-password", app); r.Status != 200 {
			t.Fatalf("another email: %d %s", r.Status, r.RawBody)
		}
		if r := makeTokens("ivan@example.com", "ivan-password", other); r.Status != 200 {
			t.Fatalf("another appId: %d %s", r.Status, r.RawBody)
		}
	})
	t.Run("make: failed-login backoff", func(t *testing.T) {
		for range 3 {
			makeTokens("petr@example.com", "wrong-password", other)
		}
		r := makeTokens("petr@example.com", "petr-password", other)
		checkTokensError(t, r, 429, "ApiTokensLimitError", "too many failed logins for this username, retry later")
	})
	t.Run("store unreachable", func(t *testing.T) {
		ts.Store.Close()
		checkTokensError(t, makeTokens("olga@example.com", "olga-password", app), 503, "ApiServiceUnavailableError", "")
	})
}

func checkTokensError(t *testing.T, r reply, status int, code, message string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.RawBody)
	}
	shape(t, r.Body, map[string]string{"success": "bool", "error": "object"})
	e := obj(t, r.Body["error"])
	shape(t, e, map[string]string{"code": "string", "message": "string"})
	if r.Body["success"] != false || e["code"] != code || e["message"] == "" {
		t.Fatalf("got %s, want code %s", r.RawBody, code)
	}
	if message != "" && e["message"] != message {
		t.Fatalf("message %q, want %q", e["message"], message)
	}
}

var atolTimestamp = regexp.MustCompile(`^\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d$`)

// atolTime is what ATOL's timestamp says for t: Moscow time, dd.mm.yyyy HH:MM:SS.
func atolTime(t time.Time) string {
	return t.In(time.FixedZone("MSK", 3*3600)).Format("02.01.2006 15:04:05")
}

// TestAtolAsTheSeedShows drives getToken as ATOL Online's protocol v4 does: JSON login and
// pass (also a form, and GET with query parameters), answered {"error":null,"token","timestamp"};
// asking again while the token is valid answers the same token with its first timestamp.
func TestAtolAsTheSeedShows(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withStore(open(t)), withProfiles(allProfiles))
			ts.Clock.Set(time.Date(2017, 11, 30, 14, 58, 53, 0, time.UTC))
			login, pass := ts.client(t, registry.ClientInput{ClientID: ptr("v4-online-atol-ru"), Reuse: ptr(true), AccessTokenTTL: ptr("24h")})
			check := func(r reply, what string) (string, string) {
				t.Helper()
				if r.Status != 200 {
					t.Fatalf("%s: %d %s", what, r.Status, r.RawBody)
				}
				shape(t, r.Body, map[string]string{"error": "null", "token": "string", "timestamp": "string"})
				if !atolTimestamp.MatchString(r.str("timestamp")) || len(r.str("token")) > 1000 {
					t.Fatalf("%s: %s", what, r.RawBody)
				}
				c := verify(t, ts, r.str("token"))
				if c.Subject != login || atolTime(c.IssuedAt.Time()) != r.str("timestamp") {
					t.Fatalf("%s: claims %+v, timestamp %s", what, c, r.str("timestamp"))
				}
				return r.str("token"), r.str("timestamp")
			}
			tok, stamp := check(ts.postJSON(t, "/possystem/v4/getToken", map[string]string{"login": login, "pass": pass}), "getToken (JSON)")
			if stamp != "30.11.2017 17:58:53" {
				t.Fatalf("timestamp %s, want the seed's format in Moscow time", stamp)
			}
			// Ten hours later the same token is answered, with the time it was first given out.
			ts.Clock.Advance(10 * time.Hour)
			again, againStamp := check(ts.raw(t, "POST", "/possystem/v4/getToken", "application/x-www-form-urlencoded",
				url.Values{"login": {login}, "pass": {pass}}.Encode()), "getToken (form)")
			got, gotStamp := check(ts.raw(t, "GET", "/possystem/v4/getToken?"+url.Values{"login": {login}, "pass": {pass}}.Encode(), "", ""), "getToken (GET)")
			if again != tok || got != tok || againStamp != stamp || gotStamp != stamp {
				t.Fatal("asking again while the token is valid did not answer it")
			}
			// Once it has expired, a new one.
			ts.Clock.Advance(14*time.Hour + time.Second)
			fresh, freshStamp := check(ts.postJSON(t, "/possystem/v4/getToken", map[string]string{"login": login, "pass": pass}), "after expiry")
			if fresh == tok || freshStamp != "01.12.2017 17:58:54" {
				t.Fatalf("after expiry: same token or timestamp %s", freshStamp)
			}
		})
	}
}

// TestAtolTokensPerReplica: with N live replicas a client holds up to N valid tokens, so near
// the end of its token's life it may get a new one, as ATOL's description says.
func TestAtolTokensPerReplica(t *testing.T) {
	for _, tc := range []struct {
		replicas int
		wantNew  bool
	}{{1, false}, {2, true}} {
		t.Run(fmt.Sprint("replicas=", tc.replicas), func(t *testing.T) {
			ts := newTestServer(t, withProfiles(allProfiles), withReplicas(tc.replicas))
			login, pass := ts.client(t, registry.ClientInput{Reuse: ptr(true), AccessTokenTTL: ptr("24h")})
			ask := func() string {
				r := ts.postJSON(t, "/possystem/v4/getToken", map[string]string{"login": login, "pass": pass})
				if r.Status != 200 {
					t.Fatalf("%d %s", r.Status, r.RawBody)
				}
				return r.str("token")
			}
			first := ask()
			// Under reuse_min_remaining (5 min) left: a replica's slot is free only with 2.
			ts.Clock.Advance(24*time.Hour - 4*time.Minute)
			if got := ask(); (got != first) != tc.wantNew {
				t.Fatalf("new token near expiry = %v, want %v", got != first, tc.wantNew)
			}
		})
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestAtolFailures: every refusal in ATOL's error object with its documented code.
func TestAtolFailures(t *testing.T) {
	ts := newTestServer(t, withProfiles(allProfiles))
	ts.Clock.Set(time.Date(2017, 11, 30, 14, 58, 53, 0, time.UTC))
	login, pass := ts.client(t, registry.ClientInput{})
	noCC, noCCPass := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password"}})
	limited, limitedPass := ts.client(t, registry.ClientInput{DailyLimit: ptr(1)})
	if r := ts.postJSON(t, "/possystem/v4/getToken", map[string]string{"login": limited, "pass": limitedPass}); r.Status != 200 {
		t.Fatalf("the limited client's one token: %d %s", r.Status, r.RawBody)
	}
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        float64
		text        string
	}{
		{"wrong pass", "application/json", `{"login":"` + login + `","pass":"wrong"}`, 401, 12, "Неверный логин или пароль"},
		{"unknown login", "application/json", `{"login":"nobody","pass":"` + pass + `"}`, 401, 12, "Неверный логин или пароль"},
		{"missing pass", "application/json", `{"login":"` + login + `"}`, 400, 13, "login and pass are required"},
		{"malformed JSON", "application/json", `{"login":`, 400, 13, ""},
		{"wrong content type", "text/plain", `{"login":"` + login + `","pass":"` + pass + `"}`, 400, 13, ""},
		{"client without client_credentials", "application/json", `{"login":"` + noCC + `","pass":"` + noCCPass + `"}`, 400, 14, ""},
		{"daily limit", "application/json", `{"login":"` + limited + `","pass":"` + limitedPass + `"}`, 429, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkAtolError(t, ts.raw(t, "POST", "/possystem/v4/getToken", tc.contentType, tc.body), tc.status, tc.code, tc.text)
		})
	}
	t.Run("store unreachable", func(t *testing.T) {
		ts.Store.Close()
		checkAtolError(t, ts.postJSON(t, "/possystem/v4/getToken", map[string]string{"login": login, "pass": pass}), 503, 0,
			"Сервис временно недоступен, повторите запрос позже")
	})
}

func checkAtolError(t *testing.T, r reply, status int, code float64, text string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.RawBody)
	}
	shape(t, r.Body, map[string]string{"error": "object", "token": "null", "timestamp": "string"})
	e := obj(t, r.Body["error"])
	shape(t, e, map[string]string{"error_id": "string", "code": "number", "text": "string", "type": "string"})
	if e["code"] != code || e["type"] != "system" || e["text"] == "" || !uuidV4.MatchString(e["error_id"].(string)) {
		t.Fatalf("got %s, want code %v", r.RawBody, code)
	}
	if text != "" && e["text"] != text {
		t.Fatalf("text %q, want %q", e["text"], text)
	}
	if r.str("timestamp") != "30.11.2017 17:58:53" {
		t.Fatalf("timestamp %q, want the time of the answer in Moscow time", r.str("timestamp"))
	}
}

// TestProfileTokensAreLikeAnyOther: a token from each profile verifies against the JWKS and
// introspects like any other.
func TestProfileTokensAreLikeAnyOther(t *testing.T) {
	ts := newTestServer(t, withProfiles(allProfiles))
	cid, csec := ts.client(t, registry.ClientInput{})
	app, _ := ts.client(t, registry.ClientInput{TokenEndpointAuthMethod: ptr("none")})
	uid := ts.user(t, "ivan@example.com", "ivan-password")
	api, apiSec := ts.client(t, registry.ClientInput{ResourceServer: ptr(true)})
	tokens := []struct {
		name, token, client, subject string
	}{
		{"rahmet", obj(t, ts.postJSON(t, "/auth/token", map[string]string{"client_id": cid, "client_secret": csec, "grant_type": "client_credentials"}).Body["data"])["token"].(string), cid, cid},
		{"atol", ts.postJSON(t, "/possystem/v4/getToken", map[string]string{"login": cid, "pass": csec}).str("token"), cid, cid},
		{"tokens-make", ts.postJSON(t, "/tokens.make", map[string]string{"email": "ivan@example.com", "password": "ivan-password", "appId": app}).str("accessToken"), app, uid},
	}
	for _, tc := range tokens {
		t.Run(tc.name, func(t *testing.T) {
			c := verify(t, ts, tc.token)
			if c.Subject != tc.subject || c.ClientID != tc.client {
				t.Fatalf("claims %+v", c)
			}
			r := ts.introspect(t, api, apiSec, tc.token)
			if r.Status != 200 || r.Body["active"] != true || r.str("client_id") != tc.client || r.str("sub") != tc.subject {
				t.Fatalf("introspection: %d %s", r.Status, r.RawBody)
			}
			// Revoked through the standard endpoint, it is inactive like any other.
			if tc.client == cid {
				if r := ts.revoke(t, cid, csec, tc.token); r.Status != 200 {
					t.Fatalf("revoke: %d %s", r.Status, r.RawBody)
				}
				if r := ts.introspect(t, api, apiSec, tc.token); r.Body["active"] != false {
					t.Fatalf("introspection after revocation: %s", r.RawBody)
				}
			}
		})
	}
}

// TestProfilesShareReuseAndQuota: one client seen through /oauth2/token and through the
// profiles has one reuse pool and one count.
func TestProfilesShareReuseAndQuota(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withStore(open(t)), withProfiles(allProfiles))
			cc := url.Values{"grant_type": {"client_credentials"}}

			// Reuse: the token of /oauth2/token is the one getToken and /auth/token answer.
			rid, rsec := ts.client(t, registry.ClientInput{Reuse: ptr(true)})
			std := ts.form(t, rid, rsec, cc).str("access_token")
			viaAtol := ts.postJSON(t, "/possystem/v4/getToken", map[string]string{"login": rid, "pass": rsec}).str("token")
			viaRahmet := obj(t, ts.postJSON(t, "/auth/token", map[string]string{"client_id": rid, "client_secret": rsec, "grant_type": "client_credentials"}).Body["data"])["token"]
			if std == "" || viaAtol != std || viaRahmet != std {
				t.Fatalf("one pool: /oauth2/token %.20s…, getToken %.20s…, /auth/token %.20v…", std, viaAtol, viaRahmet)
			}

			// Quota: three new tokens of a limit of three, one through each door; the fourth is
			// refused at every door.
			lid, lsec := ts.client(t, registry.ClientInput{DailyLimit: ptr(3)})
			rahmet := func() reply {
				return ts.postJSON(t, "/auth/token", map[string]string{"client_id": lid, "client_secret": lsec, "grant_type": "client_credentials"})
			}
			atol := func() reply {
				return ts.postJSON(t, "/possystem/v4/getToken", map[string]string{"login": lid, "pass": lsec})
			}
			std3 := func() reply { return ts.form(t, lid, lsec, cc) }
			for i, call := range []func() reply{std3, rahmet, atol} {
				r := call()
				if r.Status != 200 || r.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
					t.Fatalf("token %d: %d %s, X-RateLimit-Remaining %q", i+1, r.Status, r.RawBody, r.Header.Get("X-RateLimit-Remaining"))
				}
			}
			for i, call := range []func() reply{std3, rahmet, atol} {
				if r := call(); r.Status != 429 {
					t.Fatalf("door %d after the limit: %d %s", i, r.Status, r.RawBody)
				}
			}

			// A public app's user: /oauth2/token and tokens.make count together.
			app, _ := ts.client(t, registry.ClientInput{TokenEndpointAuthMethod: ptr("none"), DailyLimit: ptr(2)})
			ts.user(t, "ivan@example.com", "ivan-password")
			pw := url.Values{"grant_type": {"password"}, "client_id": {app}, "username": {"ivan@example.com"}, "password": {"ivan-password"}}
			if r := ts.postTo(t, "/oauth2/token", pw.Encode()); r.Status != 200 {
				t.Fatalf("public client at /oauth2/token: %d %s", r.Status, r.RawBody)
			}
			mk := map[string]string{"email": "ivan@example.com", "password": "ivan-password", "appId": app}
			if r := ts.postJSON(t, "/tokens.make", mk); r.Status != 200 {
				t.Fatalf("tokens.make: %d %s", r.Status, r.RawBody)
			}
			if r := ts.postJSON(t, "/tokens.make", mk); r.Status != 429 {
				t.Fatalf("third of two: %d %s", r.Status, r.RawBody)
			}
			if r := ts.postTo(t, "/oauth2/token", pw.Encode()); r.Status != 429 {
				t.Fatalf("third of two at /oauth2/token: %d %s", r.Status, r.RawBody)
			}
		})
	}
}

// TestProfilesOffByDefaultAndPathsConfigurable: without configuration no profile route
// exists; a configured path replaces the default.
func TestProfilesOffByDefaultAndPathsConfigurable(t *testing.T) {
	off := newTestServer(t)
	for _, p := range []string{"/auth/token", "/tokens.make", "/tokens.refresh", "/possystem/v4/getToken"} {
		if r := off.raw(t, "POST", p, "application/json", `{}`); r.Status != 404 {
			t.Fatalf("%s without profiles: %d", p, r.Status)
		}
	}
	on := newTestServer(t, withProfiles(map[string]map[string]string{"atol": {"token": "/v4/getToken"}}))
	login, pass := on.client(t, registry.ClientInput{})
	if r := on.postJSON(t, "/v4/getToken", map[string]string{"login": login, "pass": pass}); r.Status != 200 || r.str("token") == "" {
		t.Fatalf("configured path: %d %s", r.Status, r.RawBody)
	}
	if r := on.postJSON(t, "/possystem/v4/getToken", map[string]string{"login": login, "pass": pass}); r.Status != 404 {
		t.Fatalf("default path still served: %d", r.Status)
	}
	if r := on.postJSON(t, "/auth/token", map[string]string{}); r.Status != 404 {
		t.Fatalf("a profile not turned on is served: %d", r.Status)
	}
}

// TestProfileRefusalsAreAudited: a profile request refused before it reaches a grant (a
// missing field) is in the audit trail like the same refusal at /oauth2/token.
func TestProfileRefusalsAreAudited(t *testing.T) {
	ts := newTestServer(t, withProfiles(allProfiles))
	if r := ts.postJSON(t, "/tokens.make", map[string]string{"password": "x", "appId": "abc"}); r.Status != 400 {
		t.Fatalf("tokens.make without an email: %d %s", r.Status, r.RawBody)
	}
	raw, events := ts.auditTrail(t)
	for _, e := range events {
		if e.Kind == audit.TokenRefused && e.Endpoint == grants.EndpointToken && e.Error == protocol.InvalidRequest {
			return
		}
	}
	t.Fatalf("no token.refused invalid_request event; the trail:\n%s", raw)
}
