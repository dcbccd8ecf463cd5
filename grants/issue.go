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

// issue applies the client's token reuse and daily limit (SPEC §5) around a new issuance:
// one atomic store step decides whether an earlier token is handed out again, whether the
// day's count allows a new one, and holds a reuse slot; a second step settles the outcome.
// Clients with neither policy go straight to minting; reusable is false for grants whose
// tokens must never be handed out twice.
func (c *core) issue(ctx context.Context, cl *Client, a access, now time.Time, reusable bool, mint fresh) (*Token, error) {
	reuse := cl.Reuse && reusable
	if !reuse && cl.DailyLimit == 0 {
		return mint(ctx, now)
	}
	adm := storage.Admission{
		Now:  now,
		Pool: poolOf(cl, a.subject, a.scope, a.audience),
	}
	if reuse {
		adm.Reuse = true
		adm.MinRemaining = orDefault(cl.ReuseMinRemaining, c.policy.ReuseMinRemaining)
		adm.Capacity = c.replicas()
	}
	if cl.DailyLimit > 0 {
		adm.Limit = cl.DailyLimit
		adm.Day, adm.ResetAt = dayWindow(now, c.policy.DailyLimitLocation)
	}
	if !reuse {
		return c.admitAndMint(ctx, adm, mint)
	}
	// Identical requests in flight on this replica share one admission and one token. The
	// shared work must not die with whichever caller started it (each store call has its own
	// deadline).
	key := adm.Pool.ClientID + "\x00" + adm.Pool.Subject + "\x00" + adm.Pool.Scope + "\x00" + adm.Pool.Audience
	shared := context.WithoutCancel(ctx)
	started := false
	v, err, _ := c.pools.Do(key, func() (any, error) {
		started = true
		return c.admitAndMint(shared, adm, mint)
	})
	if err != nil {
		return nil, err
	}
	t := v.(*Token)
	if !started && !t.reused {
		// This caller was handed the token another request in flight minted: for it, the
		// token is a reused one.
		cp := *t
		cp.reused = true
		t = &cp
	}
	return t, nil
}

func (c *core) admitAndMint(ctx context.Context, adm storage.Admission, mint fresh) (*Token, error) {
	adm.Reservation = secret.New(9)
	for attempt := 0; ; attempt++ {
		adm.ReserveUntil = adm.Now.Add(reserveFor)
		got, err := c.store.Admit(ctx, adm)
		if err != nil {
			return nil, storeError(err)
		}
		switch {
		case got.Reused != nil:
			p := got.Reused
			return &Token{jti: p.JTI, subject: adm.Pool.Subject, reused: true,
				AccessToken: p.AccessToken, IssuedAt: p.IssuedAt, ExpiresAt: p.ExpiresAt, Scope: p.Scope}, nil
		case got.Limited:
			e := protocol.Errorf(protocol.RateLimited, "daily limit of %d new tokens reached; it resets at %s",
				adm.Limit, adm.ResetAt.UTC().Format(time.RFC3339))
			e.RetryAfter = int(adm.ResetAt.Sub(adm.Now).Seconds() + 0.999)
			return nil, e
		case got.Busy:
			// Every slot is held by an issuance in flight on another replica; its token will
			// be in the pool in a moment.
			if attempt >= 40 || ctx.Err() != nil {
				return nil, protocol.Errorf(protocol.TemporarilyUnavailable, "token issuance is busy, retry shortly")
			}
			time.Sleep(25 * time.Millisecond)
			adm.Now = c.now()
			continue
		}
		break
	}
	tok, err := mint(ctx, adm.Now)
	st := storage.Settlement{Admission: adm}
	if err == nil && adm.Reuse {
		fam, _ := FamilyOf(tok.jti)
		st.Token = &storage.PooledToken{AccessToken: tok.AccessToken, JTI: tok.jti, Family: fam, Scope: tok.Scope, IssuedAt: tok.IssuedAt, ExpiresAt: tok.ExpiresAt}
	}
	if err != nil || adm.Reuse {
		// A failed settlement only delays: the reservation lapses after reserveFor. The
		// token already minted is still good, so it is answered.
		if serr := c.store.Settle(context.WithoutCancel(ctx), st); serr != nil {
			c.log.WarnContext(ctx, "settling an issuance failed", "client_id", adm.Pool.ClientID, "error", serr)
		}
	}
	return tok, err
}

// poolOf names the reuse pool (and daily count) of a token. The incarnation is the client's
// creation time, so a client deleted and created again under the same id starts afresh.
func poolOf(cl *Client, subject, scope string, audience []string) storage.Pool {
	return storage.Pool{
		ClientID: cl.ID, Incarnation: strconv.FormatInt(cl.CreatedAt.UnixNano(), 36),
		Subject: subject, Scope: scope, Audience: strings.Join(audience, " "),
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
