package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
)

// Passwords checks a sign-in with the password grant's check and backoff (grants.Service).
type Passwords interface {
	CheckPassword(ctx context.Context, username, password, remote string) (*storage.User, error)
}

// Registry is what the console reads and changes, with the admin API's rules and change feed
// (registry.Service). Every call is scoped to the signed-in user.
type Registry interface {
	OwnedClients(ctx context.Context, owner string) ([]registry.ClientView, error)
	RotateOwnedSecret(ctx context.Context, owner, id string, grace time.Duration) (string, registry.ClientView, error)
	CreatePersonalToken(ctx context.Context, userID string, in registry.PersonalTokenInput) (registry.PersonalTokenView, error)
	ListPersonalTokens(ctx context.Context, userID string) ([]registry.PersonalTokenView, error)
	DeletePersonalToken(ctx context.Context, userID, id string) error
}

// Store keeps the sessions and reads their users (storage.Storage).
type Store interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
	CreateSession(ctx context.Context, s storage.Session, now time.Time) error
	GetSession(ctx context.Context, idHash string, now time.Time) (storage.Session, error)
	TouchSession(ctx context.Context, idHash string, idleUntil, now time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
}

// Options configures a Console. Zero timeouts take the defaults.
type Options struct {
	Passwords Passwords
	Registry  Registry
	Store     Store
	// Issuer is the server's public URL, shown on the page as the base of its endpoints.
	Issuer string
	// Secure marks the cookies Secure: set it when browsers reach the server over HTTPS (the
	// issuer is https, or the listener serves TLS).
	Secure bool
	// IdleTimeout ends a session unused for this long; AbsoluteTimeout ends it this long after
	// sign-in whatever happens.
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// RotateGrace is how long a client's previous secret keeps working after its owner
	// regenerates it here.
	RotateGrace time.Duration
	Log         *slog.Logger
	// Now is the clock of sessions; time.Now when nil.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
)

// Console serves the console's pages. Mount it under /console on the public listener.
type Console struct {
	o       Options
	cookies cookieNames
}

