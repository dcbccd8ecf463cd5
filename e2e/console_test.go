package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestConsole: the real binary serves the console by default, signs a user in with the
// password an operator set through the CLI and shows the client the operator made them owner
// of; turned off, /console/ is not there. Nothing of the sign-in reaches the log.
func TestConsole(t *testing.T) {
	p := start(t, t.TempDir(), "TOKENSMITH_STORAGE=memory:")
	out := p.cli(t, "lena-password\n", "user", "create", "--username", "lena", "--password-stdin", "--scope", "orders:read")
	m := regexp.MustCompile(`with id (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("user create: %s", out)
	}
	out = p.cli(t, "", "client", "create", "--name", "shop", "--grant", "client_credentials", "--owner", m[1])
	id := regexp.MustCompile(`(?m)^client_id:\s+(\S+)`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("client create: %s", out)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, _ := get("/console")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("/console: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := get("/console/signin")
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || csrf == nil || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("sign-in page: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	resp, err := c.PostForm(p.url+"/console/signin", url.Values{"csrf": {csrf[1]}, "username": {"lena"}, "password": {"lena-password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	var session string
	for _, ck := range resp.Cookies() {
		if ck.Name == "tokensmith_session" {
			session = ck.Value
		}
	}
	if resp, body = get("/console/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, id[1]) {
		t.Fatalf("Integration page: %d, want client %s listed\n%s", resp.StatusCode, id[1], body)
	}
	p.stop(t)
	logs := p.stderr.String()
	if !strings.Contains(logs, "console: signed in") || session == "" || strings.Contains(logs, session) ||
		strings.Contains(logs, "lena-password") || strings.Contains(logs, csrf[1]) {
		t.Fatalf("the log must say who signed in and hold no password, session or CSRF value:\n%s", logs)
	}

	off := start(t, t.TempDir(), "TOKENSMITH_STORAGE=memory:", "TOKENSMITH_CONSOLE_ENABLED=false")
	r, err := http.Get(off.url + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("console turned off: /console/signin answers %d, want 404", r.StatusCode)
	}
}

// TestConsoleCookiesSecureBehindHTTPS: when browsers reach the server over HTTPS (an https
// issuer in front of a plain listener, as behind a TLS-terminating proxy), the console's
// cookies are Secure and carry the __Secure- prefix.
func TestConsoleCookiesSecureBehindHTTPS(t *testing.T) {
	p := launch(t, t.TempDir(), launchOptions{env: []string{"TOKENSMITH_STORAGE=memory:", "TOKENSMITH_ISSUER=https://auth.example.com"}})
	resp, err := http.Get(p.url + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 || cookies[0].Name != "__Secure-tokensmith_login" || !cookies[0].Secure || !cookies[0].HttpOnly ||
		cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookies behind HTTPS: %v", resp.Header.Values("Set-Cookie"))
	}
}
