package grants

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/sync/singleflight"
)

// refresh is RFC 6749 §6 with rotation: every use returns a new pair; within the
// grace window the same old token gets the very same new pair back; after it, a reuse is a
// replay that revokes the whole family.
type refresh struct {
	*core
	// flight collapses concurrent refreshes of one token in this process into one rotation,
	// so exactly one pair is minted; the store's atomic rotation decides between replicas.
	flight singleflight.Group
}

var _ Grant = (*refresh)(nil)

func newRefresh(c *core) *refresh { return &refresh{core: c} }

func (g *refresh) Type() oauth2.GrantType { return oauth2.Refreshing }

var (
	errUnknownRefresh = protocol.Errorf(protocol.InvalidGrant, "refresh token is unknown, expired or was issued to another client")
	errRevokedRefresh = protocol.Errorf(protocol.InvalidGrant, "refresh token has been revoked")
	errReplayRefresh  = protocol.Errorf(protocol.InvalidGrant, "refresh token was already used; every token of its login has been revoked")
)

func (g *refresh) Handle(ctx context.Context, c *Client, r *Request) (*Token, error) {
	raw := r.Params[protocol.ParamRefreshToken]
	family, hash, err := parseRefresh(raw)
	if err != nil {
		return nil, err
	}
	grace := g.policy.RefreshGrace
	if c.RefreshGrace != nil {
		grace = *c.RefreshGrace
	}
	scope := r.Params[protocol.ParamScope]
	if grace <= 0 {
		// Without a grace window a second presentation must fail, so callers are not merged.
		return g.rotate(ctx, c, raw, family, hash, scope, grace, r.refresh, r.jkt, r.x5t)
	}
	// Callers share the rotation; it must not die with whichever of them started it.
	shared := context.WithoutCancel(ctx)
	// Callers with different DPoP keys get tokens bound to different keys: not one answer.
	v, err, _ := g.flight.Do(c.ID+"\x00"+hash+"\x00"+scope+"\x00"+r.jkt+"\x00"+r.x5t, func() (any, error) {
		return g.rotate(shared, c, raw, family, hash, scope, grace, r.refresh, r.jkt, r.x5t)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Token), nil
}

// rotate consumes a refresh token. known is its record when the caller has just read it (to
// find a public client), which saves reading it again. jkt is the DPoP key the new access
// token is bound to, if any, and x5t the TLS client certificate.
func (g *refresh) rotate(ctx context.Context, c *Client, raw, family, hash, reqScope string, grace time.Duration, known *storage.RefreshToken, jkt, x5t string) (*Token, error) {
	now := g.now()
	var old storage.RefreshToken
	if known != nil {
		old = *known
	} else {
		var err error
		if old, err = g.getRefresh(ctx, family, hash); err != nil {
			return nil, err
		}
	}
	// A token issued before c.NotBefore belongs to a deleted client that had the same id: its
	// logins ended with it.
	if old.ClientID != c.ID || !now.Before(old.ExpiresAt) || old.IssuedAt.Before(c.NotBefore) {
		return nil, errUnknownRefresh
	}
	if old.JKT != "" && jkt != old.JKT {
		// Checked before anything is rotated: a thief without the key burns nothing.
		return nil, protocol.Errorf(protocol.InvalidGrant, "refresh token is bound to a DPoP key: send a proof signed by that key")
	}
	if old.X5T != "" && x5t != old.X5T {
		return nil, protocol.Errorf(protocol.InvalidGrant, "refresh token is bound to a TLS client certificate: present that certificate")
	}

	rot := storage.Rotation{FamilyID: family, Hash: hash, ClientID: c.ID, UserID: userOf(old.Subject, c.ID), IssuedAt: old.IssuedAt,
		Epoch: old.Epoch, Now: now, Grace: grace}
	// An unused token is rotated: mint the successor first, then let the store decide
	// atomically whether this call wins. A used one needs no new pair: the store answers
	// with the stored successor (grace) or treats it as a replay.
	if old.UsedAt.IsZero() {
		scope, err := narrowScope(old.Scope, reqScope)
		if err != nil {
			return nil, err
		}
		next, err := g.successor(ctx, c, old, scope, jkt, x5t, now)
		if err != nil {
			return nil, err
		}
		_, nextHash, _ := parseRefreshToken(next.RefreshToken)
		rot.Next = storage.RefreshToken{
			Hash: nextHash, FamilyID: family, ClientID: c.ID, Subject: old.Subject, Scope: old.Scope,
			Audience: old.Audience, AccessTTL: old.AccessTTL, IssuedAt: now, ExpiresAt: next.RefreshExpiresAt,
			UserID: old.UserID, Epoch: old.Epoch, JKT: old.JKT, X5T: old.X5T,
		}
		if rot.Sealed, err = seal(raw, next); err != nil {
			return nil, err
		}
	}
	res, err := g.store.RotateRefreshToken(ctx, rot)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, errUnknownRefresh
	case errors.Is(err, storage.ErrRevoked):
		return nil, errRevokedRefresh
	case errors.Is(err, storage.ErrReplay):
		g.log.WarnContext(ctx, "refresh token replayed; family revoked", "client_id", c.ID, "family", family)
		g.audit.Record(ctx, audit.Event{Kind: audit.TokenReplayed, ClientID: c.ID, Subject: old.Subject,
			Grant: protocol.GrantRefreshToken, Family: family, Error: errReplayRefresh.Code, Reason: errReplayRefresh.Description})
		return nil, errReplayRefresh
	case err != nil:
		return nil, protocol.Unavailable(err)
	}
	t, err := unseal(raw, res.Sealed)
	if err != nil {
		return nil, protocol.Wrap(protocol.ServerError, "stored successor is unreadable", err)
	}
	t.subject = old.Subject
	return t, nil
}

