package console_test

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/testclock"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// TestSecurityHeaders: every console answer carries the CSP, nosniff and no-referrer; pages
// are never cached; the cookies are HttpOnly, SameSite=Strict and limited to /console/, and
// Secure with the __Secure- prefix when browsers come over HTTPS.
func TestSecurityHeaders(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run("secure="+strconv.FormatBool(secure), func(t *testing.T) {
			var opts []envOption
			prefix := ""
			if secure {
				opts, prefix = append(opts, withSecure()), "__Secure-"
			}
			e := newEnv(t, opts...)
			e.user(t, "lena", "lena-password")
			b := e.browserless(t)

			checkHeaders := func(what string, p page, page bool) {
				t.Helper()
				h := p.Header
				if got := h.Get("Content-Security-Policy"); got != wantCSP {
					t.Errorf("%s: CSP %q, want %q", what, got, wantCSP)
				}
				if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
					t.Errorf("%s: nosniff %q, referrer %q, frame options %q", what, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"), h.Get("X-Frame-Options"))
				}
				if page && h.Get("Cache-Control") != "no-store" {
					t.Errorf("%s: Cache-Control %q, want no-store", what, h.Get("Cache-Control"))
				}
				if page && h.Get("Content-Type") != "text/html; charset=utf-8" {
					t.Errorf("%s: Content-Type %q", what, h.Get("Content-Type"))
				}
			}
			checkCookie := func(what string, p page, name string, session bool) *http.Cookie {
				t.Helper()
				for _, c := range (&http.Response{Header: p.Header}).Cookies() {
					if c.Name != name {
						continue
					}
					if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" || c.Secure != secure {
						t.Errorf("%s: cookie %s HttpOnly=%t SameSite=%v Path=%q Secure=%t, want HttpOnly, Strict, /console/, Secure=%t",
							what, name, c.HttpOnly, c.SameSite, c.Path, c.Secure, secure)
					}
					// The session cookie ends with the browser; the store decides when it expires.
					if session && (c.MaxAge != 0 || !c.Expires.IsZero()) {
						t.Errorf("%s: session cookie has Max-Age %d, Expires %s", what, c.MaxAge, c.Expires)
					}
					return c
				}
				t.Fatalf("%s: no cookie %s in %v", what, name, p.Header.Values("Set-Cookie"))
				return nil
			}

			form := b.get("/console/signin")
			checkHeaders("sign-in page", form, true)
			checkCookie("sign-in page", form, prefix+"tokensmith_login", false)
			signedIn := b.post("/console/signin", url.Values{"csrf": {form.csrf(t)}, "username": {"lena"}, "password": {"lena-password"}})
			checkHeaders("sign-in", signedIn, false)
			checkCookie("sign-in", signedIn, prefix+"tokensmith_session", true)
			if secure {
				// The jar does not send Secure cookies over http://; carry the session by hand.
				for _, c := range (&http.Response{Header: signedIn.Header}).Cookies() {
					if c.Name == prefix+"tokensmith_session" {
						c.Secure = false
						u, _ := url.Parse(e.URL + "/console/")
						b.c.Jar.SetCookies(u, []*http.Cookie{c})
					}
				}
			}
			home := b.get("/console/")
			if home.Status != http.StatusOK || !strings.Contains(home.Body, "Integration") {
				t.Fatalf("Integration page: %d\n%s", home.Status, home.Body)
			}
			checkHeaders("Integration page", home, true)
			checkHeaders("not found", b.get("/console/rotate?client=nope"), true)
			for _, asset := range []struct{ path, ctype string }{{"/console/assets/app.js", "text/javascript"}, {"/console/assets/console.css", "text/css"}} {
				p := b.get(asset.path)
				if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), asset.ctype) {
					t.Errorf("%s: %d %q", asset.path, p.Status, p.Header.Get("Content-Type"))
				}
				checkHeaders(asset.path, p, false)
			}
			out := b.post("/console/signout", url.Values{"csrf": {home.csrf(t)}})
			if c := checkCookie("sign-out", out, prefix+"tokensmith_session", false); c.MaxAge >= 0 {
				t.Errorf("sign-out does not clear the session cookie: %+v", c)
			}
		})
	}
}

