package grants

import (
	"context"
	"errors"

	"github.com/tokensmith/tokensmith/dpop"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// dpopReplaySpace keeps DPoP proofs apart from client assertions in the store's one-time
// record: a proof's jti is unique per key, so the key's thumbprint stands where an assertion
// has its client. A space cannot occur in a client id.
const dpopReplaySpace = "dpop "

// bindDPoP checks the request's DPoP proof, if it has one, for the token endpoint (RFC 9449
// §4.3): one proof, made for POST to this server's token endpoint URL (the issuer's, as every
// replica behind one load balancer sees it) within the window, used once across every
// replica. It runs after the client is authenticated, so nobody else can fill the store with
// proofs, and sets r.jkt for the grant to bind its access token to.
func (c *core) bindDPoP(ctx context.Context, cl *Client, r *Request) error {
	switch {
	case len(r.DPoP) == 0 && cl.DPoPBoundAccessTokens:
		return protocol.Errorf(protocol.InvalidRequest, "this client's tokens are bound to a DPoP key: send a DPoP proof with every token request")
	case len(r.DPoP) == 0:
		return nil
	case len(r.DPoP) > 1:
		return protocol.Errorf(protocol.InvalidDPoPProof, "DPoP proof: the request carries more than one DPoP header")
	case cl.IsPublic():
		// A public client's refresh token must be bound to the key too, which is not offered
		// yet: better no bound token than one whose refresh token a thief can use.
		return protocol.Errorf(protocol.InvalidRequest, "DPoP-bound tokens are not offered to public clients yet")
	}
	now := c.now()
	p, err := dpop.Check(r.DPoP[0], dpop.Expect{Method: "POST", URL: c.tokenEndpoint(), Now: now})
	if err != nil {
		var pe *dpop.ProofError
		if errors.As(err, &pe) {
			return protocol.Errorf(protocol.InvalidDPoPProof, "%s", pe.Description)
		}
		return protocol.Errorf(protocol.InvalidDPoPProof, "DPoP proof: it cannot be checked")
	}
	// Remembered until the last moment the window would accept its iat.
	err = c.store.UseAssertion(ctx, storage.AssertionUse{ClientID: dpopReplaySpace + p.Thumbprint, JTI: p.ID,
		ExpiresAt: p.IssuedAt.Add(dpop.DefaultWindow + assertionLeeway), Now: now})
	switch {
	case errors.Is(err, storage.ErrAlreadyExists):
		return protocol.Errorf(protocol.InvalidDPoPProof, "DPoP proof: it was used before: sign a new one for every request")
	case err != nil:
		return protocol.Unavailable(err)
	}
	r.jkt = p.Thumbprint
	return nil
}
