package server_test

import (
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/tokensmith/tokensmith/console"
	"github.com/tokensmith/tokensmith/internal/testlog"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/server"
)

// TestHeadAnswersAsGet: every GET route of both listeners answers HEAD (RFC 9110 §9.3.2) with
// the GET's status and header fields and no body, the handler itself writing none, whatever
// the route answers (a page, JSON, a redirect, a refusal, a 404).
func TestHeadAnswersAsGet(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	userID := ts.user(t, "head-user", "head-password")
	clientID, clientSecret := ts.client(t, registry.ClientInput{})
	eps, err := server.ProfileEndpoints(map[string]map[string]string{"atol": nil})
	if err != nil {
		t.Fatal(err)
	}
	// The listeners are built from the test server's parts, the public one with the console
	// and a seed profile mounted, and called directly: the body a handler writes reaches the
	// recorder, where a real connection would drop a HEAD answer's body itself.
	pub := (&server.Public{Issuer: ts.URL, Grants: ts.Grants, Keys: ts.Keys, Store: ts.Store, Metrics: ts.Metrics,
		Log: quiet, Now: ts.Clock.Now, Profiles: eps,
		Console: console.New(console.Options{Passwords: ts.Grants, Registry: ts.Registry, Store: ts.Store,
			Issuer: ts.URL, Log: quiet, Now: ts.Clock.Now}),
	}).Handler()
	adm := (&server.Admin{TokenHash: secret.Hash(testAdminToken), Registry: ts.Registry, Tokens: ts.Grants, Keys: ts.Keys,
		Store: ts.Store, Metrics: ts.Metrics, Log: quiet, Version: "test", Now: ts.Clock.Now}).Handler()
	getToken := "/possystem/v4/getToken?" + url.Values{"login": {clientID}, "pass": {clientSecret}}.Encode()

	tests := []struct {
		name    string
		h       http.Handler
		path    string
		token   string
		status  int
		content string
	}{
		{"health", pub, "/healthz", "", http.StatusOK, "application/json; charset=utf-8"},
		{"readiness", pub, "/readyz", "", http.StatusOK, "application/json; charset=utf-8"},
		{"JWKS", pub, "/.well-known/jwks.json", "", http.StatusOK, "application/jwk-set+json"},
		{"RFC 8414 metadata", pub, "/.well-known/oauth-authorization-server", "", http.StatusOK, "application/json; charset=utf-8"},
		{"OIDC metadata", pub, "/.well-known/openid-configuration", "", http.StatusOK, "application/json; charset=utf-8"},
		{"console sign-in page", pub, "/console/signin", "", http.StatusOK, "text/html; charset=utf-8"},
		{"console home, signed out", pub, "/console/", "", http.StatusSeeOther, "text/html; charset=utf-8"},
		{"console stylesheet", pub, "/console/assets/console.css", "", http.StatusOK, "text/css; charset=utf-8"},
		{"seed profile GET route", pub, getToken, "", http.StatusOK, "application/json; charset=utf-8"},
		{"unknown public path", pub, "/nowhere", "", http.StatusNotFound, "application/json; charset=utf-8"},
		{"admin health", adm, "/healthz", "", http.StatusOK, "application/json; charset=utf-8"},
		{"metrics", adm, "/metrics", "", http.StatusOK, "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"},
		{"version", adm, "/admin/version", testAdminToken, http.StatusOK, "application/json; charset=utf-8"},
		{"version without the admin token", adm, "/admin/version", "", http.StatusUnauthorized, "application/json; charset=utf-8"},
		{"clients", adm, "/admin/clients", testAdminToken, http.StatusOK, "application/json; charset=utf-8"},
		{"one client", adm, "/admin/clients/" + url.PathEscape(clientID), testAdminToken, http.StatusOK, "application/json; charset=utf-8"},
		{"unknown client", adm, "/admin/clients/nobody", testAdminToken, http.StatusNotFound, "application/json; charset=utf-8"},
		{"users", adm, "/admin/users", testAdminToken, http.StatusOK, "application/json; charset=utf-8"},
		{"user by name", adm, "/admin/users?username=head-user", testAdminToken, http.StatusOK, "application/json; charset=utf-8"},
		{"one user", adm, "/admin/users/" + userID, testAdminToken, http.StatusOK, "application/json; charset=utf-8"},
		{"personal tokens", adm, "/admin/users/" + userID + "/tokens", testAdminToken, http.StatusOK, "application/json; charset=utf-8"},
		{"keys", adm, "/admin/keys", testAdminToken, http.StatusOK, "application/json; charset=utf-8"},
		{"replicas", adm, "/admin/replicas", testAdminToken, http.StatusOK, "application/json; charset=utf-8"},
		{"pprof index", adm, "/debug/pprof/", testAdminToken, http.StatusOK, "text/html; charset=utf-8"},
		{"pprof profile", adm, "/debug/pprof/goroutine?debug=1", testAdminToken, http.StatusOK, "text/plain; charset=utf-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			call := func(method string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(method, tc.path, nil)
				if tc.token != "" {
					req.Header.Set("Authorization", "Bearer "+tc.token)
				}
				w := httptest.NewRecorder()
				tc.h.ServeHTTP(w, req)
				return w
			}
			get, head := call(http.MethodGet), call(http.MethodHead)
			if get.Code != tc.status {
				t.Fatalf("GET status: got %d, want %d (%s)", get.Code, tc.status, get.Body)
			}
			if head.Code != get.Code {
				t.Errorf("HEAD status: got %d, want the GET's %d", head.Code, get.Code)
			}
			if got := get.Header().Get("Content-Type"); got != tc.content {
				t.Errorf("GET Content-Type: got %q, want %q", got, tc.content)
			}
			if got, want := head.Header().Get("Content-Type"), get.Header().Get("Content-Type"); got != want {
				t.Errorf("HEAD Content-Type: got %q, want the GET's %q", got, want)
			}
			if got, want := slices.Sorted(maps.Keys(head.Header())), slices.Sorted(maps.Keys(get.Header())); !slices.Equal(got, want) {
				t.Errorf("HEAD header fields: got %q, want the GET's %q", got, want)
			}
			if head.Body.Len() != 0 {
				t.Errorf("HEAD body: got %q, want none", head.Body)
			}
		})
	}
}