// TestNoInlineScriptOrStyle: the pages keep to the CSP by construction (no inline script, no
// style attributes), so a browser never has to refuse part of them.
func TestNoInlineScriptOrStyle(t *testing.T) {
	e := newEnv(t)
	uid := e.user(t, "lena", "lena-password", "orders:read")
	e.client(t, uid, "Shop backend")
	b := e.browserless(t)
	home := b.signIn("lena", "lena-password")
	inline := regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|\sstyle=|<style|\son[a-z]+=`)
	for name, p := range map[string]page{"sign-in": e.browserless(t).get("/console/signin"), "integration": home,
		"token": b.post("/console/tokens", url.Values{"csrf": {home.csrf(t)}, "name": {"x"}})} {
		if m := inline.FindString(p.Body); m != "" {
			t.Errorf("%s page has inline script or style: %q", name, m)
		}
	}
}

// TestOwnership: a user sees and changes only their own clients and tokens. Another user's
// client or token id in a form or link is answered exactly as one that does not exist.
func TestOwnership(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	lena := e.user(t, "lena", "lena-password", "orders:read")
	mark := e.user(t, "mark", "mark-password", "orders:read")
	lenaClient, _ := e.client(t, lena, "Lena's shop")
	markClient, markSecret := e.client(t, mark, "Mark's warehouse")
	markToken, err := e.Registry.CreatePersonalToken(ctx, mark, registry.PersonalTokenInput{Name: "mark's CI", Scopes: []string{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	b := e.browserless(t)
	home := b.signIn("lena", "lena-password")
	csrf := home.csrf(t)
	if !strings.Contains(home.Body, lenaClient) || strings.Contains(home.Body, markClient) || strings.Contains(home.Body, "Mark") {
		t.Fatalf("Integration page must list lena's client and not mark's:\n%s", home.Body)
	}
	// The algorithm her API verifies the client's tokens with.
	if !strings.Contains(home.Body, `<code id="client-0-alg">RS256</code>`) {
		t.Fatalf("Integration page does not show the client's token signing algorithm:\n%s", home.Body)
	}

	missing := b.get("/console/rotate?client=no-such-client")
	if missing.Status != http.StatusNotFound {
		t.Fatalf("unknown client: %d", missing.Status)
	}
	for _, tc := range []struct {
		name string
		p    page
	}{
		{"rotate confirmation of mark's client", b.get("/console/rotate?client=" + url.QueryEscape(markClient))},
		{"rotating mark's client", b.post("/console/rotate", url.Values{"csrf": {csrf}, "client_id": {markClient}})},
		{"delete confirmation of mark's token", b.get("/console/tokens/delete?id=" + markToken.ID)},
		{"deleting mark's token", b.post("/console/tokens/delete", url.Values{"csrf": {csrf}, "id": {markToken.ID}})},
	} {
		if tc.p.Status != http.StatusNotFound || tc.p.Body != missing.Body {
			t.Errorf("%s: %d, want the same 404 as for a client that does not exist\n%s", tc.name, tc.p.Status, tc.p.Body)
		}
	}
	if a := e.clientToken(t, markClient, markSecret); a.Status != http.StatusOK {
		t.Fatalf("mark's secret stopped working: %d %v", a.Status, a.Body)
	}
	if l, _ := e.Registry.ListPersonalTokens(ctx, mark); len(l) != 1 {
		t.Fatalf("mark's tokens after lena's attempt: %+v", l)
	}
	// Her own client she may rotate.
	if p := b.post("/console/rotate", url.Values{"csrf": {csrf}, "client_id": {lenaClient}}); p.Status != http.StatusOK || !strings.Contains(p.Body, `id="new-secret"`) {
		t.Fatalf("rotating her own client: %d\n%s", p.Status, p.Body)
	}
}

// TestCSRF: a state-changing form without the session's CSRF token, or with another, is
// refused and changes nothing; so is a sign-in without its login cookie.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	uid := e.user(t, "lena", "lena-password", "orders:read")
	clientID, sec := e.client(t, uid, "shop")
	b := e.browserless(t)
	home := b.signIn("lena", "lena-password")
	other := e.browserless(t).signIn("lena", "lena-password").csrf(t)
	for _, tc := range []struct {
		name string
		path string
		form url.Values
	}{
		{"create token without a token", "/console/tokens", url.Values{"name": {"x"}}},
		{"create token with another session's", "/console/tokens", url.Values{"name": {"x"}, "csrf": {other}}},
		{"rotate without a token", "/console/rotate", url.Values{"client_id": {clientID}}},
		{"sign out without a token", "/console/signout", nil},
	} {
		if p := b.post(tc.path, tc.form); p.Status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, p.Status)
		}
	}
	// A JSON body is no form: it carries no token either.
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/console/tokens", strings.NewReader(`{"name":"x","csrf":"`+home.csrf(t)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	if p := b.do(req); p.Status != http.StatusForbidden {
		t.Errorf("JSON body: %d, want 403", p.Status)
	}
	if l, _ := e.Registry.ListPersonalTokens(context.Background(), uid); len(l) != 0 {
		t.Fatalf("a refused form created tokens: %+v", l)
	}
	if a := e.clientToken(t, clientID, sec); a.Status != http.StatusOK {
		t.Fatalf("a refused form rotated the secret: %d", a.Status)
	}
	if p := b.get("/console/"); p.Status != http.StatusOK {
		t.Fatalf("a refused sign-out ended the session: %d", p.Status)
	}

	// Sign-in: the form's value must match the login cookie.
	fresh := e.browserless(t)
	if p := fresh.post("/console/signin", url.Values{"username": {"lena"}, "password": {"lena-password"}, "csrf": {other}}); p.Status != http.StatusForbidden {
		t.Fatalf("sign-in without the login cookie: %d, want 403", p.Status)
	}
	fresh.get("/console/signin")
	if p := fresh.post("/console/signin", url.Values{"username": {"lena"}, "password": {"lena-password"}, "csrf": {other}}); p.Status != http.StatusForbidden {
		t.Fatalf("sign-in with a value that is not its cookie's: %d, want 403", p.Status)
	}
}

