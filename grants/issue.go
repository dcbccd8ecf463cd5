package grants

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// reserveFor bounds how long a reuse slot stays held by an issuance that never settles (a
// replica that died between Admit and Settle).
const reserveFor = 10 * time.Second

// fresh mints the new token(s) of a grant once policy allows it. It must use the ctx it is
// given: identical requests may share one issuance, which outlives the one that started it.
type fresh func(ctx context.Context, now time.Time) (*Token, error)

// issue applies the client's token reuse and daily and hourly limits around a new
// issuance: one atomic store step decides whether an earlier token is handed out again,
// whether the day's and the hour's counts allow a new one, and holds a reuse slot; a second
// step settles the outcome. Clients with none of these policies go straight to minting;
// reusable is false for grants whose tokens must never be handed out twice.
func (c *core) issue(ctx context.Context, cl *Client, a access, now time.Time, reusable bool, mint fresh) (*Token, error) {
	// A token bound to a DPoP key or a certificate is pooled by that binding (Pool.Binding): it
	// is handed out again only to a request that proved the same key.
	reuse := cl.Reuse && reusable
	if !reuse && cl.DailyLimit == 0 && cl.HourlyLimit == 0 {
		return mint(ctx, now)
	}
	adm := c.admission(cl, a, now, reuse)
	if !reuse {
		return c.admitAndMint(ctx, adm, mint)
	}
	// Identical requests in flight on this replica share one admission and one token. The
	// shared work must not die with whichever caller started it (each store call has its own
	// deadline).
	// They share only within one pool (so one binding), and a login only with logins of the
	// same credential version.
	key := adm.Pool.ClientID + "\x00" + adm.Pool.Digest() + "\x00" + strconv.FormatUint(adm.Epoch, 10)
	shared := context.WithoutCancel(ctx)
	started := false
	v, err, _ := c.pools.Do(key, func() (any, error) {
		started = true
		t, err := c.admitAndMint(shared, adm, mint)
		if err == nil && t.reused {
			// A pooled token is stored without its binding: the pool's name carries it.
			t.JKT = a.jkt
		}
		return t, err
	})
	if err != nil {
		return nil, err
	}
	t := v.(*Token)
	if started {
		return t, nil
	}
	// This caller was handed the token another request in flight minted: for it, the token is
	// a reused one, answered as a reuse is, with the access token alone. The refresh token
	// stays with the caller that started the issuance, or two clients would hold one refresh
	// token and the first rotation would make the other's a replay that ends the login.
	out := *t
	out.reused = true
	out.RefreshToken, out.RefreshExpiresAt = "", time.Time{}
	return &out, nil
}

// admission is the store step that applies cl's reuse (when reuse) and limits to a token a.
func (c *core) admission(cl *Client, a access, now time.Time, reuse bool) storage.Admission {
	adm := storage.Admission{
		Now:  now,
		Pool: poolOf(cl, a.subject, a.scope, a.audience, storage.Binding(a.jkt, a.x5t)),
		// A login's admission hands out only tokens of the credential version it checked.
		UserID: a.user, Epoch: a.epoch,
	}
	if reuse {
		adm.Reuse = true
		adm.MinRemaining = orDefault(cl.ReuseMinRemaining, c.policy.ReuseMinRemaining)
		adm.Capacity = c.replicas()
	}
	if cl.DailyLimit > 0 {
		adm.Limit, adm.Shadow = cl.DailyLimit, cl.DailyLimitShadow
		adm.Day, adm.ResetAt = dayWindow(now, c.policy.DailyLimitLocation)
	}
	if cl.HourlyLimit > 0 {
		adm.HourlyLimit, adm.HourlyShadow = cl.HourlyLimit, cl.HourlyLimitShadow
		adm.Hour, adm.HourResetAt = hourWindow(now, c.policy.DailyLimitLocation)
	}
	return adm
}

