package grants

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/crypto/bcrypt"
)

// password is RFC 6749 §4.3 (the seeds' tokens.make and ATOL login): a user's username and
// password for a token whose sub is the user id, plus a refresh token when the client is
// allowed the refresh_token grant.
type password struct{ *core }

var _ Grant = (*password)(nil)

func newPassword(c *core) *password { return &password{core: c} }

func (g *password) Type() oauth2.GrantType { return oauth2.PasswordCredentials }

// dummyHash is compared against when the username is unknown, so the answer takes as long as
// for a wrong password and does not tell which usernames exist.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("tokensmith-no-such-user"), bcrypt.DefaultCost)
	return h
})

// The failed-login backoff (storage.LoginAttempt): counts lapse after loginWindow, delays stop
// doubling at maxLoginDelay, and a username's ceiling over all addresses is userLimitFactor
// times the per-address limit.
const (
	maxPasswordLen  = 72
	maxLoginDelay   = 15 * time.Minute
	loginWindow     = 15 * time.Minute
	userLimitFactor = 10
)

func (g *password) attempt(username, remote string, now time.Time) storage.LoginAttempt {
	limit := max(g.policy.FailedLoginLimit, 1)
	return storage.LoginAttempt{
		Username: username, Remote: remote, Now: now,
		Limit: limit, UserLimit: limit * userLimitFactor, MaxDelay: maxLoginDelay, Window: loginWindow,
	}
}

func (g *password) Handle(ctx context.Context, c *Client, r *Request) (*Token, error) {
	username, pw := r.Params[protocol.ParamUsername], r.Params[protocol.ParamPassword]
	if username == "" || pw == "" {
		return nil, protocol.Errorf(protocol.InvalidRequest, "username and password are required")
	}
	scope, aud, err := g.target(c, r)
	if err != nil {
		return nil, err
	}
	u, known, err := g.checkPassword(ctx, username, pw, r.Remote)
	r.userKnown = known
	if err != nil {
		return nil, err
	}
	// The lifetime starts now, after the deliberately slow password check.
	now := g.now()
	a := access{
		clientID: c.ID, alg: c.SigningAlg(), subject: u.ID, scope: scope, audience: aud,
		ttl: orDefault(c.AccessTokenTTL, g.policy.PasswordTTL), user: u.ID, epoch: u.Epoch, jkt: r.jkt, x5t: r.x5t,
	}
	withRefresh := slices.Contains(c.GrantTypes, protocol.GrantRefreshToken)
	reuse := c.Reuse
	if withRefresh && !reuse && (c.DailyLimit > 0 || c.HourlyLimit > 0) {
		// A login under a limit: its refresh family is stored by the admission's own store
		// call, so the request costs two round trips (login, admission) instead of three.
		// The signature comes before the admission; next to the bcrypt check it is cheap.
		a.countLater = true
		tok, family, err := g.prepareLogin(ctx, c, a, now)
		if err != nil {
			return nil, err
		}
		return g.issueMinted(ctx, c, a, now, tok, family)
	}
	return g.issue(ctx, c, a, now, true, func(ctx context.Context, now time.Time) (*Token, error) {
		if !withRefresh {
			m, err := g.mint(ctx, protocol.GrantPassword, a, now)
			if err != nil {
				return nil, err
			}
			return m.answer(scope), nil
		}
		if reuse {
			// The settlement that pools the token stores its family in the same call.
			tok, family, err := g.prepareLogin(ctx, c, a, now)
			if err == nil {
				tok.family = &family
			}
			return tok, err
		}
		return g.login(ctx, c, a, now)
	})
}

// CheckPassword checks a username and password exactly as the password grant does, under the
// same failed-login backoff, for sign-ins that are not token requests (the console).
// remote is the caller's address. Its errors are the grant's: invalid_grant for a wrong
// password or an unknown username alike (same answer, same bcrypt cost), rate_limited with
// RetryAfter while the backoff holds, temporarily_unavailable when the store does not answer.
// A refusal is recorded in the audit trail (endpoint "console"), as a refused password grant
// is: the two share the backoff, so the trail must show every failure that led to one.
func (h *Service) CheckPassword(ctx context.Context, username, password, remote string) (*storage.User, error) {
	u, known, err := newPassword(h.core).checkPassword(ctx, username, password, remote)
	if err != nil {
		pe := protocol.As(err)
		name, digest := h.core.refusedUsername(username, known)
		h.core.audit.Record(ctx, audit.Event{Kind: audit.TokenRefused, Endpoint: EndpointConsole, Username: name,
			UsernameDigest: digest, Error: pe.Code, Reason: pe.Description})
	}
	return u, err
}

