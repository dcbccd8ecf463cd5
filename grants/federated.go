package grants

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/internal/jwkscache"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// MaxFederatedLifetime bounds how far ahead the exp of a workload's platform token may be.
// Platforms issue such tokens for minutes to hours (GitHub Actions and SPIFFE for minutes,
// Kubernetes projected tokens for one hour by default, up to a day when asked for): a day
// covers them all, while a token meant to live for months (a legacy, non-expiring Kubernetes
// secret token) is refused.
const MaxFederatedLifetime = 24 * time.Hour

// federated is what the token path keeps of trusted issuers: their records by issuer URL and
// one key cache per issuer, both dropped when the change feed announces the issuer changed,
// so a deleted issuer stops being trusted on every replica at once.
type federated struct {
	records *cache[storage.TrustedIssuer]
	client  *http.Client
	cfg     jwkscache.Config

	mu   sync.Mutex
	keys map[string]*jwkscache.Cache // by trusted issuer id
}

func newFederated(ttl time.Duration, now func() time.Time, trusted func() bool, cfg jwkscache.Config) *federated {
	client := &http.Client{Timeout: cfg.Timeout}
	cfg.Client = client
	return &federated{records: newCache[storage.TrustedIssuer](ttl, now, trusted), client: client, cfg: cfg, keys: map[string]*jwkscache.Cache{}}
}

// forget drops what is cached of the trusted issuer id ("" drops everything).
func (f *federated) forget(id string) {
	if id == "" {
		f.records.clear()
	} else {
		f.records.dropIf(func(ti storage.TrustedIssuer) bool { return ti.ID == id })
	}
	f.mu.Lock()
	if id == "" {
		clear(f.keys)
	} else {
		delete(f.keys, id)
	}
	f.mu.Unlock()
}

// keyCache is the key cache of ti: its jwks_uri, or the one its OpenID configuration names.
func (f *federated) keyCache(ti storage.TrustedIssuer) *jwkscache.Cache {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.keys[ti.ID]; ok {
		return c
	}
	if len(f.keys) >= maxCached {
		clear(f.keys)
	}
	cfg := f.cfg
	cfg.URL = func(ctx context.Context) (string, error) {
		if ti.JWKSURI != "" {
			return ti.JWKSURI, jwkscache.CheckURL(ti.JWKSURI)
		}
		return jwkscache.Discover(ctx, f.client, ti.Issuer)
	}
	c := jwkscache.New(cfg)
	f.keys[ti.ID] = c
	return c
}

// trustedIssuer reads the trusted issuer whose issuer URL is iss, from the cache if it can.
func (c *core) trustedIssuer(ctx context.Context, iss string) (storage.TrustedIssuer, error) {
	if ti, ok := c.fed.records.get(iss); ok {
		return ti, nil
	}
	ti, err := c.store.TrustedIssuerByIssuer(ctx, iss)
	if err != nil {
		return ti, err
	}
	c.fed.records.put(iss, ti)
	return ti, nil
}