// issueMinted admits a login minted before its admission (limits, no reuse): the admission
// stores the login's refresh family in its own store call, and only if it is allowed.
func (c *core) issueMinted(ctx context.Context, cl *Client, a access, now time.Time, tok *Token, family storage.RefreshToken) (*Token, error) {
	adm := c.admission(cl, a, now, false)
	adm.Family = &family
	got, err := c.store.Admit(ctx, adm)
	switch {
	case err != nil:
		return nil, loginStoreErr(err)
	case got.Limited:
		return nil, c.refuse(adm, got)
	}
	c.shadowed(adm, got)
	if c.onIssue != nil {
		c.onIssue(protocol.GrantPassword) // the only grant that mints before its admission
	}
	tok.RateLimit = tightest(quotas(adm, got))
	return tok, nil
}

func (c *core) admitAndMint(ctx context.Context, adm storage.Admission, mint fresh) (*Token, error) {
	adm.Reservation = secret.New(9)
	var got storage.Admitted
	for attempt := 0; ; attempt++ {
		adm.ReserveUntil = adm.Now.Add(reserveFor)
		var err error
		if got, err = c.store.Admit(ctx, adm); err != nil {
			return nil, loginStoreErr(err)
		}
		switch {
		case got.Reused != nil:
			p := got.Reused
			return &Token{jti: p.JTI, subject: adm.Pool.Subject, reused: true,
				AccessToken: p.AccessToken, IssuedAt: p.IssuedAt, ExpiresAt: p.ExpiresAt, Scope: p.Scope}, nil
		case got.Limited:
			return nil, c.refuse(adm, got)
		case got.Busy:
			// Every slot is held by an issuance in flight on another replica; its token will
			// be in the pool in a moment.
			if attempt >= 40 || ctx.Err() != nil {
				return nil, protocol.Wrap(protocol.TemporarilyUnavailable, "token issuance is busy, retry shortly", ErrBusy)
			}
			time.Sleep(25 * time.Millisecond)
			adm.Now = c.now()
			continue
		}
		break
	}
	c.shadowed(adm, got)
	tok, err := mint(ctx, adm.Now)
	if err == nil {
		tok.RateLimit = tightest(quotas(adm, got))
	}
	st := storage.Settlement{Admission: adm}
	if err == nil && adm.Reuse {
		fam, _ := FamilyOf(tok.jti)
		st.Token = &storage.PooledToken{AccessToken: tok.AccessToken, JTI: tok.jti, Family: fam, Scope: tok.Scope,
			IssuedAt: tok.IssuedAt, ExpiresAt: tok.ExpiresAt, Epoch: adm.Epoch}
		st.Family = tok.family
	}
	if err != nil || adm.Reuse {
		serr := c.store.Settle(context.WithoutCancel(ctx), st)
		switch {
		case serr != nil && st.Family != nil:
			// The login's refresh token may not be stored: do not hand it out.
			return nil, loginStoreErr(serr)
		case serr != nil:
			// A failed settlement only delays: the reservation lapses after reserveFor. The
			// token already minted is still good, so it is answered.
			c.log.WarnContext(ctx, "settling an issuance failed", "client_id", adm.Pool.ClientID, "error", serr)
		}
	}
	return tok, err
}

// poolOf names the reuse pool (and daily count) of a token. The incarnation is the client's
// creation time, so a client deleted and created again under the same id starts afresh; the
// algorithm is the client's, so a client moved to another one gets no token of the old;
// binding is the token's (storage.Binding).
func poolOf(cl *Client, subject, scope string, audience []string, binding string) storage.Pool {
	return storage.Pool{
		ClientID: cl.ID, Incarnation: strconv.FormatInt(cl.CreatedAt.UnixNano(), 36),
		Subject: subject, Scope: scope, Audience: strings.Join(audience, " "), Alg: cl.SigningAlg(), Binding: binding,
	}
}

