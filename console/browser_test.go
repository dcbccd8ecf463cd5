package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
)

// The browser tests drive Debian's headless Chromium through chromedp. One Chromium serves
// the whole package; every test gets its own browser context (its own cookies) in it. Without
// Chromium they are skipped, unless TOKENSMITH_REQUIRE_BROWSER=1 (as in CI), where they fail.

var updateScreenshot = flag.Bool("update-screenshot", false, "write the docs' screenshots of the Integration page to ../docs/")

var browser struct {
	once sync.Once
	ctx  context.Context
	stop func()
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if browser.stop != nil {
		browser.stop()
	}
	if browser.dir != "" {
		// Chromium's helpers may still write there for a moment after it stops.
		for range 50 {
			if os.RemoveAll(browser.dir) == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// chromiumPath finds the browser: Debian's chromium package, or another Chrome on the PATH.
func chromiumPath() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium, chromium-browser or google-chrome on the PATH (Debian: apt-get install chromium)")
}

func startBrowser() {
	path, err := chromiumPath()
	if err != nil {
		browser.err = err
		return
	}
	// Everything Chromium writes goes under one directory, removed when the tests end: the
	// profile, and through TMPDIR the directory of its singleton socket, which it would leave
	// in the system's temp folder when stopped.
	if browser.dir, err = os.MkdirTemp("", "tokensmith-chromium"); err != nil {
		browser.err = err
		return
	}
	tmp := filepath.Join(browser.dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		browser.err = err
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(filepath.Join(browser.dir, "profile")),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.DisableGPU,
		// Root in a container has no sandbox to drop into; the pages are our own.
		chromedp.NoSandbox,
		// This machine has no network beyond loopback: nothing for Chromium to phone home to.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	browser.ctx, browser.stop = ctx, func() { cancelCtx(); cancelAlloc() }
	// The first run starts the browser; it must not carry a timeout, which would stop it.
	start := make(chan error, 1)
	go func() { start <- chromedp.Do(ctx) }()
	select {
	case browser.err = <-start:
	case <-time.After(60 * time.Second):
		browser.err = errors.New("chromium did not start within 60s")
	}
	if browser.err != nil {
		browser.err = fmt.Errorf("starting %s: %w", path, browser.err)
	}
}

// tab is one browser tab, in a browser context of its own, for one test.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// newTab opens a tab, or skips (fails under TOKENSMITH_REQUIRE_BROWSER=1) without Chromium.
// When the test fails, a screenshot of the tab is saved and its path logged.
func newTab(t *testing.T) *tab {
	t.Helper()
	browser.once.Do(startBrowser)
	if browser.err != nil {
		if os.Getenv("TOKENSMITH_REQUIRE_BROWSER") == "1" {
			t.Fatalf("TOKENSMITH_REQUIRE_BROWSER=1 but the browser is missing: %v", browser.err)
		}
		t.Skipf("no browser (set TOKENSMITH_REQUIRE_BROWSER=1 to fail instead): %v", browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	b := &tab{t: t, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshot of the page at the failure: %s", b.screenshot())
		}
	})
	return b
}

// stepTimeout bounds one group of browser steps.
const stepTimeout = 30 * time.Second

func (b *tab) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// value runs one step that reads something from the page.
func value[T any](b *tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text is the visible text of the element sel.
func (b *tab) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(value(b, "reading "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// html is the whole document as the browser has it now.
func (b *tab) html() string {
	b.t.Helper()
	return value(b, "reading the page", chromedp.OuterHTML(chromedp.CSS("html")))
}

// follow clicks sel, which loads a page, and waits for that page's element next.
func follow(sel, next string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))(ctx, t)
			return err
		}),
		chromedp.WaitVisible(chromedp.CSS(next)),
	)
}

// screenshot saves the tab as it is now under testdata/failures (not committed) and returns
// the path.
func (b *tab) screenshot() string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "(no screenshot: " + err.Error() + ")"
	}
	dir, _ := filepath.Abs(filepath.Join("testdata", "failures"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "(no screenshot: " + err.Error() + ")"
	}
	path := filepath.Join(dir, regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(b.t.Name(), "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "(no screenshot: " + err.Error() + ")"
	}
	return path
}

// cookies are the browser's cookies for the console, HttpOnly ones included.
func (b *tab) cookies(base string) []*network.Cookie {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/console/"}})
	if err != nil {
		b.t.Fatalf("reading cookies: %v", err)
	}
	return res.Cookies
}

func (b *tab) signIn(base, username, password string) {
	b.t.Helper()
	b.run("signing in",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#page-signin")),
		chromedp.SendKeys(chromedp.CSS("#username"), username),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		follow("#sign-in", "#page-integration"),
	)
}

// TestIntegratorFlow goes through the console as an integrator would: sign in, read the client
// id, regenerate the secret and get a token with it, create a personal token, read it off the
// page and use it, see it gone from the page, delete it and see it refused; a form without its
// CSRF token is refused, and after signing out the old cookie is worthless.
func TestIntegratorFlow(t *testing.T) {
	e := newEnv(t)
	lena := e.user(t, "lena", "lena-password", "orders:read", "orders:write")
	clientID, oldSecret := e.client(t, lena, "Shop backend")
	b := newTab(t)

	b.signIn(e.URL, "lena", "lena-password")
	if got := b.text("#signed-in-user"); got != "lena" {
		t.Fatalf("signed in as %q", got)
	}
	if got := b.text("#client-0-id"); got != clientID {
		t.Fatalf("client id on the page %q, want %q", got, clientID)
	}
	if js := value(b, "document.cookie", chromedp.Evaluate[string]("document.cookie")); strings.Contains(js, "tokensmith") {
		t.Fatalf("the page's script can read a console cookie: %q", js)
	}

	// Regenerate the secret; the new one works at once and the old one, with no grace, no more.
	b.run("regenerating the secret",
		follow("#rotate-0", "#page-rotate"),
		follow("#confirm-rotate", "#page-secret"),
	)
	newSecret := b.text("#new-secret")
	if b.text("#new-client-id") != clientID || newSecret == "" || newSecret == oldSecret {
		t.Fatalf("secret page shows client %q, secret %q", b.text("#new-client-id"), newSecret)
	}
	if a := e.clientToken(t, clientID, newSecret); a.Status != http.StatusOK || a.str("access_token") == "" {
		t.Fatalf("token with the new secret: %d %v", a.Status, a.Body)
	}
	if a := e.clientToken(t, clientID, oldSecret); a.Status != http.StatusUnauthorized {
		t.Fatalf("token with the old secret: %d, want 401", a.Status)
	}
	b.run("back to the list", follow("#saved", "#page-integration"))

	// A personal token: created, read off the page once, used.
	b.run("creating a personal token",
		chromedp.SendKeys(chromedp.CSS("#token-name"), "CI deploys"),
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="orders:read"]`)),
		chromedp.SetValue(chromedp.CSS("#token-expires"), "30d"),
		follow("#create", "#page-token"),
	)
	pat := b.text("#new-token")
	if !strings.HasPrefix(pat, "tsp_") {
		t.Fatalf("token on the page: %q", pat)
	}
	// The copy button puts exactly the token on the clipboard.
	b.allowClipboard(e.URL)
	b.run("copying the token", chromedp.Click(chromedp.CSS(`button[data-copy="new-token"]`)),
		chromedp.WaitVisible(chromedp.Search(`//button[@data-copy="new-token" and text()="Copied"]`)))
	if got := value(b, "reading the clipboard", chromedp.Evaluate[string]("navigator.clipboard.readText()", chromedp.EvalAwaitPromise)); got != pat {
		t.Fatalf("clipboard holds %q, want the token", got)
	}
	in := e.oauth(t, "/oauth2/introspect", clientID, newSecret, url.Values{"token": {pat}})
	if in.Status != http.StatusOK || in.Body["active"] != true || in.str("token_type") != "personal_token" || in.str("scope") != "orders:read" {
		t.Fatalf("introspecting the personal token: %d %v", in.Status, in.Body)
	}
	exchange := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {pat},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}
	if a := e.oauth(t, "/oauth2/token", clientID, newSecret, exchange); a.Status != http.StatusOK || a.str("access_token") == "" {
		t.Fatalf("exchanging the personal token: %d %v", a.Status, a.Body)
	}

	// "I have saved it": the list names the token and never shows it again, neither after a
	// reload nor through the back button.
	b.run("I have saved it", follow("#saved", "#page-integration"))
	if name := b.text(".token-name"); name != "CI deploys" {
		t.Fatalf("the list does not name the token: %q", name)
	}
	if strings.Contains(b.html(), pat) {
		t.Fatal("the token is still on the Integration page")
	}
	b.run("reloading", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#page-integration")))
	if strings.Contains(b.html(), pat) {
		t.Fatal("the token is on the page after a reload")
	}
	back := func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		return chromedp.Do(ctx, chromedp.NavigateBack())
	}
	// Chromium does not keep a no-store answer to a POST: going back asks to send the form
	// again (ERR_CACHE_MISS) instead of showing the token.
	if err := back(); err != nil && !strings.Contains(err.Error(), "ERR_CACHE_MISS") {
		t.Fatalf("back button: %v", err)
	}
	if strings.Contains(b.html(), pat) {
		t.Fatal("the back button shows the token again")
	}

	// A form sent without its CSRF token, with the browser's own session cookie, is refused.
	var session *http.Cookie
	for _, c := range b.cookies(e.URL) {
		if c.Name == "tokensmith_session" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/console/" {
				t.Fatalf("session cookie in the browser: %+v", c)
			}
			session = &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	if session == nil {
		t.Fatal("the browser holds no session cookie")
	}
	post := func(path string, form url.Values) page {
		req, _ := http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(session)
		return e.browserless(t).do(req)
	}
	if p := post("/console/tokens", url.Values{"name": {"forged"}}); p.Status != http.StatusForbidden {
		t.Fatalf("a form without its CSRF token: %d, want 403", p.Status)
	}

	// Delete, with confirmation; the token is refused from then on.
	b.run("navigating", chromedp.Navigate(e.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#page-integration")))
	b.run("deleting the token",
		follow("a.delete", "#page-delete"),
		follow("#confirm-delete", "#notice"),
	)
	if n := value(b, "counting tokens", chromedp.Evaluate[int](`document.querySelectorAll("tr[id^=token-]").length`)); n != 0 {
		t.Fatalf("%d tokens listed after the delete", n)
	}
	if in := e.oauth(t, "/oauth2/introspect", clientID, newSecret, url.Values{"token": {pat}}); in.Body["active"] != false {
		t.Fatalf("introspecting the deleted token: %d %v", in.Status, in.Body)
	}
	if a := e.oauth(t, "/oauth2/token", clientID, newSecret, exchange); a.Status != http.StatusBadRequest {
		t.Fatalf("exchanging the deleted token: %d %v", a.Status, a.Body)
	}

	// Sign out; the old cookie replayed gets the sign-in page and changes nothing.
	csrf := value(b, "reading the CSRF field", chromedp.Value(chromedp.CSS(`input[name="csrf"]`)))
	b.run("signing out", follow("#sign-out", "#page-signin"))
	if p := post("/console/tokens", url.Values{"csrf": {csrf}, "name": {"replayed"}}); p.Status != http.StatusSeeOther || p.location() != "/console/signin" {
		t.Fatalf("the signed-out cookie: %d %q, want the sign-in page", p.Status, p.location())
	}
	if l, _ := e.Registry.ListPersonalTokens(context.Background(), lena); len(l) != 0 {
		t.Fatalf("tokens after the replay: %+v", l)
	}
}

// TestSignInErrorsInTheBrowser: a wrong password and an unknown user read the same.
func TestSignInErrorsInTheBrowser(t *testing.T) {
	e := newEnv(t)
	e.user(t, "lena", "lena-password")
	b := newTab(t)
	attempt := func(username, password string) string {
		b.run("signing in as "+username,
			chromedp.Navigate(e.URL+"/console/signin"),
			chromedp.WaitVisible(chromedp.CSS("#page-signin")),
			chromedp.SendKeys(chromedp.CSS("#username"), username),
			chromedp.SendKeys(chromedp.CSS("#password"), password),
			follow("#sign-in", "#signin-error"),
		)
		return b.text("#signin-error")
	}
	wrong, unknown := attempt("lena", "not-her-password"), attempt("nobody", "whatever-password")
	if wrong != unknown || wrong != "Wrong username or password." {
		t.Fatalf("wrong password: %q, unknown user: %q", wrong, unknown)
	}
}

// TestWithoutJavaScript: with scripts off every form still works and no copy button shows.
func TestWithoutJavaScript(t *testing.T) {
	e := newEnv(t)
	uid := e.user(t, "lena", "lena-password", "orders:read")
	e.client(t, uid, "Shop backend")
	b := newTab(t)
	b.run("turning JavaScript off", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	b.signIn(e.URL, "lena", "lena-password")
	buttons := value(b, "finding the copy buttons", chromedp.Nodes(chromedp.CSSAll("button.copy")))
	if len(buttons) == 0 {
		t.Fatal("no copy buttons on the page")
	}
	for _, n := range buttons {
		style := value(b, "reading a copy button's style", chromedp.ComputedStyle(chromedp.NodeIDs([]cdp.NodeID{n.NodeID})))
		for _, p := range style {
			if p.Name == "display" && p.Value != "none" {
				t.Fatalf("a copy button shows without JavaScript (display: %s)", p.Value)
			}
		}
	}
	b.run("creating a token",
		chromedp.SendKeys(chromedp.CSS("#token-name"), "no script"),
		follow("#create", "#page-token"),
	)
	if !strings.HasPrefix(b.text("#new-token"), "tsp_") {
		t.Fatal("no token shown")
	}
	b.run("rotating", chromedp.Navigate(e.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#page-integration")),
		follow("#rotate-0", "#page-rotate"), follow("#confirm-rotate", "#page-secret"))
	b.run("signing out", chromedp.Navigate(e.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#page-integration")),
		follow("#sign-out", "#page-signin"))
}

// allowClipboard lets the page at origin read the clipboard, which a test needs to see what a
// copy button copied, and keeps the page focused as the clipboard requires.
func (b *tab) allowClipboard(origin string) {
	b.t.Helper()
	id := chromedp.FromContext(b.ctx).BrowserContextID
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted,
			Origin: origin, BrowserContextID: id,
		}); err != nil {
			b.t.Fatalf("granting %s: %v", name, err)
		}
	}
	if _, err := chromedp.Call(b.ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		b.t.Fatalf("emulating focus: %v", err)
	}
}

// viewports are the widths the pages are looked at: a desktop window and a phone.
var viewports = []struct {
	name          string
	width, height int64
	phone         bool
}{
	{"desktop", 1280, 900, false},
	{"phone", 390, 844, true},
}

func (b *tab) viewport(width, height int64, phone bool) chromedp.Action[chromedp.Void] {
	if phone {
		return chromedp.EmulateViewport(width, height, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	return chromedp.EmulateViewport(width, height)
}

// TestScreenshot renders the Integration page, with a client in its secret's grace period and
// two personal tokens, at a desktop and a phone width, checks that neither scrolls sideways,
// and with -update-screenshot writes the docs' pictures (docs/integrators.md) to ../docs/ and every other page
// to testdata/screenshots/ (not committed) for a look.
//
//	go test ./console -run TestScreenshot -update-screenshot
func TestScreenshot(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A month of history: the tokens were made weeks ago, one is in use.
	e.Clock.Advance(-30 * 24 * time.Hour)
	lena := e.user(t, "lena", "lena-password", "orders:read", "orders:write", "reports:read")
	shop, _ := e.client(t, lena, "Shop backend")
	warehouse, _ := e.client(t, lena, "Warehouse sync")
	ninety := registry.Lifetime(90 * 24 * time.Hour)
	ci, err := e.Registry.CreatePersonalToken(ctx, lena, registry.PersonalTokenInput{Name: "CI deploys", Scopes: []string{"orders:read", "orders:write"}, ExpiresIn: &ninety})
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(18 * 24 * time.Hour)
	if _, err := e.Registry.CreatePersonalToken(ctx, lena, registry.PersonalTokenInput{Name: "Nightly report", Scopes: []string{"reports:read"}}); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(12 * 24 * time.Hour)
	if err := e.Store.TouchPersonalTokens(ctx, map[string]time.Time{ci.ID: e.Clock.Now().Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Registry.RotateSecret(ctx, warehouse, 24*time.Hour); err != nil {
		t.Fatal(err)
	}

	b := newTab(t)
	shots := map[string][]byte{}
	shoot := func(name string) {
		t.Helper()
		if overflow := value(b, "measuring "+name, chromedp.Evaluate[bool](
			"document.documentElement.scrollWidth > document.documentElement.clientWidth")); overflow {
			t.Errorf("%s scrolls sideways", name)
		}
		shots[name] = value(b, "screenshot of "+name, chromedp.FullScreenshot(100))
	}
	for _, vp := range viewports {
		b.run("setting the viewport", b.viewport(vp.width, vp.height, vp.phone))
		b.run("the sign-in page", chromedp.Navigate(e.URL+"/console/signin"), chromedp.WaitVisible(chromedp.CSS("#page-signin")))
		shoot("signin-" + vp.name)
		b.signIn(e.URL, "lena", "lena-password")
		b.run("the Integration page", chromedp.Navigate(e.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#page-integration")))
		shoot("integration-" + vp.name)
		b.run("the rotation's confirmation", chromedp.Navigate(e.URL+"/console/rotate?client="+url.QueryEscape(shop)), chromedp.WaitVisible(chromedp.CSS("#page-rotate")))
		shoot("rotate-" + vp.name)
		b.run("the delete confirmation", chromedp.Navigate(e.URL+"/console/tokens/delete?id="+ci.ID), chromedp.WaitVisible(chromedp.CSS("#page-delete")))
		shoot("delete-" + vp.name)
		b.run("a new token", chromedp.Navigate(e.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#page-integration")),
			chromedp.SendKeys(chromedp.CSS("#token-name"), "Screenshot "+vp.name), follow("#create", "#page-token"))
		shoot("token-" + vp.name)
		// Only the two tokens above appear in the docs' pictures.
		list, _ := e.Registry.ListPersonalTokens(ctx, lena)
		for _, tok := range list {
			if tok.Name == "Screenshot "+vp.name {
				if err := e.Registry.DeletePersonalToken(ctx, lena, tok.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		b.run("a new secret", chromedp.Navigate(e.URL+"/console/rotate?client="+url.QueryEscape(shop)),
			chromedp.WaitVisible(chromedp.CSS("#page-rotate")), follow("#confirm-rotate", "#page-secret"))
		shoot("secret-" + vp.name)
		b.run("an error", chromedp.Navigate(e.URL+"/console/rotate?client=nope"), chromedp.WaitVisible(chromedp.CSS("#page-error")))
		shoot("error-" + vp.name)
		b.run("signing out", chromedp.Navigate(e.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#page-integration")),
			follow("#sign-out", "#page-signin"))
	}
	if !*updateScreenshot {
		return
	}
	for name, png := range shots {
		path := filepath.Join("testdata", "screenshots", name+".png")
		switch name {
		case "integration-desktop":
			path = filepath.Join("..", "docs", "console-integration.png")
		case "integration-phone":
			path = filepath.Join("..", "docs", "console-integration-phone.png")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs(path)
		t.Logf("wrote %s", abs)
	}
}

// TestKeyboardAndLabels: the console works from the keyboard alone, every focused control
// shows a focus outline, and every control has a label.
func TestKeyboardAndLabels(t *testing.T) {
	e := newEnv(t)
	uid := e.user(t, "lena", "lena-password", "orders:read")
	e.client(t, uid, "Shop backend")
	if _, err := e.Registry.CreatePersonalToken(context.Background(), uid, registry.PersonalTokenInput{Name: "CI"}); err != nil {
		t.Fatal(err)
	}
	b := newTab(t)
	b.run("signing in with the keyboard",
		chromedp.Navigate(e.URL+"/console/signin"),
		chromedp.WaitVisible(chromedp.CSS("#page-signin")),
		// The username field has the focus when the page opens.
		chromedp.KeyEvent("lena"+kb.Tab+"lena-password"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.KeyEvent(kb.Enter))(ctx, tg)
			return err
		}),
		chromedp.WaitVisible(chromedp.CSS("#page-integration")),
	)

	// Tab through the whole page: every stop is outlined, and the first is the skip link.
	type stop struct {
		Tag, Text string
		Outline   bool
		OnScreen  bool
	}
	var stops []stop
	for range 40 {
		b.run("pressing Tab", chromedp.KeyEvent(kb.Tab))
		s := value(b, "reading the focus", chromedp.Evaluate[stop](`(() => {
			const el = document.activeElement, cs = getComputedStyle(el), r = el.getBoundingClientRect();
			return {Tag: el.tagName.toLowerCase(), Text: (el.getAttribute('aria-label') || el.textContent || el.name || el.id).trim(),
				Outline: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2,
				OnScreen: r.width > 0 && r.right > 0 && r.left < innerWidth};
		})()`))
		if s.Tag == "body" {
			break
		}
		stops = append(stops, s)
	}
	if len(stops) == 0 || stops[0].Tag != "a" || stops[0].Text != "Skip to content" {
		t.Fatalf("the first Tab stop is %+v, want the skip link", stops)
	}
	reached := map[string]bool{}
	for _, s := range stops {
		if !s.Outline || !s.OnScreen {
			t.Errorf("focused %s %q shows no focus outline or is off screen: %+v", s.Tag, s.Text, s)
		}
		reached[s.Text] = true
	}
	for _, want := range []string{"Sign out", "Copy the client ID of Shop backend", "Regenerate secret…", "Delete CI", "name", "Create token"} {
		if !reached[want] {
			t.Errorf("the keyboard never reaches %q; stops: %+v", want, stops)
		}
	}

	unlabelled := value(b, "looking for controls without a label", chromedp.Evaluate[[]string](`[...document.querySelectorAll(
		'input:not([type=hidden]), select, textarea, button')].filter(el =>
		!(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim()).map(el => el.outerHTML)`))
	if len(unlabelled) != 0 {
		t.Errorf("controls without a label: %v", unlabelled)
	}
	if n := value(b, "counting h1", chromedp.Evaluate[int](`document.querySelectorAll('h1').length`)); n != 1 {
		t.Errorf("%d h1 headings, want 1", n)
	}
	if lang := value(b, "reading lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "en" {
		t.Errorf("lang %q", lang)
	}
}

// A client that authenticates with its key shows its method and key ids, and offers no
// secret to regenerate (it has none), nor does one that authenticates with its TLS
// certificate; a secret client beside them keeps its button.
func TestKeyClientShowsItsKeys(t *testing.T) {
	e := newEnv(t)
	lena := e.user(t, "lena", "lena-password", "orders:read")
	e.client(t, lena, "Shop backend")
	name, method := "Billing (key)", protocol.AuthPrivateKeyJWT
	jwks := json.RawMessage(`{"keys":[{"kty":"EC","crv":"P-256","kid":"billing-2026-12","alg":"ES256","use":"sig",` +
		`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)
	if _, err := e.Registry.CreateClient(context.Background(), registry.ClientInput{Name: &name, Owner: &lena,
		TokenEndpointAuthMethod: &method, JWKS: &jwks}); err != nil {
		t.Fatal(err)
	}
	// A client a Kubernetes workload acts as lists the workload, and has no button either.
	const k8s = "https://kubernetes.default.svc.cluster.local"
	if _, err := e.Registry.CreateTrustedIssuer(context.Background(), registry.TrustedIssuerInput{Issuer: k8s}); err != nil {
		t.Fatal(err)
	}
	wname := "Reports (workload)"
	fis := []storage.FederatedIdentity{{Issuer: k8s, Subject: "system:serviceaccount:prod:reports"}}
	if _, err := e.Registry.CreateClient(context.Background(), registry.ClientInput{Name: &wname, Owner: &lena, FederatedIdentities: &fis}); err != nil {
		t.Fatal(err)
	}
	// A client whose tokens are bound to a DPoP key says so.
	dname, bound := "Payments (DPoP)", true
	if _, err := e.Registry.CreateClient(context.Background(), registry.ClientInput{Name: &dname, Owner: &lena, DPoPBoundAccessTokens: &bound}); err != nil {
		t.Fatal(err)
	}
	// A client that authenticates with its TLS certificate names the certificate, has no
	// button, and says its tokens are bound to the certificate.
	cname, cmethod, dn := "Orders (mTLS)", protocol.AuthTLSClient, "CN=orders,O=Example"
	if _, err := e.Registry.CreateClient(context.Background(), registry.ClientInput{Name: &cname, Owner: &lena,
		TokenEndpointAuthMethod: &cmethod, TLSClientAuthSubjectDN: &dn, TLSClientCertificateBoundAccessTokens: new(true)}); err != nil {
		t.Fatal(err)
	}
	b := newTab(t)
	b.signIn(e.URL, "lena", "lena-password")
	b.run("the Integration page", chromedp.Navigate(e.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#page-integration")))
	page := value(b, "the page's text", chromedp.Evaluate[string]("document.body.innerText"))
	for _, want := range []string{"private_key_jwt", "billing-2026-12", "holds no secret", k8s, "system:serviceaccount:prod:reports", "the client holds none",
		"bound to a DPoP key", "tls_client_auth", "subject " + dn, "bound to the client's TLS certificate"} {
		if !strings.Contains(page, want) {
			t.Errorf("the Integration page does not show %q:\n%s", want, page)
		}
	}
	buttons := value(b, "counting the regenerate buttons", chromedp.Evaluate[int]("document.querySelectorAll('a[id^=rotate-]').length"))
	if buttons != 2 {
		t.Errorf("%d Regenerate secret buttons, want 2 (the secret clients' only)", buttons)
	}
	if *updateScreenshot {
		png := value(b, "screenshot", chromedp.FullScreenshot(100))
		if err := os.MkdirAll(filepath.Join("testdata", "screenshots"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "screenshots", "integration-key-client.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
