package grants

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"github.com/tokensmith/tokensmith/protocol"
)

// exchange is RFC 8693 token exchange for personal tokens: a client allowed the grant
// presents a user's personal token as subject_token and receives a short-lived RS256 access
// token for that user, so resource servers that only verify JWTs through the JWKS accept it.
// The new token's scope is at most what the personal token and the client both have; it never outlives the personal token,
// and introspection reports it inactive once the personal token is deleted (its jti names the
// personal token). No refresh token: the holder exchanges again.
type exchange struct{ *core }

var _ Grant = (*exchange)(nil)

func (g *exchange) Type() oauth2.GrantType { return oauth2.GrantType(protocol.GrantTokenExchange) }

// subjectTokenTypes are the subject_token_type values accepted: a personal token is an access
// token in RFC 8693's sense, and has an identifier of its own for callers that want to say so.
var subjectTokenTypes = []string{protocol.TokenTypeURIAccess, protocol.TokenTypeURIPersonal}

func (g *exchange) Handle(ctx context.Context, c *Client, r *Request) (*Token, error) {
	p := r.Params
	// RFC 8693 §2.2.2: an invalid or unacceptable request or subject token is invalid_request.
	invalid := func(format string, args ...any) error {
		return protocol.Errorf(protocol.InvalidRequest, format, args...)
	}
	switch {
	case p[protocol.ParamSubjectToken] == "":
		return nil, invalid("missing subject_token")
	case p[protocol.ParamSubjectTokenType] == "":
		return nil, invalid("missing subject_token_type")
	case !slices.Contains(subjectTokenTypes, p[protocol.ParamSubjectTokenType]):
		return nil, invalid("subject_token_type must be %s", strings.Join(subjectTokenTypes, " or "))
	case p[protocol.ParamActorToken] != "" || p[protocol.ParamActorTokenType] != "":
		return nil, invalid("delegation (actor_token) is not supported")
	}
	if rt := p[protocol.ParamRequestedTokenType]; rt != "" && rt != protocol.TokenTypeURIAccess && rt != protocol.TokenTypeURIJWT {
		return nil, invalid("requested_token_type must be %s", protocol.TokenTypeURIAccess)
	}
	audience, err := g.audienceFor(c, p)
	if err != nil {
		return nil, err
	}
	now := g.now()
	found, err := g.findPersonal(ctx, p[protocol.ParamSubjectToken], now)
	if err != nil {
		return nil, protocol.Unavailable(err)
	}
	if found == nil {
		return nil, invalid("subject_token is not a live personal token")
	}
	t := found.personal
	// A client that a user manages in the console speaks for that user only: exchanging
	// another user's personal token through it would let any user with a client borrow every
	// leaked token. Clients without an owner were registered by the operator, who decides
	// whom they serve.
	if c.Owner != "" && c.Owner != t.UserID {
		return nil, invalid("subject_token is not a live personal token")
	}
	// The token carries what both the personal token and the client may have: the client's
	// registered scopes bound every token it holds, whatever it presents.
	scope, err := resolveScope(intersect(t.Scopes, c.Scopes), p[protocol.ParamScope])
	if err != nil {
		return nil, err
	}
	ttl := g.policy.ExchangeTTL
	if !t.ExpiresAt.IsZero() {
		ttl = min(ttl, t.ExpiresAt.Sub(now).Truncate(time.Second))
		if ttl < time.Second {
			return nil, invalid("subject_token is about to expire")
		}
	}
	a := access{clientID: c.ID, alg: c.SigningAlg(), subject: t.UserID, scope: scope, audience: audience, ttl: ttl, personal: t.ID, jkt: r.jkt, x5t: r.x5t}
	// Exchanged tokens are never reused: each names its own personal token. The client's daily
	// limit counts them like any new token.
	return g.issue(ctx, c, a, now, false, func(ctx context.Context, now time.Time) (*Token, error) {
		m, err := g.mint(ctx, protocol.GrantTokenExchange, a, now)
		if err != nil {
			return nil, err
		}
		tok := m.answer(scope)
		tok.IssuedTokenType = protocol.TokenTypeURIAccess
		return tok, nil
	})
}
