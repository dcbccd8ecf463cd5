package console_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/console"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/internal/testclock"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/replica"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// env is a real public listener on loopback with the console mounted, wired as serve wires
// it: the password check is the token path's, changes go through the registry and its feed.
type env struct {
	URL      string
	Store    storage.Storage
	Registry *registry.Service
	Clock    *testclock.Clock
	// Audit holds the registry's audit events.
	Audit *auditEvents
}

// auditEvents collects audit events as the server's audit Writer would take them.
type auditEvents struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *auditEvents) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

// refusals are the refused sign-ins recorded.
func (a *auditEvents) refusals() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Event
	for _, e := range a.events {
		if e.Kind == audit.TokenRefused {
			out = append(out, e)
		}
	}
	return out
}

// find is the first event of action what, if any.
func (a *auditEvents) find(what string) (audit.Event, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.events {
		if e.What == what {
			return e, true
		}
	}
	return audit.Event{}, false
}

type envOptions struct {
	store  storage.Storage
	secure bool
	clock  *testclock.Clock
}

type envOption func(*envOptions)

func withStore(s storage.Storage) envOption  { return func(o *envOptions) { o.store = s } }
func withSecure() envOption                  { return func(o *envOptions) { o.secure = true } }
func withClock(c *testclock.Clock) envOption { return func(o *envOptions) { o.clock = c } }

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	var o envOptions
	for _, f := range opts {
		f(&o)
	}
	store := o.store
	if store == nil {
		s, err := embedded.OpenMemory()
		if err != nil {
			t.Fatal(err)
		}
		store = s
		t.Cleanup(func() { _ = s.Close() })
	}
	if o.clock == nil {
		o.clock = testclock.New(time.Now())
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	km, _, err := keys.Open(context.Background(), store, keys.Options{PublishAhead: time.Minute}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	bus := replica.NewBus(store, quiet)
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go bus.Run(ctx)
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	e := &env{URL: srv.URL, Store: store, Clock: o.clock, Audit: &auditEvents{}}
	e.Registry = registry.New(store, bus, registry.WithClock(o.clock.Now), registry.WithAuditor(e.Audit))
	gh := grants.NewService(store, km.Set, grants.Policy{
		Issuer: srv.URL, ClientCredentialsTTL: time.Hour, PasswordTTL: time.Hour, RefreshTTL: time.Hour,
		FailedLoginLimit: 3, StoreTimeout: time.Second,
	}, grants.WithClock(o.clock.Now), grants.WithLogger(quiet), grants.WithChangeFeed(bus.Healthy), grants.WithAnnouncer(bus),
		grants.WithAuditor(e.Audit))
	bus.Handle(gh.Forget)
	pub := &server.Public{Issuer: srv.URL, Grants: gh, Keys: km.Set, Store: store, Metrics: metrics.New(), Log: quiet,
		Now: o.clock.Now}
	pub.Console = console.New(console.Options{Passwords: gh, Registry: e.Registry, Store: store, Issuer: srv.URL,
		Secure: o.secure, Log: quiet, Now: o.clock.Now})
	srv.Config.Handler = pub.Handler()
	return e
}

// user creates a user and returns its id.
func (e *env) user(t testing.TB, name, password string, scopes ...string) string {
	t.Helper()
	u, err := e.Registry.CreateUser(context.Background(), registry.UserInput{Username: name, Password: password, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// client creates a client owned by owner that may use client credentials, token exchange and
// introspection, and returns its id and secret.
func (e *env) client(t testing.TB, owner, name string) (string, string) {
	t.Helper()
	grantTypes := []string{protocol.GrantClientCredentials, protocol.GrantTokenExchange}
	scopes := []string{"orders:read"}
	v, err := e.Registry.CreateClient(context.Background(), registry.ClientInput{Name: &name, Owner: &owner,
		GrantTypes: &grantTypes, Scopes: &scopes})
	if err != nil {
		t.Fatal(err)
	}
	return v.ClientID, v.ClientSecret
}

// answer is a decoded JSON answer of the token endpoints.
type answer struct {
	Status int
	Body   map[string]any
}

func (a answer) str(k string) string { s, _ := a.Body[k].(string); return s }

// oauth posts a form to one of the OAuth endpoints with HTTP Basic client authentication.
func (e *env) oauth(t testing.TB, path, id, sec string, form url.Values) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode}
	_ = json.NewDecoder(resp.Body).Decode(&a.Body)
	return a
}

// clientToken asks for a client_credentials token.
func (e *env) clientToken(t testing.TB, id, sec string) answer {
	t.Helper()
	return e.oauth(t, "/oauth2/token", id, sec, url.Values{"grant_type": {protocol.GrantClientCredentials}})
}

// browserless is a cookie-keeping HTTP client that does not follow redirects, to look at the
// console's answers one at a time.
type browserless struct {
	t    testing.TB
	base string
	c    *http.Client
}

func (e *env) browserless(t testing.TB) *browserless {
	jar, _ := cookiejar.New(nil)
	return &browserless{t: t, base: e.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is one console answer.
type page struct {
	Status int
	Header http.Header
	Body   string
}

func (p page) location() string { return p.Header.Get("Location") }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF value of the page's first form.
func (p page) csrf(t testing.TB) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no CSRF field on the page:\n%s", p.Body)
	}
	return m[1]
}

func (b *browserless) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

func (b *browserless) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browserless) post(path string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn signs in through the form and returns the Integration page.
func (b *browserless) signIn(username, password string) page {
	b.t.Helper()
	form := b.get("/console/signin")
	p := b.post("/console/signin", url.Values{"csrf": {form.csrf(b.t)}, "username": {username}, "password": {password}})
	if p.Status != http.StatusSeeOther || p.location() != "/console/" {
		b.t.Fatalf("sign-in as %s: %d %s\n%s", username, p.Status, p.location(), p.Body)
	}
	home := b.get("/console/")
	if home.Status != http.StatusOK {
		b.t.Fatalf("after sign-in: %d\n%s", home.Status, home.Body)
	}
	return home
}