// dayWindow names the calendar day of now in loc and when it ends.
func dayWindow(now time.Time, loc *time.Location) (string, time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	t := now.In(loc)
	y, m, d := t.Date()
	return t.Format("2006-01-02"), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// hourWindow names the clock hour of now in loc and when it ends. The name is the hour's start
// in UTC, so the hour repeated when clocks go back is two windows, as it is two hours.
func hourWindow(now time.Time, loc *time.Location) (string, time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	_, off := now.In(loc).Zone()
	shift := time.Duration(off) * time.Second
	start := now.Add(shift).Truncate(time.Hour).Add(-shift)
	return start.UTC().Format(time.RFC3339), start.Add(time.Hour)
}

// quota is one limit an admission was counted against.
type quota struct {
	window string
	limit  int
	count  int
	shadow bool
	reset  time.Time
}

// Quota windows, as QuotaEvent.Window names them.
const (
	WindowDaily  = "daily"
	WindowHourly = "hourly"
)

func quotas(a storage.Admission, got storage.Admitted) []quota {
	var out []quota
	if a.Limit > 0 {
		out = append(out, quota{WindowDaily, a.Limit, got.DailyCount, a.Shadow, a.ResetAt})
	}
	if a.HourlyLimit > 0 {
		out = append(out, quota{WindowHourly, a.HourlyLimit, got.HourlyCount, a.HourlyShadow, a.HourResetAt})
	}
	return out
}

// tightest is the quota with the fewest new tokens left (on a tie the one that resets last),
// which is what one set of X-RateLimit-* headers can say.
func tightest(qs []quota) *protocol.RateLimit {
	var best *protocol.RateLimit
	for _, q := range qs {
		rl := &protocol.RateLimit{Limit: q.limit, Remaining: max(q.limit-q.count, 0), Reset: q.reset}
		if best == nil || rl.Remaining < best.Remaining || rl.Remaining == best.Remaining && rl.Reset.After(best.Reset) {
			best = rl
		}
	}
	return best
}

// QuotaEvent is an issuance beyond one of a client's limits: refused when the limit is
// enforced, let through when it runs in shadow mode (Shadow).
type QuotaEvent struct {
	ClientID string
	Subject  string
	// Window is WindowDaily or WindowHourly.
	Window string
	Limit  int
	// Count is the window's count with this issuance (shadow) or as it stood (refused).
	Count  int
	Shadow bool
}

// WithQuotaHook registers fn to hear of every issuance beyond a limit (metrics).
func WithQuotaHook(fn func(QuotaEvent)) Option { return func(c *core) { c.onQuota = fn } }

func (c *core) quotaEvent(a storage.Admission, q quota) {
	if c.onQuota != nil {
		c.onQuota(QuotaEvent{ClientID: a.Pool.ClientID, Subject: a.Pool.Subject, Window: q.window, Limit: q.limit, Count: q.count, Shadow: q.shadow})
	}
}

// shadowed reports the shadow limits an allowed issuance went past: the token is minted, and
// the operator learns whom the limit would have refused.
func (c *core) shadowed(a storage.Admission, got storage.Admitted) {
	for _, q := range quotas(a, got) {
		if q.shadow && q.count > q.limit {
			c.log.Info("quota exceeded in shadow mode: the token is issued, an enforced limit would have refused it",
				"client_id", a.Pool.ClientID, "subject", a.Pool.Subject, "window", q.window, "limit", q.limit, "count", q.count)
			c.quotaEvent(a, q)
		}
	}
}

// refuse is the answer to an admission an enforced limit refused: rate_limited, retried once
// every limit it reached has reset.
func (c *core) refuse(a storage.Admission, got storage.Admitted) error {
	var over, enforced []quota
	for _, q := range quotas(a, got) {
		if q.shadow {
			continue
		}
		enforced = append(enforced, q)
		if q.count >= q.limit {
			over = append(over, q)
			c.quotaEvent(a, q)
		}
	}
	if len(over) == 0 {
		// The store refused without counts to show which limit: wait for every enforced one.
		over = enforced
	}
	if len(over) == 0 {
		return protocol.Errorf(protocol.RateLimited, "token limit reached")
	}
	last := over[0]
	for _, q := range over[1:] {
		if q.reset.After(last.reset) {
			last = q
		}
	}
	e := protocol.Errorf(protocol.RateLimited, "%s limit of %d new tokens reached; it resets at %s",
		last.window, last.limit, last.reset.UTC().Format(time.RFC3339))
	e.RetryAfter = int(last.reset.Sub(a.Now).Seconds() + 0.999)
	e.RateLimit = &protocol.RateLimit{Limit: last.limit, Remaining: 0, Reset: last.reset}
	return e
}