// TestSignInFailuresLookTheSame: a wrong password and an unknown username get the same page
// and status, and both count towards the password grant's backoff.
func TestSignInFailuresLookTheSame(t *testing.T) {
	e := newEnv(t)
	e.user(t, "lena", "lena-password")
	attempt := func(username, password string) page {
		b := e.browserless(t)
		form := b.get("/console/signin")
		return b.post("/console/signin", url.Values{"csrf": {form.csrf(t)}, "username": {username}, "password": {password}})
	}
	wrong, unknown := attempt("lena", "not-her-password"), attempt("nobody", "not-her-password")
	if wrong.Status != http.StatusBadRequest || unknown.Status != wrong.Status {
		t.Fatalf("statuses: wrong password %d, unknown user %d", wrong.Status, unknown.Status)
	}
	alert := regexp.MustCompile(`<p class="error" role="alert" id="signin-error">([^<]*)</p>`)
	w, u := alert.FindStringSubmatch(wrong.Body), alert.FindStringSubmatch(unknown.Body)
	if w == nil || u == nil || w[1] != u[1] || w[1] != "Wrong username or password." {
		t.Fatalf("messages differ or are missing: %q / %q", w, u)
	}
	// The same page but for the username typed back into its field.
	if strings.ReplaceAll(wrong.Body, `value="lena"`, "") != strings.ReplaceAll(strings.ReplaceAll(unknown.Body, `value="nobody"`, ""), csrfOf(unknown), csrfOf(wrong)) {
		t.Errorf("the two pages differ beyond the username")
	}
}

func csrfOf(p page) string {
	m := csrfField.FindStringSubmatch(p.Body)
	if m == nil {
		return "\x00"
	}
	return m[1]
}

// TestSignInSharesTheBackoff: failed console sign-ins slow down the password grant for that
// username and address, and the other way round: one check, one count.
func TestSignInSharesTheBackoff(t *testing.T) {
	e := newEnv(t)
	e.user(t, "lena", "lena-password")
	b := e.browserless(t)
	try := func(password string) page {
		form := b.get("/console/signin")
		return b.post("/console/signin", url.Values{"csrf": {csrfOf(form)}, "username": {"lena"}, "password": {password}})
	}
	for i := range 3 { // FailedLoginLimit in newEnv
		if p := try("wrong"); p.Status != http.StatusBadRequest {
			t.Fatalf("failure %d: %d", i+1, p.Status)
		}
	}
	p := try("lena-password")
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" || !strings.Contains(p.Body, "Too many failed sign-ins") {
		t.Fatalf("after 3 failures even the right password waits: %d Retry-After=%q", p.Status, p.Header.Get("Retry-After"))
	}
	// The password grant sees the same count.
	pw := []string{"password"}
	name := "pw"
	v, err := e.Registry.CreateClient(context.Background(), registry.ClientInput{Name: &name, GrantTypes: &pw})
	if err != nil {
		t.Fatal(err)
	}
	a := e.oauth(t, "/oauth2/token", v.ClientID, v.ClientSecret, url.Values{"grant_type": {"password"}, "username": {"lena"}, "password": {"lena-password"}})
	if a.Status != http.StatusTooManyRequests || a.str("error") != "rate_limited" {
		t.Fatalf("password grant after console failures: %d %v", a.Status, a.Body)
	}
	// The audit trail shows the failures that led to the backoff, as for the password grant.
	var console []string
	for _, ev := range e.Audit.refusals() {
		if ev.Endpoint == "console" && ev.Username == "lena" {
			console = append(console, ev.Error)
		}
	}
	if want := []string{"invalid_grant", "invalid_grant", "invalid_grant", "rate_limited"}; !slices.Equal(console, want) {
		t.Fatalf("console refusals in the audit trail: %v, want %v", console, want)
	}
	e.Clock.Advance(2 * time.Second)
	if p := try("lena-password"); p.Status != http.StatusSeeOther {
		t.Fatalf("after the wait: %d", p.Status)
	}
}