// TestHeadOverTheWire: a HEAD health check of either listener, over a real connection, gets
// the GET's 200; a path with no GET route still refuses HEAD, and every 405 lists HEAD beside
// GET where GET is routed. The access log names the method asked, HEAD.
func TestHeadOverTheWire(t *testing.T) {
	t.Parallel()
	var logs testlog.Buffer
	ts := newTestServer(t, withLogs(&logs))
	tests := []struct {
		name, method, url string
		status            int
		allow             string
		// logged is in the access log line (at info: not for the health checks).
		logged string
	}{
		{"public health check", http.MethodHead, ts.URL + "/healthz", http.StatusOK, "", ""},
		{"public readiness check", http.MethodHead, ts.URL + "/readyz", http.StatusOK, "", ""},
		{"admin health check", http.MethodHead, ts.AdminURL + "/healthz", http.StatusOK, "", ""},
		{"JWKS", http.MethodHead, ts.URL + "/.well-known/jwks.json", http.StatusOK, "", "method=HEAD path=/.well-known/jwks.json status=200"},
		{"HEAD where only POST is routed", http.MethodHead, ts.URL + "/oauth2/token", http.StatusMethodNotAllowed, "POST",
			"method=HEAD path=/oauth2/token status=405"},
		{"POST where GET is routed", http.MethodPost, ts.URL + "/healthz", http.StatusMethodNotAllowed, "GET, HEAD", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := send(t, req)
			if r.Status != tc.status {
				t.Errorf("status: got %d, want %d", r.Status, tc.status)
			}
			if got := r.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow: got %q, want %q", got, tc.allow)
			}
			if tc.method == http.MethodHead && r.RawBody != "" {
				t.Errorf("body: got %q, want none", r.RawBody)
			}
			if tc.logged != "" && !logs.Has(tc.logged) {
				t.Errorf("no access log line with %q:\n%s", tc.logged, logs.String())
			}
		})
	}
}
