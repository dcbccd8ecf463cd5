package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// Cookies. Both are HttpOnly, SameSite=Strict and limited to the console's path; under HTTPS
// they are Secure and carry the __Secure- prefix, which browsers refuse to let a plain-HTTP
// page set, so a network attacker cannot plant one.
const (
	sessionCookie = "tokensmith_session"
	// loginCookie holds the sign-in form's CSRF value (double submit): there is no session
	// before sign-in to keep it in.
	loginCookie = "tokensmith_login"
	cookiePath  = Base + "/"
	// loginTTL is how long a sign-in form stays good.
	loginTTL = 30 * time.Minute
	// touchEvery is how far a session's idle expiry must move before it is written: browsing
	// costs a store write at most once a minute.
	touchEvery = time.Minute
	// maxForm bounds a form body, as the token endpoint bounds its bodies.
	maxForm = 64 << 10
	// Longer sign-in values cannot be an account's (registry limits), so they are refused
	// without the password check.
	maxUsername = 128
	maxPassword = 256
)

type cookieNames struct{ session, login string }

func newCookieNames(secure bool) cookieNames {
	if secure {
		return cookieNames{"__Secure-" + sessionCookie, "__Secure-" + loginCookie}
	}
	return cookieNames{sessionCookie, loginCookie}
}

func (c *Console) setCookie(g *gin.Context, name, value string, maxAge int) {
	http.SetCookie(g.Writer, &http.Cookie{Name: name, Value: value, Path: cookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: c.o.Secure, SameSite: http.SameSiteStrictMode})
}

func (c *Console) clearCookie(g *gin.Context, name string) { c.setCookie(g, name, "", -1) }

// wellFormed reports whether a cookie or form value can be one the console issued (a
// secret.NewSecret: 43 base64url characters), so junk is never hashed or looked up.
func wellFormed(v string) bool {
	if len(v) != 43 {
		return false
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// same compares a presented CSRF value with the expected one in constant time.
func same(presented, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(presented), []byte(want)) == 1
}

// active is the signed-in session of a request.
type active struct {
	idHash string
	sess   storage.Session
	user   storage.User
}

// acting is the request's context naming the signed-in integrator as who makes the changes
// done with it, for the audit trail.
func (a *active) acting(g *gin.Context) context.Context {
	return audit.WithActor(g.Request.Context(), "user:"+a.user.ID)
}

var errNoSession = errors.New("console: no live session")

// load finds the request's session and its user. A session ends (errNoSession) when it is
// unknown, signed out or expired, when its user is gone, or when the user's password changed
// after it began or after the sign-in checked it (its credential version is not the user's). The idle expiry is moved forward when that gains at least touchEvery.
func (c *Console) load(g *gin.Context) (*active, error) {
	ck, err := g.Request.Cookie(c.cookies.session)
	if err != nil || !wellFormed(ck.Value) {
		return nil, errNoSession
	}
	ctx, now := g.Request.Context(), c.o.Now()
	hash := secret.HashHex(ck.Value)
	s, err := c.o.Store.GetSession(ctx, hash, now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoSession
	} else if err != nil {
		return nil, err
	}
	u, err := c.o.Store.GetUser(ctx, s.UserID)
	if errors.Is(err, storage.ErrNotFound) || err == nil && (s.CreatedAt.Before(u.NotBefore) || s.Epoch != u.Epoch) {
		if err := c.o.Store.DeleteSession(ctx, hash); err != nil && !errors.Is(err, storage.ErrNotFound) {
			c.o.Log.Warn("console: ending a session of a deleted user or an old password failed", "error", err)
		}
		return nil, errNoSession
	} else if err != nil {
		return nil, err
	}
	if next := now.Add(c.o.IdleTimeout); s.IdleUntil.Before(s.ExpiresAt) && next.Sub(s.IdleUntil) >= touchEvery {
		err := c.o.Store.TouchSession(ctx, hash, next, now)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, errNoSession
		} else if err != nil {
			return nil, err
		}
		s.IdleUntil = next
		if s.ExpiresAt.Before(next) {
			s.IdleUntil = s.ExpiresAt
		}
	}
	return &active{idHash: hash, sess: s, user: u}, nil
}

// signedIn runs h for a request with a live session, checking a POST's CSRF token first.
// Without a session the browser is sent to the sign-in page, also for a POST, which is not
// carried out.
func (c *Console) signedIn(h func(*gin.Context, *active)) gin.HandlerFunc {
	return func(g *gin.Context) {
		a, err := c.load(g)
		if errors.Is(err, errNoSession) {
			if _, err := g.Request.Cookie(c.cookies.session); err == nil {
				c.clearCookie(g, c.cookies.session)
			}
			g.Redirect(http.StatusSeeOther, signinPath)
			return
		}
		if err != nil {
			c.fail(g, err)
			return
		}
		if g.Request.Method == http.MethodPost && !same(g.Request.PostForm.Get("csrf"), a.sess.CSRF) {
			c.forbidden(g, a)
			return
		}
		h(g, a)
	}
}

