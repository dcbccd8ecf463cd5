package grants

import (
	"context"
	"errors"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// PublicGrants are the grants a public client may have: a user's password, and the
// refresh tokens of that login. Never client_credentials: with no secret, anyone who knows the
// id would be the client.
var PublicGrants = []string{protocol.GrantPassword, protocol.GrantRefreshToken}

// Client is a stored client as one request sees it: now is the request's time, against which
// a rotated-out secret's grace is checked.
type Client struct {
	storage.Client
	now time.Time
}

// IsPublic reports whether the client is public: token_endpoint_auth_method "none"
// (RFC 6749 §2.1), no secret, identified by its id alone.
func (c *Client) IsPublic() bool { return c.TokenEndpointAuthMethod == protocol.AuthNone }

// VerifySecret reports whether presented is the client's secret: the current one, or the
// previous one while its rotation grace lasts, compared in constant time.
func (c *Client) VerifySecret(presented string) bool {
	cur := secret.Matches(presented, c.SecretHash)
	prev := c.now.Before(c.PrevSecretExpiresAt) && secret.Matches(presented, c.PrevSecretHash)
	return cur || prev
}

func (c *core) authenticate(ctx context.Context, r *Request) (*Client, error) {
	fail := func(desc string) error {
		e := protocol.Errorf(protocol.InvalidClient, "%s", desc)
		e.Basic = r.AuthMethod == protocol.AuthSecretBasic
		return e
	}
	if r.AuthMethod == protocol.AuthPrivateKeyJWT {
		return c.authenticateAssertion(ctx, r)
	}
	if r.ClientID == "" {
		return nil, fail("client authentication is required")
	}
	cl, err := c.lookupClient(ctx, r.ClientID, false)
	if err == nil && CertificateMethod(cl.TokenEndpointAuthMethod) {
		return c.authenticateByCertificate(ctx, r, cl)
	}
	if err == nil && !cl.accepts(r.ClientSecret) {
		// The cached record may predate a secret rotation: check the store before refusing.
		cl, err = c.lookupClient(ctx, r.ClientID, true)
		if err == nil && CertificateMethod(cl.TokenEndpointAuthMethod) {
			return c.authenticateByCertificate(ctx, r, cl)
		}
		if err == nil && !cl.accepts(r.ClientSecret) {
			if cl.IsPublic() {
				return nil, fail("this client is public (token_endpoint_auth_method none): it sends its client_id and no secret")
			}
			return nil, fail("unknown client or wrong secret")
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail("unknown client or wrong secret")
	}
	if err != nil {
		return nil, protocol.Unavailable(err)
	}
	if m := cl.TokenEndpointAuthMethod; m != "" && !cl.IsPublic() && m != r.AuthMethod {
		return nil, fail("client must authenticate with " + m)
	}
	return cl, nil
}

// authenticateByCertificate authenticates a client registered for a mutual-TLS method: the
// request names it by client_id (RFC 8705 §2: required in the body) and sends no other
// credential. A refusal with a cached record is checked again against the store's, which may
// name a renewed certificate.
func (c *core) authenticateByCertificate(ctx context.Context, r *Request, cl *Client) (*Client, error) {
	if r.ClientSecret != "" || r.AuthMethod == protocol.AuthSecretBasic {
		e := protocol.Errorf(protocol.InvalidClient, "client must authenticate with %s: send client_id and no secret, and present the certificate on the TLS connection", cl.TokenEndpointAuthMethod)
		// RFC 6749 §5.2: a client that tried HTTP Basic is answered with its challenge.
		e.Basic = r.AuthMethod == protocol.AuthSecretBasic
		return nil, e
	}
	err := c.authenticateCertificate(ctx, cl, r)
	if err != nil {
		fresh, ferr := c.lookupClient(ctx, r.ClientID, true)
		switch {
		case errors.Is(ferr, storage.ErrNotFound):
			return nil, protocol.Errorf(protocol.InvalidClient, "unknown client or wrong secret")
		case ferr != nil:
			return nil, protocol.Unavailable(ferr)
		case !CertificateMethod(fresh.TokenEndpointAuthMethod):
			return nil, protocol.Errorf(protocol.InvalidClient, "client must authenticate with %s", fresh.TokenEndpointAuthMethod)
		}
		if err = c.authenticateCertificate(ctx, fresh, r); err != nil {
			return nil, err
		}
		cl = fresh
	}
	r.AuthMethod = cl.TokenEndpointAuthMethod
	return cl, nil
}

// accepts reports whether presented authenticates the client: its secret for a confidential
// client; nothing at all for a public one, which must not be sent a secret it does not have
// (a secret sent anyway means the caller takes it for another client).
func (c *Client) accepts(presented string) bool {
	if c.IsPublic() {
		return presented == ""
	}
	return c.VerifySecret(presented)
}

// lookupClient reads a client, from the short-lived cache unless fresh is set.
func (c *core) lookupClient(ctx context.Context, id string, fresh bool) (*Client, error) {
	if !fresh {
		if sc, ok := c.clients.get(id); ok {
			return &Client{Client: sc, now: c.now()}, nil
		}
	}
	sc, err := c.store.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	c.clients.put(id, sc)
	return &Client{Client: sc, now: c.now()}, nil
}
