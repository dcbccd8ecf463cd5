package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/dpop"
)

// PersonalTokenPrefix starts every Tokensmith personal token.
const PersonalTokenPrefix = "tsp_"

// Names of the extra places seed APIs read a token from, for TokenHeader and TokenQuery.
const (
	// EvotorHeader: Evotor's cloud sends the raw token (no "Bearer ") in X-Authorization.
	EvotorHeader = "X-Authorization"
	// AccessTokenQuery: RFC 6750 §2.3, and Evotor's iframe pages.
	AccessTokenQuery = "access_token"
)

// introspectMode says when a route asks the authorization server.
type introspectMode int

const (
	localOnly introspectMode = iota
	afterLocal
	introspectOnly
)

// Option sets what one route asks of a token.
type Option func(*Route)

// Scopes requires every one of scopes; a valid token without one of them is answered 403
// insufficient_scope, naming them.
func Scopes(scopes ...string) Option {
	return func(rt *Route) { rt.scopes = append(rt.scopes, scopes...) }
}

// TokenHeader also reads the token from the header name: the raw token, as Evotor sends
// X-Authorization, or "Bearer " and the token. ATOL's clients use "Token".
func TokenHeader(name string) Option {
	return func(rt *Route) { rt.headers = append(rt.headers, http.CanonicalHeaderKey(name)) }
}

// TokenQuery also reads the token from the query parameter name (access_token in RFC 6750
// §2.3 and for Evotor's iframe pages; tokenid for ATOL's clients). A token in a URL ends up
// in access logs and browser history: offer it only where the caller cannot send a header.
func TokenQuery(name string) Option {
	return func(rt *Route) { rt.queries = append(rt.queries, name) }
}

// Introspect asks the introspection endpoint after the local checks have passed, so a
// revoked token is refused within Config.Introspection.CacheTTL rather than at its exp. It
// costs a request to the authorization server per token and cache lifetime.
func Introspect() Option { return func(rt *Route) { rt.mode = max(rt.mode, afterLocal) } }

// IntrospectOnly lets the introspection endpoint decide alone, without local verification:
// for tokens the resource server cannot verify itself. iss, aud, exp and scopes are still
// checked in its answer.
func IntrospectOnly() Option { return func(rt *Route) { rt.mode = introspectOnly } }

// PersonalTokens also accepts Tokensmith personal tokens (tsp_…), which only introspection can
// check. They carry no aud: any API of the issuer that accepts personal tokens accepts all of
// them (within their scopes), so enable it where that is meant.
func PersonalTokens() Option { return func(rt *Route) { rt.personal = true } }

// RenderError renders this route's refusals (see Config.ErrorBody).
func RenderError(f ErrorBodyFunc) Option { return func(rt *Route) { rt.errBody = f } }

// Route is what one route asks of a token: built once by Verifier.Route, used by every
// request. Its methods are safe for concurrent use.
type Route struct {
	v        *Verifier
	scopes   []string
	headers  []string
	queries  []string
	mode     introspectMode
	personal bool
	bound    bool
	errBody  ErrorBodyFunc
}

// Route builds a route's requirements. It panics when an option needs introspection and
// Config.Introspection has no client, a mistake to catch when the routes are set up rather
// than on the first request.
func (v *Verifier) Route(opts ...Option) *Route {
	rt := &Route{v: v, errBody: v.errBody}
	for _, o := range opts {
		o(rt)
	}
	if (rt.mode != localOnly || rt.personal) && v.intro == nil {
		panic("verify: Introspect, IntrospectOnly and PersonalTokens need Config.Introspection.ClientID")
	}
	for _, s := range rt.scopes {
		if s == "" || strings.ContainsAny(s, "\" \\") {
			panic(fmt.Sprintf("verify: %q is not a scope (RFC 6749 §3.3)", s))
		}
	}
	return rt
}

// Middleware returns net/http middleware that lets through requests whose token satisfies
// opts, with the verified Claims in the request context (FromContext), and answers the others
// as RFC 6750 §3 says.
func (v *Verifier) Middleware(opts ...Option) func(http.Handler) http.Handler {
	return v.Route(opts...).Wrap
}

// Wrap is the route's net/http middleware.
func (rt *Route) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, err := rt.Authenticate(r)
		if err != nil {
			rt.Refuse(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), claims)))
	})
}