// authenticateFederated authenticates a workload by the token its platform issued it (a
// Kubernetes service-account token, a SPIFFE JWT-SVID, a CI system's OIDC token), sent as
// the client assertion. The checks run in a fixed order, the cheap and local ones first:
// the issuer is trusted, the token names one of its audiences and has not expired, its
// signature verifies with the issuer's published key, and only then is a client looked for
// whose federated identities include (iss, sub). The token is not one-time: a platform hands
// the workload the same one until it expires.
func (c *core) authenticateFederated(ctx context.Context, r *Request, tok *jwt.Token, claims *assertionClaims, alg string) (*Client, error) {
	fail := func(format string, args ...any) error {
		return protocol.Errorf(protocol.InvalidClient, "client assertion: "+format, args...)
	}
	iss, sub := claims.Issuer, claims.Subject
	ti, err := c.trustedIssuer(ctx, iss)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail("iss and sub must both be the client id, or iss a trusted issuer (%s is not one)", quoted(iss))
	}
	if err != nil {
		return nil, protocol.Unavailable(err)
	}
	if sub == "" || len(sub) > storage.MaxSubjectLen {
		return nil, fail("sub must be 1 to %d bytes", storage.MaxSubjectLen)
	}
	if !c.federatedAudience(ti, claims.Audience) {
		return nil, fail("aud must name one of the audiences the issuer %s is trusted for (%s)", quoted(iss), strings.Join(c.issuerAudiences(ti), ", "))
	}
	// A platform decides how long its tokens live: only how far exp lies ahead of now is
	// bounded, not how far it lies after iat as for a client's own assertion.
	if problem := claims.timeProblem(c.now(), MaxFederatedLifetime, false); problem != "" {
		return nil, fail("%s", problem)
	}
	kid, _ := tok.Header["kid"].(string)
	if kid == "" {
		return nil, fail("the header names no key (kid)")
	}
	key, err := c.fed.keyCache(ti).Key(ctx, kid)
	switch {
	case errors.Is(err, jwkscache.ErrUnknownKey):
		return nil, fail("no key of the issuer %s has the kid %s", quoted(iss), quoted(kid))
	case err != nil:
		c.log.Warn("a trusted issuer's JWKS cannot be fetched", "issuer", iss, "error", err)
		return nil, fail("the keys of the issuer %s cannot be fetched and no key with the kid %s is cached", quoted(iss), quoted(kid))
	}
	if key.Alg != alg {
		return nil, fail("signed with %s, but the key %s is for %s", alg, quoted(kid), key.Alg)
	}
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{key.Alg}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(r.ClientAssertion, &assertionClaims{}, func(*jwt.Token) (any, error) { return key.Public, nil })
	if err != nil {
		return nil, fail("the signature does not verify with the key %s", quoted(kid))
	}
	// From here on the identity is the issuer's word: the audit trail may name it.
	r.Federated = &storage.FederatedIdentity{Issuer: iss, Subject: sub}
	return c.federatedClient(ctx, r, iss, sub)
}

// federatedClient finds the client the workload (iss, sub) acts as: the one named by client_id,
// which must list the identity, or else the only client that lists it.
func (c *core) federatedClient(ctx context.Context, r *Request, iss, sub string) (*Client, error) {
	fail := func(format string, args ...any) error {
		return protocol.Errorf(protocol.InvalidClient, "client assertion: "+format, args...)
	}
	id := r.ClientID
	if id == "" {
		ids, err := c.store.ClientsByFederatedIdentity(ctx, iss, sub)
		if err != nil {
			return nil, protocol.Unavailable(err)
		}
		switch len(ids) {
		case 0:
			return nil, fail("no client lists the identity of issuer %s and sub %s among its federated_identities", quoted(iss), quoted(sub))
		case 1:
			id = ids[0]
		default:
			return nil, fail("%d clients list the identity of issuer %s and sub %s: send client_id to say which", len(ids), quoted(iss), quoted(sub))
		}
	}
	cl, err := c.lookupClient(ctx, id, false)
	if err == nil && !cl.listsIdentity(iss, sub) {
		// The cached record may predate the identity being added.
		cl, err = c.lookupClient(ctx, id, true)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, protocol.Errorf(protocol.InvalidClient, "unknown client or wrong secret")
	}
	if err != nil {
		return nil, protocol.Unavailable(err)
	}
	if !cl.listsIdentity(iss, sub) {
		return nil, fail("the identity of issuer %s and sub %s is not one of the client's federated_identities", quoted(iss), quoted(sub))
	}
	r.ClientID = cl.ID
	return cl, nil
}

// listsIdentity reports whether a private_key_jwt client lists (iss, sub).
func (c *Client) listsIdentity(iss, sub string) bool {
	if c.TokenEndpointAuthMethod != protocol.AuthPrivateKeyJWT {
		return false
	}
	for _, f := range c.FederatedIdentities {
		if f.Matches(iss, sub) {
			return true
		}
	}
	return false
}

// issuerAudiences are the aud values a trusted issuer's tokens may name: its own list, or this
// server's issuer URL.
func (c *core) issuerAudiences(ti storage.TrustedIssuer) []string {
	if len(ti.Audiences) > 0 {
		return ti.Audiences
	}
	return []string{c.policy.Issuer}
}

// federatedAudience reports whether aud names one of the issuer's audiences. The default (this
// server's issuer URL) is matched with or without a trailing slash, as assertions match it.
func (c *core) federatedAudience(ti storage.TrustedIssuer, aud jwt.ClaimStrings) bool {
	for _, a := range aud {
		if len(ti.Audiences) == 0 {
			if strings.TrimRight(a, "/") == strings.TrimRight(c.policy.Issuer, "/") {
				return true
			}
			continue
		}
		for _, want := range ti.Audiences {
			if a == want {
				return true
			}
		}
	}
	return false
}