// New returns a Console.
func New(o Options) *Console {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.AbsoluteTimeout <= 0 {
		o.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Console{o: o, cookies: newCookieNames(o.Secure)}
}

// Paths of the console. The router group it is mounted on must be Base.
const (
	Base       = "/console"
	home       = Base + "/"
	signinPath = Base + "/signin"
)

// requestTimeout bounds everything one console request does, store calls included.
const requestTimeout = 10 * time.Second

// Mount adds the console's routes to r, which must be the group for Base.
func (c *Console) Mount(r gin.IRouter) {
	g := r.Group("", c.headers)
	g.GET("/assets/*file", assets)
	g.GET("/signin", c.signinPage)
	g.POST("/signin", formBody, c.signin)
	g.GET("/", c.signedIn(c.integration))
	g.POST("/signout", formBody, c.signedIn(c.signout))
	g.GET("/rotate", c.signedIn(c.rotateConfirm))
	g.POST("/rotate", formBody, c.signedIn(c.rotate))
	g.POST("/tokens", formBody, c.signedIn(c.createToken))
	g.GET("/tokens/delete", c.signedIn(c.deleteConfirm))
	g.POST("/tokens/delete", formBody, c.signedIn(c.deleteToken))
}

// csp allows nothing but this origin's own stylesheet, script and form targets: no inline
// script or style, no framing (clickjacking), no <base> rewriting.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// headers sets the security headers of every console answer and bounds the request's time.
func (c *Console) headers(g *gin.Context) {
	h := g.Writer.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	// Pages show secrets and per-user data: never cached, nor kept for the back button.
	h.Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(g.Request.Context(), requestTimeout)
	defer cancel()
	g.Request = g.Request.WithContext(ctx)
	g.Next()
}

// notices are the messages a redirect may ask a page to show (?done=…): fixed texts, so a
// link cannot put words on the page.
var notices = map[string]string{
	"deleted":   "The token was deleted. Applications that used it have lost access.",
	"signedout": "You have signed out.",
}

// integration is the Integration page: the user's clients and personal tokens.
func (c *Console) integration(g *gin.Context, a *active) {
	v := c.view(a, "Integration")
	v.Notice = notices[g.Query("done")]
	c.integrationPage(g, http.StatusOK, v, tokenForm{})
}

// integrationPage renders the Integration page with the token form as given (after an error,
// with what the user entered).
func (c *Console) integrationPage(g *gin.Context, status int, v *view, f tokenForm) {
	ctx := g.Request.Context()
	clients, err := c.o.Registry.OwnedClients(ctx, v.User.ID)
	if err != nil {
		c.fail(g, err)
		return
	}
	tokens, err := c.o.Registry.ListPersonalTokens(ctx, v.User.ID)
	if err != nil {
		c.fail(g, err)
		return
	}
	v.Clients, v.Tokens = clients, tokens
	v.Form = f.choices(v.User.Scopes)
	c.render(g, status, "integration", v)
}

// ownedClient finds one of the user's clients; another user's, or none, is not found.
func (c *Console) ownedClient(ctx context.Context, owner, id string) (*registry.ClientView, error) {
	clients, err := c.o.Registry.OwnedClients(ctx, owner)
	return pick(clients, err, func(cl registry.ClientView) bool { return cl.ClientID == id })
}

// pick is the item of a user's list that match chooses; none is not found, so another user's
// looks exactly like one that does not exist.
func pick[T any](list []T, err error, match func(T) bool) (*T, error) {
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(list, match)
	if i < 0 {
		return nil, protocol.Errorf(protocol.NotFound, "not found")
	}
	return &list[i], nil
}

// rotateConfirm asks before a secret is regenerated.
func (c *Console) rotateConfirm(g *gin.Context, a *active) {
	cl, err := c.ownedClient(g.Request.Context(), a.user.ID, g.Query("client"))
	if err != nil {
		c.fail(g, err)
		return
	}
	v := c.view(a, "Regenerate secret")
	v.Client, v.Grace = cl, graceText(c.o.RotateGrace)
	c.render(g, http.StatusOK, "rotate", v)
}

// rotate regenerates a secret and shows it, in this answer only.
func (c *Console) rotate(g *gin.Context, a *active) {
	id := g.Request.PostForm.Get("client_id")
	sec, cl, err := c.o.Registry.RotateOwnedSecret(a.acting(g), a.user.ID, id, c.o.RotateGrace)
	if err != nil {
		c.fail(g, err)
		return
	}
	v := c.view(a, "New client secret")
	v.Client, v.Secret, v.Grace = &cl, sec, graceText(c.o.RotateGrace)
	c.render(g, http.StatusOK, "secret", v)
}

// createToken creates a personal token and shows it, in this answer only.
func (c *Console) createToken(g *gin.Context, a *active) {
	form := g.Request.PostForm
	f := tokenForm{Name: form.Get("name"), Scopes: form["scope"], Expires: form.Get("expires")}
	v := c.view(a, "Integration")
	in := registry.PersonalTokenInput{Name: f.Name, Scopes: f.Scopes}
	life, ok := expiryChoice(f.Expires)
	if !ok {
		v.FormError = "Choose when the token expires from the list."
		c.integrationPage(g, http.StatusBadRequest, v, f)
		return
	}
	if life > 0 {
		l := registry.Lifetime(life)
		in.ExpiresIn = &l
	}
	t, err := c.o.Registry.CreatePersonalToken(a.acting(g), a.user.ID, in)
	if pe := (*protocol.Error)(nil); errors.As(err, &pe) && pe.Code == protocol.InvalidRequest {
		v.FormError = sentence(pe.Description)
		c.integrationPage(g, http.StatusBadRequest, v, f)
		return
	}
	if err != nil {
		c.fail(g, err)
		return
	}
	v = c.view(a, "New personal token")
	v.Token = &t
	c.render(g, http.StatusOK, "token", v)
}

// ownedToken finds one of the user's personal tokens; another user's, or none, is not found.
func (c *Console) ownedToken(ctx context.Context, userID, id string) (*registry.PersonalTokenView, error) {
	tokens, err := c.o.Registry.ListPersonalTokens(ctx, userID)
	return pick(tokens, err, func(t registry.PersonalTokenView) bool { return t.ID == id })
}

// deleteConfirm asks before a personal token is deleted.
func (c *Console) deleteConfirm(g *gin.Context, a *active) {
	t, err := c.ownedToken(g.Request.Context(), a.user.ID, g.Query("id"))
	if err != nil {
		c.fail(g, err)
		return
	}
	v := c.view(a, "Delete personal token")
	v.Token = t
	c.render(g, http.StatusOK, "delete", v)
}

// deleteToken deletes a personal token, on every replica at once, and goes back to the list.
func (c *Console) deleteToken(g *gin.Context, a *active) {
	id := g.Request.PostForm.Get("id")
	if err := c.o.Registry.DeletePersonalToken(a.acting(g), a.user.ID, id); err != nil {
		c.fail(g, err)
		return
	}
	g.Redirect(http.StatusSeeOther, home+"?done=deleted")
}