// maxAuditedUsername bounds what a refused sign-in puts in the trail: the console's form is
// not held to the token endpoint's parameter limits.
const maxAuditedUsername = 256

// checkPassword finds the user and checks the password under the failed-login backoff: one
// store call for a clean login, one more to count a failure or to clear earlier ones. known
// reports that the username names a user, whatever the password: the audit trail of a
// refusal names only such a username, learnt from the lookup the check makes anyway.
func (g *password) checkPassword(ctx context.Context, username, pw, remote string) (u *storage.User, known bool, err error) {
	at := g.attempt(username, remote, g.now())
	st, err := g.store.Login(ctx, at)
	if err != nil {
		return nil, false, protocol.Unavailable(err)
	}
	known = st.User != nil
	if st.Wait > 0 {
		e := protocol.Errorf(protocol.RateLimited, "too many failed logins for this username, retry later")
		e.RetryAfter = int((st.Wait + time.Second - 1) / time.Second)
		return nil, known, e
	}
	hash := dummyHash()
	if st.User != nil {
		hash = st.User.PasswordHash
	}
	// bcrypt compares only the first 72 bytes; no stored password is longer, so a longer one
	// is wrong (and still costs the comparison).
	var match bool
	if err := g.cpu.do(ctx, spanPassword, func() { match = bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil }); err != nil {
		return nil, known, err
	}
	match = match && len(pw) <= maxPasswordLen
	if !match || st.User == nil {
		if err := g.store.LoginFailed(context.WithoutCancel(ctx), at); err != nil {
			g.log.WarnContext(ctx, "counting a failed login failed", "error", err)
		}
		return nil, known, protocol.Errorf(protocol.InvalidGrant, "wrong username or password")
	}
	if st.Failed {
		if err := g.store.LoginSucceeded(ctx, at); err != nil {
			g.log.WarnContext(ctx, "clearing failed logins failed", "error", err)
		}
	}
	return st.User, known, nil
}

// login starts a refresh-token family: the access token names it in its jti.
func (g *password) login(ctx context.Context, c *Client, a access, now time.Time) (*Token, error) {
	t, family, err := g.prepareLogin(ctx, c, a, now)
	if err != nil {
		return nil, err
	}
	if err := g.store.CreateRefreshToken(ctx, family); err != nil {
		return nil, loginStoreErr(err)
	}
	return t, nil
}

// errCredentialsChanged answers a login whose password was checked against a credential
// version that a password change (or the user's deletion) ended before the login was stored:
// to the caller it is the wrong password it now is.
var errCredentialsChanged = protocol.Errorf(protocol.InvalidGrant, "wrong username or password")

// loginStoreErr maps the error of a store call that stores a login (its refresh family, its
// admission or settlement).
func loginStoreErr(err error) error {
	if errors.Is(err, storage.ErrCredentialsChanged) || errors.Is(err, storage.ErrNotFound) {
		return protocol.Wrap(errCredentialsChanged.Code, errCredentialsChanged.Description, err)
	}
	return protocol.Unavailable(err)
}

// prepareLogin mints the pair of a new login, without storing its refresh family.
func (g *password) prepareLogin(ctx context.Context, c *Client, a access, now time.Time) (*Token, storage.RefreshToken, error) {
	a.family = newFamilyID()
	m, err := g.mint(ctx, protocol.GrantPassword, a, now)
	if err != nil {
		return nil, storage.RefreshToken{}, err
	}
	refresh := newRefreshToken(a.family)
	_, hash, _ := parseRefreshToken(refresh)
	rexp := now.Add(orDefault(c.RefreshTokenTTL, g.policy.RefreshTTL)).Truncate(time.Second)
	t := m.answer(a.scope)
	t.RefreshToken, t.RefreshExpiresAt = refresh, rexp
	rec := storage.RefreshToken{
		Hash: hash, FamilyID: a.family, ClientID: c.ID, Subject: a.subject, Scope: a.scope,
		Audience: a.audience, AccessTTL: a.ttl, IssuedAt: now, ExpiresAt: rexp,
		UserID: a.user, Epoch: a.epoch,
	}
	if c.IsPublic() {
		// Anyone may present a public client's refresh token with its id: bound to the
		// key, it is of no use without it (RFC 9449 §5). A confidential client's is bound to
		// the client's own authentication.
		rec.JKT = a.jkt
		// Likewise for a certificate (RFC 8705 §4).
		rec.X5T = a.x5t
	}
	return t, rec, nil
}