// formBody parses a POST's form from its body only (never the URL, where secrets do not
// belong), bounded in size, and refuses other content types and invalid UTF-8.
func formBody(g *gin.Context) {
	mt, _, _ := mime.ParseMediaType(g.GetHeader("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		g.Request.PostForm = map[string][]string{}
		g.Next()
		return
	}
	g.Request.Body = http.MaxBytesReader(g.Writer, g.Request.Body, maxForm)
	if err := g.Request.ParseForm(); err != nil {
		g.Request.PostForm = map[string][]string{}
	}
	for _, vs := range g.Request.PostForm {
		for _, v := range vs {
			if !utf8.ValidString(v) {
				g.Request.PostForm = map[string][]string{}
			}
		}
	}
	g.Next()
}

// signinPage shows the sign-in form, or the console to a browser that is signed in.
func (c *Console) signinPage(g *gin.Context) {
	if a, err := c.load(g); err == nil && a != nil {
		g.Redirect(http.StatusSeeOther, home)
		return
	}
	v := c.view(nil, "Sign in")
	v.Notice = notices[g.Query("done")]
	c.signinForm(g, http.StatusOK, v)
}

// signinForm renders the sign-in form with its login-CSRF cookie, reusing one the browser
// still has so several open tabs keep working.
func (c *Console) signinForm(g *gin.Context, status int, v *view) {
	tok := ""
	if ck, err := g.Request.Cookie(c.cookies.login); err == nil && wellFormed(ck.Value) {
		tok = ck.Value
	} else {
		tok = secret.NewSecret()
	}
	c.setCookie(g, c.cookies.login, tok, int(loginTTL/time.Second))
	v.CSRF = tok
	c.render(g, status, "signin", v)
}

// wrongCredentials is the one answer to a wrong password and to an unknown username alike.
const wrongCredentials = "Wrong username or password."

// signin checks the username and password with the password grant's check and backoff, and
// starts a session under a new id.
func (c *Console) signin(g *gin.Context) {
	form := g.Request.PostForm
	username, password := form.Get("username"), form.Get("password")
	v := c.view(nil, "Sign in")
	v.Username = username
	ck, err := g.Request.Cookie(c.cookies.login)
	if err != nil || !wellFormed(ck.Value) || !same(form.Get("csrf"), ck.Value) {
		v.Error = "The sign-in form had expired. Please sign in again."
		c.signinForm(g, http.StatusForbidden, v)
		return
	}
	if strings.TrimSpace(username) == "" || password == "" {
		v.Error = "Enter your username and password."
		c.signinForm(g, http.StatusBadRequest, v)
		return
	}
	if len(username) > maxUsername || len(password) > maxPassword {
		v.Error = wrongCredentials
		c.signinForm(g, http.StatusBadRequest, v)
		return
	}
	ctx := g.Request.Context()
	u, err := c.o.Passwords.CheckPassword(ctx, username, password, g.ClientIP())
	if err != nil {
		pe := protocol.As(err)
		switch pe.Code {
		case protocol.InvalidGrant:
			v.Error = wrongCredentials
			c.signinForm(g, http.StatusBadRequest, v)
		case protocol.RateLimited:
			g.Header("Retry-After", fmt.Sprint(pe.RetryAfter))
			v.Error = fmt.Sprintf("Too many failed sign-ins for this username. Try again in %s.", seconds(pe.RetryAfter))
			c.signinForm(g, http.StatusTooManyRequests, v)
		default:
			c.fail(g, err)
		}
		return
	}
	// The session id is new at every sign-in; one the browser held before ends here.
	if old, err := g.Request.Cookie(c.cookies.session); err == nil && wellFormed(old.Value) {
		if err := c.o.Store.DeleteSession(ctx, secret.HashHex(old.Value)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			c.fail(g, err)
			return
		}
	}
	id, now := secret.NewSecret(), c.o.Now()
	// The session carries the credential version whose password was just checked: the store
	// refuses it if a password change got in between, however late this write lands.
	s := storage.Session{IDHash: secret.HashHex(id), UserID: u.ID, Epoch: u.Epoch, CSRF: secret.NewSecret(), CreatedAt: now,
		IdleUntil: now.Add(c.o.IdleTimeout), ExpiresAt: now.Add(c.o.AbsoluteTimeout)}
	if err := c.o.Store.CreateSession(ctx, s, now); err != nil {
		// Deleted, or its password changed, while signing in.
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrCredentialsChanged) {
			v.Error = wrongCredentials
			c.signinForm(g, http.StatusBadRequest, v)
			return
		}
		c.fail(g, err)
		return
	}
	c.setCookie(g, c.cookies.session, id, 0)
	c.clearCookie(g, c.cookies.login)
	c.o.Log.Info("console: signed in", "user", u.ID, "remote", g.ClientIP())
	g.Redirect(http.StatusSeeOther, home)
}

// signout ends the session in the store, so the cookie is worthless on every replica.
func (c *Console) signout(g *gin.Context, a *active) {
	if err := c.o.Store.DeleteSession(g.Request.Context(), a.idHash); err != nil && !errors.Is(err, storage.ErrNotFound) {
		c.fail(g, err)
		return
	}
	c.clearCookie(g, c.cookies.session)
	c.o.Log.Info("console: signed out", "user", a.user.ID)
	g.Redirect(http.StatusSeeOther, signinPath+"?done=signedout")
}

// seconds says n seconds the way a person would.
func seconds(n int) string {
	d := time.Duration(n) * time.Second
	switch {
	case n <= 1:
		return "a second"
	case d < 2*time.Minute:
		return fmt.Sprintf("%d seconds", n)
	default:
		return fmt.Sprintf("%d minutes", (d+time.Minute-1)/time.Minute)
	}
}
