package grants

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/internal/jwkscache"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// Bounds on a client assertion (RFC 7523 §3): it lives at most MaxAssertionLifetime, so the
// store remembers its jti no longer than that; a little clock skew is forgiven.
const (
	MaxAssertionLifetime = 5 * time.Minute
	assertionLeeway      = 10 * time.Second
	maxJTILen            = 256
)

// AssertionAlgorithms are the signature algorithms a client assertion may use. none and
// every HMAC algorithm are refused: with HMAC, anyone holding the client's public key (it is
// public) could sign.
var AssertionAlgorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// assertionClaims are the claims RFC 7523 §3 requires of a client assertion.
type assertionClaims struct {
	jwt.RegisteredClaims
}

// timeProblem says what is wrong with the times of an assertion or a workload's token at now,
// or "": exp present, not passed and at most max ahead (and, with fromIAT, at most max after
// iat), iat and nbf not in the future, each with a little leeway for clock skew.
func (c *assertionClaims) timeProblem(now time.Time, max time.Duration, fromIAT bool) string {
	switch {
	case c.ExpiresAt == nil:
		return "exp is missing"
	case !now.Before(c.ExpiresAt.Add(assertionLeeway)):
		return "expired (exp)"
	case c.ExpiresAt.Sub(now) > max+assertionLeeway:
		return fmt.Sprintf("exp is more than %s ahead", max)
	case c.IssuedAt != nil && c.IssuedAt.After(now.Add(assertionLeeway)):
		return "issued in the future (iat)"
	case fromIAT && c.IssuedAt != nil && c.ExpiresAt.Sub(c.IssuedAt.Time) > max+assertionLeeway:
		return fmt.Sprintf("exp is more than %s after iat", max)
	case c.NotBefore != nil && c.NotBefore.After(now.Add(assertionLeeway)):
		return "not valid yet (nbf)"
	}
	return ""
}

// authenticateAssertion authenticates a private_key_jwt client (RFC 7523 §2.2, §3). The checks
// run in a fixed order: the algorithm before any key is looked at, then who the assertion
// names, then its audience and lifetime, then the signature with the client's key, and last
// the one-time jti in the store, so a forged or stale assertion never costs a store write.
// Each refusal names the check that failed and never the assertion itself.
func (c *core) authenticateAssertion(ctx context.Context, r *Request) (*Client, error) {
	fail := func(format string, args ...any) error {
		return protocol.Errorf(protocol.InvalidClient, "client assertion: "+format, args...)
	}
	var claims assertionClaims
	tok, _, err := jwt.NewParser().ParseUnverified(r.ClientAssertion, &claims)
	if err != nil {
		return nil, fail("not a well-formed signed JWT")
	}
	alg, _ := tok.Header["alg"].(string)
	if !slices.Contains(AssertionAlgorithms, alg) {
		return nil, fail("alg %s is not accepted (only %s)", quoted(alg), strings.Join(AssertionAlgorithms, ", "))
	}
	if claims.Issuer != "" && claims.Issuer != claims.Subject {
		// Not the client's own assertion: a token a trusted issuer gave a workload.
		return c.authenticateFederated(ctx, r, tok, &claims, alg)
	}
	if claims.Issuer == "" || claims.Subject == "" {
		return nil, fail("iss and sub must both be the client id")
	}
	if r.ClientID != "" && r.ClientID != claims.Subject {
		return nil, fail("iss and sub must both be the client id")
	}
	r.ClientID = claims.Subject
	cl, err := c.lookupClient(ctx, r.ClientID, false)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, protocol.Errorf(protocol.InvalidClient, "unknown client or wrong secret")
	}
	if err != nil {
		return nil, protocol.Unavailable(err)
	}
	if cl.TokenEndpointAuthMethod != protocol.AuthPrivateKeyJWT {
		// The cached record may predate a change of method.
		if cl, err = c.lookupClient(ctx, r.ClientID, true); err != nil {
			return nil, protocol.Unavailable(err)
		}
		if cl.TokenEndpointAuthMethod != protocol.AuthPrivateKeyJWT {
			return nil, protocol.Errorf(protocol.InvalidClient, "this client does not authenticate with private_key_jwt")
		}
	}
	if !c.assertionAudience(claims.Audience) {
		return nil, fail("aud must name the issuer %s or the token endpoint %s", c.policy.Issuer, c.tokenEndpoint())
	}
	now := c.now()
	if problem := claims.timeProblem(now, MaxAssertionLifetime, true); problem != "" {
		return nil, fail("%s", problem)
	}
	switch {
	case claims.ID == "":
		return nil, fail("jti is missing")
	case len(claims.ID) > maxJTILen:
		return nil, fail("jti is longer than %d bytes", maxJTILen)
	}
	kid, _ := tok.Header["kid"].(string)
	key, err := c.clientKey(ctx, cl, kid)
	if err != nil {
		return nil, err
	}
	if key.Alg != alg {
		return nil, fail("signed with %s, but the key %s is for %s", alg, quoted(kid), key.Alg)
	}
	// The signature, with the one algorithm the key is for: golang-jwt refuses any other.
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{key.Alg}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(r.ClientAssertion, &assertionClaims{}, func(*jwt.Token) (any, error) { return key.Public, nil })
	if err != nil {
		return nil, fail("the signature does not verify with the key %s", quoted(kid))
	}
	err = c.store.UseAssertion(ctx, storage.AssertionUse{ClientID: cl.ID, JTI: claims.ID, ExpiresAt: claims.ExpiresAt.Add(assertionLeeway), Now: now})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return nil, fail("this assertion was used before (jti): sign a new one for every request")
	}
	if err != nil {
		return nil, protocol.Unavailable(err)
	}
	return cl, nil
}