// Authenticate finds the request's token, verifies it, checks that a sender-constrained token
// came with its DPoP proof or client certificate, and checks the scopes. The error is an
// *Error.
func (rt *Route) Authenticate(r *http.Request) (*Claims, error) {
	tok, scheme, err := rt.token(r)
	if err != nil {
		if rt.bound {
			var e *Error
			if errors.As(err, &e) && e.scheme == "" {
				e.scheme, e.algs = schemeDPoP, rt.v.dpopAlgs
			}
		}
		return nil, err
	}
	var proof *dpop.Proof
	if scheme == schemeDPoP {
		if proof, err = rt.checkProof(r, tok); err != nil {
			return nil, err
		}
	}
	claims, err := rt.verify(r.Context(), tok)
	if err != nil {
		var e *Error
		if scheme == schemeDPoP && errors.As(err, &e) && e.scheme == "" {
			e.scheme, e.algs = schemeDPoP, rt.v.dpopAlgs
		}
		return nil, err
	}
	if err := rt.checkBinding(r, scheme, claims); err != nil {
		return nil, err
	}
	if proof != nil {
		if err := rt.bindProof(r.Context(), proof, claims); err != nil {
			return nil, err
		}
	}
	return claims, nil
}

// Refuse answers a request Authenticate refused: the status and WWW-Authenticate of RFC 6750
// §3 (none for a 503), and a body rendered by the route's ErrorBodyFunc.
func (rt *Route) Refuse(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	h := w.Header()
	if c := e.challenge(rt.v.realm); c != "" {
		h.Set("WWW-Authenticate", c)
	}
	h.Set("Cache-Control", "no-store")
	render := rt.errBody
	if render == nil {
		render = defaultBody
	}
	ct, body := render(r, e)
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func defaultBody(_ *http.Request, e *Error) (string, []byte) {
	body, _ := json.Marshal(struct {
		Error       string `json:"error,omitempty"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
	return "application/json", append(body, '\n')
}

// token reads the token from the places this route accepts: Authorization: Bearer always, the
// extra headers and query parameters when configured. RFC 6750 §2 forbids sending a token in
// more than one way; two places carrying the same token are tolerated, different ones refused.
// The scheme is DPoP for "Authorization: DPoP …", Bearer otherwise.
func (rt *Route) token(r *http.Request) (string, string, error) {
	var found []string
	scheme := schemeBearer
	auth := r.Header.Values("Authorization")
	if len(auth) > 1 {
		return "", "", refuse(ErrMalformedRequest, "more than one Authorization header", nil)
	}
	if len(auth) == 1 {
		name, tok, spaced := strings.Cut(auth[0], " ")
		switch {
		case strings.EqualFold(name, schemeBearer), strings.EqualFold(name, schemeDPoP):
			tok = strings.TrimLeft(tok, " ")
			if !spaced || !isB64Token(tok) {
				return "", "", refuse(ErrMalformedRequest, "the Authorization header must be Bearer and the token", nil)
			}
			if strings.EqualFold(name, schemeDPoP) {
				scheme = schemeDPoP
			}
			found = append(found, tok)
		case !spaced:
			// A bare value ("Authorization: eyJ…"): a token without its scheme, not another scheme.
			return "", "", refuse(ErrMalformedRequest, "the Authorization header must be Bearer and the token", nil)
		}
		// Another scheme (Basic …) is not a bearer token: the request has none of ours.
	}
	for _, name := range rt.headers {
		vals := r.Header.Values(name)
		if len(vals) > 1 {
			return "", "", refuse(ErrMalformedRequest, "more than one "+name+" header", nil)
		}
		if len(vals) == 1 {
			tok := strings.TrimSpace(vals[0])
			if len(tok) > 7 && strings.EqualFold(tok[:7], "Bearer ") {
				tok = strings.TrimLeft(tok[7:], " ")
			}
			if !isB64Token(tok) {
				return "", "", refuse(ErrMalformedRequest, "the "+name+" header must hold the token", nil)
			}
			found = append(found, tok)
		}
	}
	if len(rt.queries) > 0 {
		q := r.URL.Query()
		for _, name := range rt.queries {
			vals := q[name]
			if len(vals) > 1 {
				return "", "", refuse(ErrMalformedRequest, "more than one "+name+" parameter", nil)
			}
			if len(vals) == 1 {
				if !isB64Token(vals[0]) {
					return "", "", refuse(ErrMalformedRequest, "the "+name+" parameter must hold the token", nil)
				}
				found = append(found, vals[0])
			}
		}
	}
	switch {
	case len(found) == 0:
		return "", "", refuse(ErrNoToken, "the request carries no access token", nil)
	case slices.ContainsFunc(found, func(t string) bool { return t != found[0] }):
		return "", "", refuse(ErrMalformedRequest, "the request carries different tokens in more than one place", nil)
	}
	return found[0], scheme, nil
}

// isB64Token: RFC 6750 §2.1 b64token, 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
// *"=", which covers JWTs and personal tokens.
func isB64Token(s string) bool {
	t := strings.TrimRight(s, "=")
	if t == "" || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// verify checks a token by the route's rules.
func (rt *Route) verify(ctx context.Context, tok string) (*Claims, error) {
	v := rt.v
	var claims *Claims
	var err error
	switch {
	case strings.HasPrefix(tok, PersonalTokenPrefix):
		if !rt.personal {
			return nil, refuse(ErrType, "a personal token is not accepted here: exchange it for an access token", nil)
		}
		claims, err = rt.introspected(ctx, tok, false)
	case rt.mode == introspectOnly:
		claims, err = rt.introspected(ctx, tok, false)
	default:
		claims, err = v.local(ctx, tok)
		if err == nil && rt.mode == afterLocal {
			var asked *Claims
			if asked, err = rt.introspected(ctx, tok, true); err == nil {
				claims.Username, claims.Introspected = asked.Username, true
			}
		}
	}
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, s := range rt.scopes {
		if !claims.HasScope(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		e := refuse(ErrInsufficientScope, "the token lacks the scope "+strings.Join(missing, " "), nil)
		e.Scope = strings.Join(rt.scopes, " ")
		return nil, e
	}
	return claims, nil
}

// introspected asks the introspection endpoint and checks its answer like a token: active,
// an access token (or a personal token where accepted), the issuer, the audience, the times.
func (rt *Route) introspected(ctx context.Context, tok string, checkedLocally bool) (*Claims, error) {
	v := rt.v
	a, err := v.intro.introspect(ctx, tok)
	if err != nil {
		return nil, err
	}
	if !a.Active {
		if checkedLocally {
			return nil, refuse(ErrInactive, "the token has been revoked", nil)
		}
		return nil, refuse(ErrInactive, "the token is not active (expired, revoked or unknown)", nil)
	}
	personal := a.TokenType == introspectedPersonal
	switch {
	case personal && !rt.personal:
		return nil, refuse(ErrType, "a personal token is not accepted here: exchange it for an access token", nil)
	case !personal && a.TokenType != introspectedAccess && a.TokenType != introspectedDPoP:
		return nil, refuse(ErrType, "not an access token", nil)
	case a.Iss != v.issuer:
		return nil, refuse(ErrIssuer, "the token was issued by another issuer", nil)
	case !personal && !slices.ContainsFunc(v.audience, a.Aud.Contains):
		return nil, refuse(ErrAudience, "the token is not meant for this API (aud)", nil)
	}
	now := v.now()
	c := &Claims{Issuer: a.Iss, Subject: a.Sub, Audience: []string(a.Aud), ClientID: a.ClientID, Scopes: strings.Fields(a.Scope),
		ID: a.Jti, Username: a.Username, Personal: personal, Introspected: true}
	if a.Cnf != nil {
		c.Confirmation = *a.Cnf
	}
	if a.Exp != 0 {
		c.ExpiresAt = time.Unix(a.Exp, 0)
		if now.Add(-v.leeway).After(c.ExpiresAt) {
			return nil, refuse(ErrExpired, "the token expired at "+c.ExpiresAt.UTC().Format(time.RFC3339), nil)
		}
	}
	if a.Nbf != 0 {
		c.NotBefore = time.Unix(a.Nbf, 0)
		if now.Add(v.leeway).Before(c.NotBefore) {
			return nil, refuse(ErrNotYetValid, "the token is not valid yet (nbf)", nil)
		}
	}
	if a.Iat != 0 {
		c.IssuedAt = time.Unix(a.Iat, 0)
	}
	return c, nil
}

type claimsKey struct{}

// NewContext returns ctx carrying claims (the middleware does this; tests of handlers may too).
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the verified claims the middleware put in ctx.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}