// parseRefresh checks a presented refresh token's form, before anything is looked up.
func parseRefresh(raw string) (family, hash string, err error) {
	if raw == "" {
		return "", "", protocol.Errorf(protocol.InvalidRequest, "missing refresh_token")
	}
	family, hash, ok := parseRefreshToken(raw)
	if !ok {
		return "", "", errUnknownRefresh
	}
	return family, hash, nil
}

func (c *core) getRefresh(ctx context.Context, family, hash string) (storage.RefreshToken, error) {
	rec, err := c.store.GetRefreshToken(ctx, family, hash)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return rec, errUnknownRefresh
	case err != nil:
		return rec, protocol.Unavailable(err)
	}
	return rec, nil
}

// readRefresh reads the record of a presented refresh token, for the request that names its
// client by the token alone.
func (c *core) readRefresh(ctx context.Context, raw string) (storage.RefreshToken, error) {
	family, hash, err := parseRefresh(raw)
	if err != nil {
		return storage.RefreshToken{}, err
	}
	return c.getRefresh(ctx, family, hash)
}

// successor mints the next pair of a family. The refresh token keeps the login's full scope;
// the access token gets the (possibly narrowed) requested scope, as RFC 6749 §6 allows.
// jkt binds the new access token to the DPoP key of the refresh request's proof: a
// confidential client's refresh token is bound to the client, not to a key (RFC 9449 §5).
// x5t binds it to the request's TLS client certificate (RFC 8705 §3).
func (g *refresh) successor(ctx context.Context, c *Client, old storage.RefreshToken, scope, jkt, x5t string, now time.Time) (*Token, error) {
	m, err := g.mint(ctx, protocol.GrantRefreshToken, access{
		clientID: c.ID, alg: c.SigningAlg(), subject: old.Subject, scope: scope, audience: old.Audience,
		ttl: orDefault(old.AccessTTL, g.policy.PasswordTTL), family: old.FamilyID, jkt: jkt, x5t: x5t,
	}, now)
	if err != nil {
		return nil, err
	}
	t := m.answer(scope)
	t.RefreshToken = newRefreshToken(old.FamilyID)
	t.RefreshExpiresAt = now.Add(orDefault(c.RefreshTokenTTL, g.policy.RefreshTTL)).Truncate(time.Second)
	return t, nil
}

// narrowScope allows a refresh request to ask for a subset of the original scope (RFC 6749 §6).
func narrowScope(granted, requested string) (string, error) {
	if requested == "" {
		return granted, nil
	}
	return resolveScope(strings.Fields(granted), requested)
}

// userOf is the user id behind a token's subject: every subject but the client's own (the
// client_credentials grant) is a user, whose deletion ends the token.
func userOf(subject, clientID string) string {
	if subject == clientID {
		return ""
	}
	return subject
}