// TestSessionTimeouts: a session ends after 30 minutes unused and 12 hours after sign-in
// however busy, and the idle expiry is written at most once a minute.
func TestSessionTimeouts(t *testing.T) {
	clk := testclock.New(time.Now())
	mem, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	store := &countingStore{Storage: mem}
	e := newEnv(t, withStore(store), withClock(clk))
	e.user(t, "lena", "lena-password")

	t.Run("idle", func(t *testing.T) {
		b := e.browserless(t)
		b.signIn("lena", "lena-password")
		before := store.touches.Load()
		for range 5 {
			clk.Advance(10 * time.Second)
			if p := b.get("/console/"); p.Status != http.StatusOK {
				t.Fatalf("within a minute: %d", p.Status)
			}
		}
		if n := store.touches.Load() - before; n != 0 {
			t.Fatalf("%d writes of the idle expiry within the first minute, want 0", n)
		}
		clk.Advance(20 * time.Second)
		b.get("/console/")
		b.get("/console/")
		if n := store.touches.Load() - before; n != 1 {
			t.Fatalf("%d writes after a minute, want 1", n)
		}
		clk.Advance(29 * time.Minute)
		if p := b.get("/console/"); p.Status != http.StatusOK {
			t.Fatalf("29 minutes after the last use: %d, want the page", p.Status)
		}
		clk.Advance(30*time.Minute + time.Second)
		if p := b.get("/console/"); p.Status != http.StatusSeeOther || p.location() != "/console/signin" {
			t.Fatalf("30 minutes unused: %d %q, want the sign-in page", p.Status, p.location())
		}
	})
	t.Run("absolute", func(t *testing.T) {
		b := e.browserless(t)
		b.signIn("lena", "lena-password")
		for elapsed := time.Duration(0); elapsed < 12*time.Hour-20*time.Minute; elapsed += 20 * time.Minute {
			clk.Advance(20 * time.Minute)
			if p := b.get("/console/"); p.Status != http.StatusOK {
				t.Fatalf("%s after sign-in, used every 20 minutes: %d", elapsed+20*time.Minute, p.Status)
			}
		}
		clk.Advance(20 * time.Minute)
		if p := b.get("/console/"); p.Status != http.StatusSeeOther {
			t.Fatalf("12 hours after sign-in: %d, want the sign-in page", p.Status)
		}
	})
}

// countingStore counts writes of idle expiries.
type countingStore struct {
	storage.Storage
	touches atomic.Int64
}

func (s *countingStore) TouchSession(ctx context.Context, idHash string, idleUntil, now time.Time) error {
	s.touches.Add(1)
	return s.Storage.TouchSession(ctx, idHash, idleUntil, now)
}