// tokenEndpoint is the URL of /oauth2/token under the issuer.
func (c *core) tokenEndpoint() string {
	return strings.TrimRight(c.policy.Issuer, "/") + "/oauth2/token"
}

// assertionAudience reports whether aud names this server: its issuer or its token endpoint
// (RFC 7523 §3 point 3). The token endpoint is also what revocation and introspection accept:
// one assertion form for every endpoint, as integrators' libraries build it.
func (c *core) assertionAudience(aud jwt.ClaimStrings) bool {
	issuer := strings.TrimRight(c.policy.Issuer, "/")
	for _, a := range aud {
		if strings.TrimRight(a, "/") == issuer || a == c.tokenEndpoint() {
			return true
		}
	}
	return false
}

// clientKey finds the client's key named kid: in its inline set, or in the set at its
// jwks_uri (cached, refetched on an unknown kid at most once per interval, served stale while
// the endpoint is down). Without a kid, the set's only key is meant.
func (c *core) clientKey(ctx context.Context, cl *Client, kid string) (jwkscache.Key, error) {
	fail := func(format string, args ...any) error {
		return protocol.Errorf(protocol.InvalidClient, "client assertion: "+format, args...)
	}
	if len(cl.JWKS) > 0 {
		keys, err := jwkscache.Parse(cl.JWKS)
		if err != nil {
			return jwkscache.Key{}, fail("the client's registered keys cannot be read")
		}
		if kid == "" && len(keys) == 1 {
			for _, k := range keys {
				return k, nil
			}
		}
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return jwkscache.Key{}, fail("no registered key has the kid %s", quoted(kid))
	}
	if cl.JWKSURI == "" {
		return jwkscache.Key{}, fail("the client has no keys registered")
	}
	if kid == "" {
		return jwkscache.Key{}, fail("the header names no key (kid)")
	}
	k, err := c.clientKeys.Get(cl.JWKSURI).Key(ctx, kid)
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, jwkscache.ErrUnknownKey):
		return jwkscache.Key{}, fail("no key at the client's jwks_uri has the kid %s", quoted(kid))
	default:
		c.log.Warn("a client's JWKS cannot be fetched", "client_id", cl.ID, "jwks_uri", cl.JWKSURI, "error", err)
		return jwkscache.Key{}, fail("the client's jwks_uri cannot be fetched and no key with the kid %s is cached", quoted(kid))
	}
}

// quoted shows a value from the request in an error description, shortened.
func quoted(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}
