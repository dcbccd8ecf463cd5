package grants

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

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
	}
	now := c.now()
	expect := dpop.Expect{Method: "POST", URL: c.tokenEndpoint(), Now: now}
	if cl.DPoPNonceRequired {
		expect.Nonces = c.dpopNonces(now)
	}
	p, err := dpop.Check(r.DPoP[0], expect)
	if err != nil {
		var pe *dpop.ProofError
		switch {
		case errors.As(err, &pe) && errors.Is(err, dpop.ErrUseNonce):
			e := protocol.Errorf(protocol.UseDPoPNonce, "%s", pe.Description)
			e.DPoPNonce = expect.Nonces[0]
			return e
		case pe != nil:
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

// DPoPNonceKeyName is the name of the server secret (storage.Storage.EnsureServerSecret) that
// keys DPoP nonces, so a nonce one replica hands out is good on every other.
const DPoPNonceKeyName = "dpop-nonce"

// WithDPoPNonceKey sets the key DPoP nonces are made with: one all replicas share
// (DPoPNonceKeyName in the store). Without it a key of this process is used, which is right
// for one process only.
func WithDPoPNonceKey(key []byte) Option { return func(c *core) { c.nonceKey = key } }

// dpopNonceWindow is how long one nonce is handed out. A proof may carry the current one or the
// one before, so a nonce is good for one to two windows and a client that keeps the latest
// DPoP-Nonce it was sent never has to retry.
const dpopNonceWindow = 5 * time.Minute

// dpopNonce is the nonce of window w: the window and an HMAC of it under the shared key. It is
// stateless: any replica computes the same one, and nothing is stored per nonce.
func (c *core) dpopNonce(w int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(w))
	m := hmac.New(sha256.New, c.nonceKey)
	m.Write([]byte("tokensmith dpop nonce\x00"))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(append(b[:], m.Sum(nil)[:16]...))
}

// dpopNonces are the nonces a proof may carry at now: the current window's first.
func (c *core) dpopNonces(now time.Time) []string {
	w := now.Unix() / int64(dpopNonceWindow/time.Second)
	return []string{c.dpopNonce(w), c.dpopNonce(w - 1)}
}

// DPoPNonce is the nonce to hand out now (the DPoP-Nonce header of a token response).
func (h *Service) DPoPNonce() string { return h.core.dpopNonces(h.core.now())[0] }
