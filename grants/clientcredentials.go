package grants

import (
	"context"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"github.com/tokensmith/tokensmith/protocol"
)

// clientCredentials is RFC 6749 §4.4: the client acts for itself, so sub is its id. No refresh
// token is issued (§4.4.3): the client can always ask again.
type clientCredentials struct{ *core }

var _ Grant = (*clientCredentials)(nil)

func (g *clientCredentials) Type() oauth2.GrantType { return oauth2.ClientCredentials }

func (g *clientCredentials) Handle(ctx context.Context, c *Client, r *Request) (*Token, error) {
	scope, aud, err := g.target(c, r)
	if err != nil {
		return nil, err
	}
	now := g.now()
	a := access{
		clientID: c.ID, alg: c.SigningAlg(), subject: c.ID, scope: scope, audience: aud,
		ttl: orDefault(c.AccessTokenTTL, g.policy.ClientCredentialsTTL), jkt: r.jkt, x5t: r.x5t,
	}
	return g.issue(ctx, c, a, now, true, func(ctx context.Context, now time.Time) (*Token, error) {
		m, err := g.mint(ctx, protocol.GrantClientCredentials, a, now)
		if err != nil {
			return nil, err
		}
		return m.answer(scope), nil
	})
}
