package console

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/duration"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

var funcs = template.FuncMap{
	// when is how times read on the page: UTC to the minute, the same for every viewer.
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	// utc is when without the zone, under a heading that names it.
	"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") },
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// grant names a grant type as the CLI does: token exchange's URN is long for a page.
	"grant": func(g string) string {
		if g == protocol.GrantTokenExchange {
			return "token-exchange"
		}
		return g
	},
}

// pages holds each page's template: the layout plus that page's "content".
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"signin", "integration", "rotate", "secret", "token", "delete", "error"} {
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}()

// view is what every page template reads; each page uses the fields it needs.
type view struct {
	Title  string
	Issuer string
	// User is the signed-in user, nil on the sign-in and error pages of a signed-out browser.
	User *storage.User
	// CSRF is the value every form sends back: the session's, or the login cookie's.
	CSRF   string
	Notice string
	Error  string

	// Sign-in.
	Username string
	// Integration.
	Clients   []registry.ClientView
	Tokens    []registry.PersonalTokenView
	Form      tokenFormView
	FormError string
	// Secret regeneration and personal tokens.
	Client *registry.ClientView
	Secret string
	Grace  string
	Token  *registry.PersonalTokenView
}

func (c *Console) view(a *active, title string) *view {
	v := &view{Title: title, Issuer: c.o.Issuer}
	if a != nil {
		v.User, v.CSRF = &a.user, a.sess.CSRF
	}
	return v
}

// render writes a page. It is rendered into a buffer first, so a template error becomes a
// clean 500 rather than half a page.
func (c *Console) render(g *gin.Context, status int, name string, v *view) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.o.Log.Error("console: rendering a page failed", "page", name, "error", err)
		g.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"))
		return
	}
	g.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// fail renders an error page. Not found says nothing more, so another user's client or token
// id reads exactly like one that does not exist.
func (c *Console) fail(g *gin.Context, err error) {
	v := &view{Issuer: c.o.Issuer}
	status := http.StatusInternalServerError
	pe := protocol.As(err)
	switch {
	case pe.Code == protocol.NotFound || errors.Is(err, storage.ErrNotFound):
		status, v.Title, v.Error = http.StatusNotFound, "Not found", "There is nothing here."
	case pe.Code == protocol.InvalidRequest:
		status, v.Title, v.Error = http.StatusBadRequest, "That did not work", sentence(pe.Description)
	case pe.Code == protocol.TemporarilyUnavailable || errors.Is(err, storage.ErrUnavailable) || g.Request.Context().Err() != nil:
		status, v.Title, v.Error = http.StatusServiceUnavailable, "Try again in a moment", "The console cannot reach its store right now."
		g.Header("Retry-After", "5")
	default:
		v.Title, v.Error = "Something went wrong", "The request could not be completed."
		c.o.Log.Error("console: request failed", "path", g.Request.URL.Path, "error", err)
	}
	c.render(g, status, "error", v)
}

// forbidden refuses a form that did not carry the session's CSRF token.
func (c *Console) forbidden(g *gin.Context, a *active) {
	v := c.view(a, "This form has expired")
	v.Error = "The form was not sent from this console page, or it is out of date. Go back, reload the page and try again."
	c.render(g, http.StatusForbidden, "error", v)
}

// assets serves the stylesheet and the script. They carry nothing secret and change only with
// the binary, so browsers may keep them a while.
func assets(g *gin.Context) {
	name := strings.TrimPrefix(g.Param("file"), "/")
	sub, _ := fs.Sub(assetFiles, "assets")
	if name == "" || strings.Contains(name, "/") {
		g.Status(http.StatusNotFound)
		return
	}
	if _, err := fs.Stat(sub, name); err != nil {
		g.Status(http.StatusNotFound)
		return
	}
	g.Header("Cache-Control", "public, max-age=300")
	g.FileFromFS(name, http.FS(sub))
}

// tokenForm is the "create a personal token" form as entered.
type tokenForm struct {
	Name    string
	Scopes  []string
	Expires string
}

// tokenFormView is tokenForm ready to render: one checkbox per scope the user may give a token,
// and the expiry choices.
type tokenFormView struct {
	Name     string
	Scopes   []choice
	Expiries []choice
}

type choice struct {
	Name, Value, Label string
	Checked, Selected  bool
}

// expiries are the lifetimes a console user may choose; "" is none.
var expiries = []struct {
	value, label string
	d            time.Duration
}{
	{"", "Never", 0},
	{"7d", "In 7 days", 7 * 24 * time.Hour},
	{"30d", "In 30 days", 30 * 24 * time.Hour},
	{"90d", "In 90 days", 90 * 24 * time.Hour},
	{"365d", "In a year", 365 * 24 * time.Hour},
}

func expiryChoice(v string) (time.Duration, bool) {
	for _, e := range expiries {
		if e.value == v {
			return e.d, true
		}
	}
	return 0, false
}

func (f tokenForm) choices(userScopes []string) tokenFormView {
	out := tokenFormView{Name: f.Name}
	for _, s := range userScopes {
		out.Scopes = append(out.Scopes, choice{Name: s, Checked: slices.Contains(f.Scopes, s)})
	}
	for _, e := range expiries {
		out.Expiries = append(out.Expiries, choice{Value: e.value, Label: e.label, Selected: e.value == f.Expires})
	}
	return out
}

// graceText says a rotation's grace period in words; "" for none.
func graceText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return duration.Format(d)
}

// sentence turns a registry message ("name must be …") into a sentence for the page.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	if !strings.HasSuffix(s, ".") {
		r = append(r, '.')
	}
	return string(r)
}
