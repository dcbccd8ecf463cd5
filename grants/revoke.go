package grants

import (
	"context"
	"errors"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// Revoke is RFC 7009 for an authenticated client. An access token is denied until it expires
// and leaves its reuse pool; a refresh token revokes its whole login (every refresh and access
// token of its family); a personal token is deleted, whichever client presents it. Unknown,
// malformed, expired and already revoked tokens are answered as success (§2.2), and so is a live
// token of another client, which stays valid: answering it differently would let anyone with a
// client id (a public client needs no secret) confirm a stolen token without using it, so
// without tripping replay detection. The operator still sees the attempt in the audit trail.
func (h *Service) Revoke(ctx context.Context, r *Request) error {
	err := h.revokeFor(ctx, r)
	if err != nil {
		h.core.refused(ctx, EndpointRevoke, r, err)
	}
	return err
}

func (h *Service) revokeFor(ctx context.Context, r *Request) error {
	raw := r.Params[protocol.ParamToken]
	if raw == "" {
		return protocol.Errorf(protocol.InvalidRequest, "missing token")
	}
	cl, err := h.core.authenticate(ctx, r)
	if err != nil {
		return err
	}
	_, err = h.revoke(ctx, cl, raw)
	if err == errForeignToken {
		h.core.refused(ctx, EndpointRevoke, r, err)
		return nil
	}
	return err
}

// errForeignToken is a live token presented for revocation by a client it was not issued to.
var errForeignToken = protocol.Errorf(protocol.UnauthorizedClient, "the token was not issued to this client")

// RevokeAny is revocation for the operator (admin API and CLI): any client's token. It reports
// whether raw was a live token.
func (h *Service) RevokeAny(ctx context.Context, raw string) (bool, error) {
	return h.revoke(ctx, nil, raw)
}

func (h *Service) revoke(ctx context.Context, requester *Client, raw string) (bool, error) {
	c := h.core
	now := c.now()
	// The operator is told whether the token was live, which takes a look at its state; a
	// client is answered 200 either way (RFC 7009 §2.2), so its path saves that round trip.
	p, err := c.find(ctx, raw, now, requester == nil)
	if err != nil {
		return false, protocol.Unavailable(err)
	}
	if p == nil {
		return false, nil
	}
	if t := p.personal; t != nil {
		// A personal token belongs to no client: whoever holds it may revoke it (a leaked token
		// found in an integrator's logs is revoked by the integrator).
		return true, c.deletePersonal(ctx, t, requester)
	}
	if requester != nil && requester.ID != p.client.ID {
		return false, errForeignToken
	}
	if a := p.access; a != nil {
		var binding string
		if a.Cnf != nil {
			binding = storage.Binding(a.Cnf.JKT, a.Cnf.X5TS256)
		}
		pool := poolOf(p.client, a.Subject, a.Scope, a.Audience, binding)
		pool.Alg = p.alg
		err = c.store.RevokeAccessToken(ctx, storage.AccessRevocation{Pool: pool, JTI: a.ID, ExpiresAt: unix(a.ExpiresAt), Now: now})
	} else {
		err = c.store.RevokeFamily(ctx, p.family, now)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, protocol.Unavailable(err)
	}
	e := audit.Event{Kind: audit.TokenRevoked, ClientID: p.client.ID, TokenType: p.kind(), Family: p.family, Who: revoker(requester)}
	if a := p.access; a != nil {
		e.Subject, e.JTI, e.Scope, e.ExpiresAt = a.Subject, a.ID, a.Scope, a.ExpiresAt
	} else {
		e.Subject, e.Scope, e.ExpiresAt = p.refresh.Subject, p.refresh.Scope, p.refresh.ExpiresAt.Unix()
	}
	c.audit.Record(ctx, e)
	return true, nil
}

// revoker names who revoked a token in the audit trail: the client, or "admin" for the
// operator (admin API and CLI).
func revoker(requester *Client) string {
	if requester == nil {
		return "admin"
	}
	return requester.ID
}

// deletePersonal deletes a personal token and tells every replica at once.
func (c *core) deletePersonal(ctx context.Context, t *storage.PersonalToken, requester *Client) error {
	if err := c.store.DeletePersonalToken(ctx, t.UserID, t.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return protocol.Unavailable(err)
	}
	change := storage.Change{Kind: storage.ChangePersonalToken, ID: t.ID}
	c.pats.drop(t.ID)
	if c.announce != nil {
		if err := c.announce.Announce(context.WithoutCancel(ctx), change); err != nil {
			c.log.WarnContext(ctx, "announcing a revoked personal token failed", "personal_token_id", t.ID, "error", err)
		}
	}
	c.audit.Record(ctx, audit.Event{Kind: audit.TokenRevoked, TokenType: TokenTypePersonal, Subject: t.UserID,
		JTI: t.ID, Who: revoker(requester)})
	return nil
}

func (p *presented) kind() string {
	if p.access != nil {
		return protocol.TokenTypeAccess
	}
	return protocol.TokenTypeRefresh
}