// TestSignOutIsRealOnEveryReplica: two replicas share the store; a session signed in on one
// works on the other, and signing out on either ends it on both. The old cookie replayed
// afterwards gets the sign-in page and changes nothing.
func TestSignOutIsRealOnEveryReplica(t *testing.T) {
	mem, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	a, b := newEnv(t, withStore(mem)), newEnv(t, withStore(mem))
	uid := a.user(t, "lena", "lena-password", "orders:read")
	onA := a.browserless(t)
	home := onA.signIn("lena", "lena-password")
	session := sessionCookie(t, onA, a.URL)
	replay := func(env *env, method, path string, form url.Values) page {
		req, _ := http.NewRequest(method, env.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(session)
		return b.browserless(t).do(req)
	}
	if p := replay(b, http.MethodGet, "/console/", nil); p.Status != http.StatusOK {
		t.Fatalf("the session on the other replica: %d", p.Status)
	}
	if p := replay(b, http.MethodPost, "/console/signout", url.Values{"csrf": {home.csrf(t)}}); p.Status != http.StatusSeeOther {
		t.Fatalf("sign-out on the other replica: %d", p.Status)
	}
	for _, env := range []*env{a, b} {
		if p := replay(env, http.MethodGet, "/console/", nil); p.Status != http.StatusSeeOther || p.location() != "/console/signin" {
			t.Fatalf("the signed-out cookie: %d %q, want the sign-in page", p.Status, p.location())
		}
		p := replay(env, http.MethodPost, "/console/tokens", url.Values{"csrf": {home.csrf(t)}, "name": {"replayed"}})
		if p.Status != http.StatusSeeOther || p.location() != "/console/signin" {
			t.Fatalf("a form with the signed-out cookie: %d %q", p.Status, p.location())
		}
	}
	if l, _ := a.Registry.ListPersonalTokens(context.Background(), uid); len(l) != 0 {
		t.Fatalf("a signed-out session created a token: %+v", l)
	}
}

func sessionCookie(t testing.TB, b *browserless, base string) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(base + "/console/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "tokensmith_session" {
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// TestSignInStartsANewSession: the session id is chosen at sign-in, never taken from the
// browser (no fixation), and a session the browser held before ends.
func TestSignInStartsANewSession(t *testing.T) {
	e := newEnv(t)
	e.user(t, "lena", "lena-password")
	first := e.browserless(t)
	first.signIn("lena", "lena-password")
	old := sessionCookie(t, first, e.URL)

	// A sign-in from a browser that still sends the old session (and, say, a planted one).
	b := e.browserless(t)
	form := b.get("/console/signin")
	u, _ := url.Parse(e.URL + "/console/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "tokensmith_session", Value: old.Value, Path: "/console/"}})
	p := b.post("/console/signin", url.Values{"csrf": {form.csrf(t)}, "username": {"lena"}, "password": {"lena-password"}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", p.Status)
	}
	if now := sessionCookie(t, b, e.URL); now.Value == old.Value {
		t.Fatal("the session id was not changed at sign-in")
	}
	if p := first.get("/console/"); p.Status != http.StatusSeeOther {
		t.Fatalf("the session held before sign-in still works: %d", p.Status)
	}
}

// TestSessionEndsWithItsUser: deleting the user, or changing the password, ends its sessions.
func TestSessionEndsWithItsUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	uid := e.user(t, "lena", "lena-password")
	b := e.browserless(t)
	b.signIn("lena", "lena-password")
	e.Clock.Advance(time.Second)
	pw := "new-lena-password"
	if _, err := e.Registry.UpdateUser(ctx, uid, registry.UserUpdate{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/console/"); p.Status != http.StatusSeeOther {
		t.Fatalf("after a password change: %d, want the sign-in page", p.Status)
	}
	e.Clock.Advance(time.Second)
	b.signIn("lena", pw)
	if err := e.Registry.DeleteUser(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/console/"); p.Status != http.StatusSeeOther {
		t.Fatalf("after the user was deleted: %d, want the sign-in page", p.Status)
	}
}

// TestPersonalTokenForm: the token is in the answer that created it and nowhere after; a
// mistake shows the form again with what was entered and why.
func TestPersonalTokenForm(t *testing.T) {
	e := newEnv(t)
	uid := e.user(t, "lena", "lena-password", "orders:read", "orders:write")
	b := e.browserless(t)
	home := b.signIn("lena", "lena-password")
	csrf := home.csrf(t)

	bad := b.post("/console/tokens", url.Values{"csrf": {csrf}, "name": {"  "}, "scope": {"orders:write"}, "expires": {"30d"}})
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Body, `id="create-error"`) ||
		!regexp.MustCompile(`value="orders:write" checked`).MatchString(bad.Body) || !strings.Contains(bad.Body, `value="30d" selected`) {
		t.Fatalf("empty name: %d, want the form again with the error and the choices kept\n%s", bad.Status, bad.Body)
	}
	if p := b.post("/console/tokens", url.Values{"csrf": {csrf}, "name": {"x"}, "scope": {"admin"}}); p.Status != http.StatusBadRequest ||
		!strings.Contains(p.Body, "is not one of the user&#39;s scopes") {
		t.Fatalf("a scope the user does not have: %d\n%s", p.Status, p.Body)
	}
	if p := b.post("/console/tokens", url.Values{"csrf": {csrf}, "name": {"x"}, "expires": {"1000d"}}); p.Status != http.StatusBadRequest {
		t.Fatalf("an expiry not on the list: %d", p.Status)
	}

	created := b.post("/console/tokens", url.Values{"csrf": {csrf}, "name": {"CI deploys"}, "scope": {"orders:read"}, "expires": {"30d"}})
	tok := regexp.MustCompile(`id="new-token">(tsp_[A-Za-z0-9]+)<`).FindStringSubmatch(created.Body)
	if created.Status != http.StatusOK || tok == nil || created.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %q\n%s", created.Status, created.Header.Get("Cache-Control"), created.Body)
	}
	list, _ := e.Registry.ListPersonalTokens(context.Background(), uid)
	if len(list) != 1 || list[0].Name != "CI deploys" || len(list[0].Scopes) != 1 || list[0].ExpiresAt.Sub(list[0].CreatedAt) != 30*24*time.Hour {
		t.Fatalf("stored: %+v", list)
	}
	after := b.get("/console/")
	if strings.Contains(after.Body, tok[1]) || !strings.Contains(after.Body, "CI deploys") {
		t.Fatalf("the list must name the token and never show it")
	}
	// The audit trail names the integrator who made it, not the admin.
	if ev, ok := e.Audit.find(registry.ActionPersonalTokenCreate); !ok || ev.Who != "user:"+uid || ev.Target != list[0].ID {
		t.Fatalf("audit event of the creation: %+v (found %v), want who user:%s", ev, ok, uid)
	}
	if ev, _ := e.Audit.find(registry.ActionUserCreate); ev.Who != "admin" {
		t.Fatalf("a change made outside the console: who %q, want admin", ev.Who)
	}
}

// TestContrast: every text colour of the stylesheet on its background has a contrast ratio of
// at least 4.5:1 (WCAG 2.1 AA for normal text).
func TestContrast(t *testing.T) {
	css, err := os.ReadFile("assets/console.css")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-fA-F]{6});`).FindAllStringSubmatch(string(css), -1) {
		vars[m[1]] = m[2]
	}
	pairs := [][2]string{
		{"fg", "bg"}, {"fg", "surface"}, {"fg", "code-bg"}, {"muted", "bg"}, {"muted", "surface"},
		{"accent", "surface"}, {"accent", "bg"}, {"accent", "code-bg"}, {"accent-hover", "surface"}, {"on-accent", "accent"}, {"on-accent", "accent-hover"},
		{"top-fg", "top-bg"}, {"top-muted", "top-bg"},
		{"error", "error-bg"}, {"ok", "ok-bg"}, {"warn", "warn-bg"}, {"danger", "surface"}, {"on-danger", "danger"},
	}
	for _, p := range pairs {
		fg, bg := vars[p[0]], vars[p[1]]
		if fg == "" || bg == "" {
			t.Fatalf("--%s or --%s is not a #rrggbb colour in console.css", p[0], p[1])
		}
		if r := contrast(fg, bg); r < 4.5 {
			t.Errorf("--%s %s on --%s %s: contrast %.2f, want at least 4.5", p[0], fg, p[1], bg, r)
		}
	}
}

// contrast is the WCAG 2.1 contrast ratio of two #rrggbb colours.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(hex string) float64 {
	ch := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(0) + 0.7152*ch(1) + 0.0722*ch(2)
}

// TestSignInWithLookAlikeUsername: the console signs a user in under any form of its name
// that normalises to it (fullwidth, another case, a combining accent), as the password grant
// does.
func TestSignInWithLookAlikeUsername(t *testing.T) {
	e := newEnv(t)
	e.user(t, "jos\u00e9", "jose-password")
	for _, name := range []string{"jos\u00e9", "ｊｏｓ\u00e9", "JOSE\u0301"} {
		t.Run(name, func(t *testing.T) {
			home := e.browserless(t).signIn(name, "jose-password")
			if !strings.Contains(home.Body, "jos\u00e9") {
				t.Fatalf("the Integration page does not name the user:\n%s", home.Body)
			}
		})
	}
}
