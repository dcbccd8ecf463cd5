package grants

import (
	"context"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
)

// Endpoints named in refusal events.
const (
	EndpointToken      = "token"
	EndpointRevoke     = "revoke"
	EndpointIntrospect = "introspect"
	// EndpointConsole is the console's sign-in, which checks passwords as the password
	// grant does and shares its failed-login backoff.
	EndpointConsole = "console"
)

// issuedEvent describes a successful token answer.
func issuedEvent(r *Request, t *Token) audit.Event {
	e := audit.Event{
		Kind: audit.TokenIssued, ClientID: r.ClientID, Subject: t.subject, Grant: r.GrantType,
		JTI: t.jti, Scope: t.Scope, ExpiresAt: t.ExpiresAt.Unix(),
	}
	switch {
	case t.reused:
		e.Kind = audit.TokenReused
	case r.GrantType == protocol.GrantRefreshToken:
		e.Kind = audit.TokenRefreshed
	case r.GrantType == protocol.GrantTokenExchange:
		e.Kind = audit.TokenExchanged
	}
	if r.GrantType == protocol.GrantPassword {
		e.Username = r.Params[protocol.ParamUsername]
	}
	if f := r.Federated; f != nil {
		e.ExternalIssuer, e.ExternalSubject = f.Issuer, f.Subject
	}
	e.Family, _ = FamilyOf(t.jti)
	return e
}

// refused records a refused request. r may be nil (the request could not be parsed).
func (c *core) refused(ctx context.Context, endpoint string, r *Request, err error) {
	pe := protocol.As(err)
	e := audit.Event{Kind: audit.TokenRefused, Endpoint: endpoint, Error: pe.Code, Reason: pe.Description}
	if r != nil {
		e.ClientID, e.Grant = r.ClientID, r.GrantType
		if f := r.Federated; f != nil {
			e.ExternalIssuer, e.ExternalSubject = f.Issuer, f.Subject
		}
		if r.GrantType == protocol.GrantPassword {
			e.Username = r.Params[protocol.ParamUsername]
		}
		if rt := r.Params[protocol.ParamRefreshToken]; rt != "" && r.GrantType == protocol.GrantRefreshToken {
			// The family id is not secret (every access token of the login carries it).
			e.Family, _, _ = parseRefreshToken(rt)
		}
	}
	c.audit.Record(ctx, e)
}

// Refused records a request the HTTP layer refused before it reached a grant (a malformed
// body), so the audit trail has every refusal of the token, revocation and introspection
// endpoints.
func (h *Service) Refused(ctx context.Context, endpoint string, err error) {
	h.core.refused(ctx, endpoint, nil, err)
}
