package grants

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/crypto/bcrypt"
)

// password is RFC 6749 §4.3 (the seeds' tokens.make and ATOL login): a user's username and
// password for a token whose sub is the user id, plus a refresh token when the client is
// allowed the refresh_token grant.
type password struct {
	*core
	throttle *loginThrottle
}

var _ Grant = (*password)(nil)

func newPassword(c *core) *password {
	return &password{core: c, throttle: newLoginThrottle(c.policy.FailedLoginLimit)}
}

func (g *password) Type() oauth2.GrantType { return oauth2.PasswordCredentials }

// dummyHash is compared against when the username is unknown, so the answer takes as long as
// for a wrong password and does not tell which usernames exist.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("tokensmith-no-such-user"), bcrypt.DefaultCost)
	return h
})

func (g *password) Handle(ctx context.Context, c *Client, r *Request) (*Token, error) {
	username, pw := r.Params[protocol.ParamUsername], r.Params[protocol.ParamPassword]
	if username == "" || pw == "" {
		return nil, protocol.Errorf(protocol.InvalidRequest, "username and password are required")
	}
	scope, aud, err := g.target(c, r)
	if err != nil {
		return nil, err
	}
	now := g.now()
	if wait := g.throttle.wait(username, now); wait > 0 {
		e := protocol.Errorf(protocol.RateLimited, "too many failed logins for this username, retry later")
		e.RetryAfter = int((wait + time.Second - 1) / time.Second)
		return nil, e
	}
	u, err := g.store.GetUserByUsername(ctx, username)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pw))
		g.throttle.fail(username, now)
		return nil, protocol.Errorf(protocol.InvalidGrant, "wrong username or password")
	case err != nil:
		return nil, storeError(err)
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(pw)) != nil {
		g.throttle.fail(username, now)
		return nil, protocol.Errorf(protocol.InvalidGrant, "wrong username or password")
	}
	g.throttle.succeed(username)
	// The lifetime starts now, after the deliberately slow password check.
	now = g.now()

	a := access{
		clientID: c.ID, subject: u.ID, scope: scope, audience: aud,
		ttl: orDefault(c.AccessTokenTTL, g.policy.PasswordTTL),
	}
	withRefresh := slices.Contains(c.GrantTypes, protocol.GrantRefreshToken)
	return g.issue(ctx, c, a, now, func(now time.Time) (*Token, error) {
		if !withRefresh {
			m, err := g.mint(protocol.GrantPassword, a, now)
			if err != nil {
				return nil, err
			}
			return m.answer(scope), nil
		}
		return g.login(ctx, c, a, now)
	})
}

// login starts a refresh-token family: the access token names it in its jti.
func (g *password) login(ctx context.Context, c *Client, a access, now time.Time) (*Token, error) {
	a.family = newFamilyID()
	m, err := g.mint(protocol.GrantPassword, a, now)
	if err != nil {
		return nil, err
	}
	refresh := newRefreshToken(a.family)
	_, hash, _ := parseRefreshToken(refresh)
	rexp := now.Add(orDefault(c.RefreshTokenTTL, g.policy.RefreshTTL)).Truncate(time.Second)
	err = g.store.CreateRefreshToken(ctx, storage.RefreshToken{
		Hash: hash, FamilyID: a.family, ClientID: c.ID, Subject: a.subject, Scope: a.scope,
		Audience: a.audience, AccessTTL: a.ttl, IssuedAt: now, ExpiresAt: rexp,
	})
	if err != nil {
		return nil, storeError(err)
	}
	t := m.answer(a.scope)
	t.RefreshToken, t.RefreshExpiresAt = refresh, rexp
	return t, nil
}

// loginThrottle slows down guessing (SPEC §8): after limit consecutive failures for one
// username, further attempts are refused for a delay that doubles with every failure, up to
// maxLoginDelay. It is keyed by the username as sent, whether or not it exists.
type loginThrottle struct {
	limit int
	mu    sync.Mutex
	m     map[string]*loginState
}

type loginState struct {
	fails int
	until time.Time
}

const (
	maxLoginDelay = 15 * time.Minute
	// maxTracked bounds memory under a spray of random usernames.
	maxTracked = 100_000
)

func newLoginThrottle(limit int) *loginThrottle {
	if limit < 1 {
		limit = 5
	}
	return &loginThrottle{limit: limit, m: map[string]*loginState{}}
}

func (t *loginThrottle) wait(user string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.m[user]; s != nil && now.Before(s.until) {
		return s.until.Sub(now)
	}
	return 0
}

func (t *loginThrottle) fail(user string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[user]
	if s == nil {
		if len(t.m) >= maxTracked {
			t.evict(now)
		}
		s = &loginState{}
		t.m[user] = s
	}
	s.fails++
	if over := s.fails - t.limit; over >= 0 {
		d := maxLoginDelay
		if over < 20 {
			d = min(time.Second<<over, maxLoginDelay)
		}
		s.until = now.Add(d)
	}
}

func (t *loginThrottle) succeed(user string) {
	t.mu.Lock()
	delete(t.m, user)
	t.mu.Unlock()
}

// evict drops entries that are not blocking anyone; if all are, it starts over rather than grow.
func (t *loginThrottle) evict(now time.Time) {
	for k, s := range t.m {
		if !now.Before(s.until) {
			delete(t.m, k)
		}
	}
	if len(t.m) >= maxTracked {
		clear(t.m)
	}
}
