package grants

import (
	"context"
	"strings"

	"github.com/tokensmith/tokensmith/protocol"
)

// TokenTypePersonal is the token_type introspection answers for a personal token.
const TokenTypePersonal = "personal_token"

// Introspection is an RFC 7662 §2.2 answer. Only Active is set for a token that is not active.
type Introspection struct {
	Active    bool              `json:"active"`
	Scope     string            `json:"scope,omitempty"`
	ClientID  string            `json:"client_id,omitempty"`
	Username  string            `json:"username,omitempty"`
	TokenType string            `json:"token_type,omitempty"`
	ExpiresAt int64             `json:"exp,omitempty"`
	IssuedAt  int64             `json:"iat,omitempty"`
	Subject   string            `json:"sub,omitempty"`
	Audience  protocol.Audience `json:"aud,omitempty"`
	Issuer    string            `json:"iss,omitempty"`
	ID        string            `json:"jti,omitempty"`
	// Cnf is the key a DPoP-bound token is bound to (RFC 9449 §6.2), or the certificate a
	// certificate-bound one is (RFC 8705 §3.2).
	Cnf *Confirmation `json:"cnf,omitempty"`
}

var inactive = &Introspection{}

// Introspect answers RFC 7662 for an authenticated client. A client sees its own tokens and
// every personal token; a client marked as a resource server sees every client's tokens (an API
// checks what integrators send it). Anything else, and every token that is expired, revoked,
// unknown or malformed, is {"active":false}: the answer never tells which.
func (h *Service) Introspect(ctx context.Context, r *Request) (*Introspection, error) {
	out, err := h.introspectFor(ctx, r)
	if err != nil {
		h.core.refused(ctx, EndpointIntrospect, r, err)
	}
	return out, err
}

func (h *Service) introspectFor(ctx context.Context, r *Request) (*Introspection, error) {
	raw := r.Params[protocol.ParamToken]
	if raw == "" {
		return nil, protocol.Errorf(protocol.InvalidRequest, "missing token")
	}
	cl, err := h.core.authenticate(ctx, r)
	if err != nil {
		return nil, err
	}
	if cl.IsPublic() {
		// RFC 7662 §2.1 requires the caller to authenticate; an id anyone may know is not that.
		return nil, protocol.Errorf(protocol.UnauthorizedClient, "a public client cannot introspect tokens")
	}
	return h.introspect(ctx, cl, raw)
}

// IntrospectAny is introspection for the operator (admin API and CLI): every token is visible.
func (h *Service) IntrospectAny(ctx context.Context, raw string) (*Introspection, error) {
	return h.introspect(ctx, nil, raw)
}

func (h *Service) introspect(ctx context.Context, requester *Client, raw string) (*Introspection, error) {
	c := h.core
	p, err := c.find(ctx, raw, c.now(), true)
	if err != nil {
		return nil, protocol.Unavailable(err)
	}
	if p == nil {
		return inactive, nil
	}
	if t := p.personal; t != nil {
		// A personal token belongs to no client: any authenticated client that holds one may
		// ask about it (an API checking what an integrator sent it).
		out := &Introspection{Active: true, TokenType: TokenTypePersonal, Subject: t.UserID, Issuer: c.policy.Issuer,
			Scope: strings.Join(t.Scopes, " "), IssuedAt: t.CreatedAt.Unix(), ID: t.ID}
		if !t.ExpiresAt.IsZero() {
			out.ExpiresAt = t.ExpiresAt.Unix()
		}
		if p.user != nil {
			out.Username = p.user.Username
		}
		return out, nil
	}
	if requester != nil && requester.ID != p.client.ID && !requester.ResourceServer {
		return inactive, nil
	}
	out := &Introspection{Active: true, ClientID: p.client.ID, Issuer: c.policy.Issuer}
	if p.user != nil {
		out.Username = p.user.Username
	}
	if a := p.access; a != nil {
		out.TokenType = protocol.TokenTypeBearer
		if a.Cnf != nil {
			// A certificate-bound token is still a Bearer token (RFC 8705 §3); one bound to a
			// DPoP key is a DPoP token.
			out.Cnf = a.Cnf
			if a.Cnf.JKT != "" {
				out.TokenType = protocol.TokenTypeDPoP
			}
		}
		out.Scope, out.Subject, out.Audience, out.ID = a.Scope, a.Subject, a.Audience, a.ID
		out.IssuedAt, out.ExpiresAt = a.IssuedAt, a.ExpiresAt
		return out, nil
	}
	rt := p.refresh
	if !rt.UsedAt.IsZero() {
		// A rotated refresh token can no longer mint a new pair.
		return inactive, nil
	}
	out.TokenType = protocol.TokenTypeRefresh
	out.Scope, out.Subject, out.Audience = rt.Scope, rt.Subject, rt.Audience
	out.IssuedAt, out.ExpiresAt = rt.IssuedAt.Unix(), rt.ExpiresAt.Unix()
	// Refresh tokens have no jti of their own: the family (shared with the jti of every
	// access token of the login) and a short piece of the token's store digest name it.
	out.ID = p.family + "." + p.refreshHash[:8]
	return out, nil
}
