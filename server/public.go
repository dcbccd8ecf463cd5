package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/dpop"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/profiles"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Pinger reports whether the store is ready (readiness): reachable, and on Redis with
// min_replicas, with enough replicas to confirm writes (storage.ErrUnconfirmed otherwise).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Public is what the public listener needs.
type Public struct {
	Issuer  string
	Grants  *grants.Service
	Keys    *keys.Set
	Store   Pinger
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// Now is the clock for expires_in; time.Now when nil.
	Now func() time.Time
	// TrustedProxies are the addresses (IPs or CIDRs) whose X-Forwarded-For and
	// X-Forwarded-Proto are believed.
	TrustedProxies []string
	// Outages, if set, hears of every answer 503 for want of the store.
	Outages OutageReporter
	// Console, if set, is mounted under /console (the integration console).
	Console Mounter
	// Profiles are the seed API routes turned on (ProfileEndpoints).
	Profiles []profiles.Endpoint
	// Tracer, if set, records a span for every request (tracing.Open), a child of the
	// caller's when the request carries a W3C traceparent.
	Tracer trace.TracerProvider
	// MTLS says client certificates reach the server (RFC 8705): discovery then offers the
	// mutual-TLS client authentication methods, certificate-bound tokens and the
	// mtls_endpoint_aliases.
	MTLS bool
	// ClientCertHeader is the header a trusted TLS-terminating proxy passes the client
	// certificate in (URL-encoded PEM); empty: certificates come from the connection alone.
	ClientCertHeader string

	proxies *proxies
}

// Mounter adds its own routes to a group of the public listener (console.Console). The group
// shares the listener's recovery, access log and trusted-proxy rules.
type Mounter interface {
	Mount(r gin.IRouter)
}

// JWKSMaxAge is how long resource servers may cache the JWKS.
const JWKSMaxAge = 5 * time.Minute

// Handler returns the public HTTP handler.
func (p *Public) Handler() http.Handler {
	if p.Now == nil {
		p.Now = time.Now
	}

	if px, err := parseProxies(p.TrustedProxies); err == nil {
		p.proxies = px
	} else {
		p.proxies = &proxies{} // newEngine logs it
	}
	r := newEngine(p.Log, engineOptions{trustedProxies: p.TrustedProxies, outages: p.Outages, tracer: p.Tracer})
	r.POST("/oauth2/token", p.token)
	r.POST("/oauth2/revoke", p.revoke)
	r.POST("/oauth2/introspect", p.introspect)
	r.GET("/.well-known/jwks.json", p.jwks)
	r.GET("/.well-known/oauth-authorization-server", p.discovery)
	r.GET("/.well-known/openid-configuration", p.discovery)
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", p.ready)
	if p.Console != nil {
		p.Console.Mount(r.Group("/console"))
	}
	for _, ep := range p.Profiles {
		for _, m := range ep.Route.HTTPMethods() {
			r.Handle(m, ep.Path, p.profile(ep))
		}
	}
	return r
}

// tokenResponse is the success body of RFC 6749 §5.1, with expires_at and refresh_token_expires_in beside it.
type tokenResponse struct {
	AccessToken           string `json:"access_token"`
	TokenType             string `json:"token_type"`
	ExpiresIn             int64  `json:"expires_in"`
	ExpiresAt             int64  `json:"expires_at"`
	Scope                 string `json:"scope,omitempty"`
	RefreshToken          string `json:"refresh_token,omitempty"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in,omitempty"`
	// IssuedTokenType answers a token exchange (RFC 8693 §2.2.1).
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

func (p *Public) token(c *gin.Context) {
	p.issue(c, parseWithDPoP, func(t *grants.Token) any { return p.render(t) }, rfc6749Error)
}

// parseWithDPoP is ParseTokenRequest with the request's DPoP proofs (RFC 9449), which only the
// standard token endpoint takes: a seed API's wire format has no place for one.
func parseWithDPoP(r *http.Request) (*grants.Request, error) {
	req, err := ParseTokenRequest(r)
	if err == nil {
		req.DPoP = r.Header.Values(dpop.Header)
	}
	return req, err
}

// issue is a token request through any door (/oauth2/token or a seed API profile's route):
// parse reads the request, success and failure shape the answer; counting, the audit of a
// request refused before a grant, the caller's address and the headers are the same for all.
func (p *Public) issue(c *gin.Context, parse func(*http.Request) (*grants.Request, error),
	success func(*grants.Token) any, failure func(*protocol.Error) (int, any)) {
	start := time.Now()
	grant := "unknown"
	outcome := "ok"
	defer func() {
		p.Metrics.Requests.WithLabelValues(grant, outcome).Inc()
		p.Metrics.Duration.WithLabelValues(grant).Observe(time.Since(start).Seconds())
	}()
	req, err := parse(c.Request)
	if err == nil {
		err = p.withClientCert(c, req)
	}
	if err != nil {
		p.Grants.Refused(c.Request.Context(), grants.EndpointToken, err)
	} else {
		req.Remote = remote(c)
		if span := recording(c); span != nil {
			span.SetAttributes(attribute.String("oauth2.grant_type", req.GrantType), attribute.String("oauth2.client_id", req.ClientID))
		}
		// Only served grants become metric labels, so label values stay bounded.
		if p.Grants.Serves(req.GrantType) {
			grant = req.GrantType
		}
		var tok *grants.Token
		if tok, err = p.Grants.Token(c.Request.Context(), req); err == nil {
			noStore(c)
			rateLimitHeaders(c, tok.RateLimit)
			if tok.DPoPNonce != "" {
				c.Header(dpop.NonceHeader, tok.DPoPNonce)
			}
			c.JSON(http.StatusOK, success(tok))
			return
		}
	}
	outcome = protocol.As(err).Code
	writeErrorAs(c, p.Log, err, failure)
}

// revoke is RFC 7009: 200 whether or not the token was live (§2.2). The body is an empty JSON
// object rather than nothing: RFC 7009 lets the client ignore it, and OAuth client libraries
// (simple-oauth2 among them) parse every answer of the endpoint as JSON.
func (p *Public) revoke(c *gin.Context) {
	req, err := ParseTokenRequest(c.Request)
	if err == nil {
		err = p.withClientCert(c, req)
	}
	if err != nil {
		p.Grants.Refused(c.Request.Context(), grants.EndpointRevoke, err)
	} else {
		req.Remote = remote(c)
		err = p.Grants.Revoke(c.Request.Context(), req)
	}
	if err != nil {
		writeError(c, p.Log, err)
		return
	}
	noStore(c)
	c.JSON(http.StatusOK, struct{}{})
}

// introspect is RFC 7662.
func (p *Public) introspect(c *gin.Context) {
	req, err := ParseTokenRequest(c.Request)
	var out *grants.Introspection
	if err == nil {
		err = p.withClientCert(c, req)
	}
	if err != nil {
		p.Grants.Refused(c.Request.Context(), grants.EndpointIntrospect, err)
	} else {
		req.Remote = remote(c)
		out, err = p.Grants.Introspect(c.Request.Context(), req)
	}
	if err != nil {
		writeError(c, p.Log, err)
		return
	}
	noStore(c)
	c.JSON(http.StatusOK, out)
}

func (p *Public) render(t *grants.Token) tokenResponse {
	now := p.Now()
	out := tokenResponse{
		AccessToken: t.AccessToken, TokenType: t.Type(),
		ExpiresIn: t.ExpiresIn(now), ExpiresAt: t.ExpiresAt.Unix(), Scope: t.Scope,
		IssuedTokenType: t.IssuedTokenType,
	}
	if t.RefreshToken != "" {
		out.RefreshToken = t.RefreshToken
		out.RefreshTokenExpiresIn = t.RefreshExpiresIn(now)
	}
	return out
}

func (p *Public) jwks(c *gin.Context) {
	p.Metrics.JWKS.Inc()
	c.Header("Cache-Control", "public, max-age="+strconv.Itoa(int(JWKSMaxAge.Seconds())))
	c.Data(http.StatusOK, "application/jwk-set+json", p.Keys.JWKS())
}

// discovery is RFC 8414 metadata, also served at the OIDC path for tools that only know it.
// It names only what exists. There is no authorization endpoint, so no response_type is
// offered and response_types_supported is left out rather than listed empty: RFC 8414 calls it
// required, but the clients that read this document (go-oidc, openid-client) check only the
// issuer and the endpoints, and validators that insist on it (authlib's) refuse an empty list
// just the same. No ID token is issued, so no id_token_signing_alg_values_supported; the
// algorithms access tokens are signed with are listed under the name Gluu and Janssen use for
// JWT access tokens, access_token_signing_alg_values_supported (RFC 8414 and RFC 9068 define
// none). The *_endpoint_auth_signing_alg_values_supported list what a private_key_jwt client
// may sign its assertion with; client_secret_jwt (HMAC with the secret) is not taken.
func (p *Public) discovery(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=3600")
	auth := []string{protocol.AuthSecretBasic, protocol.AuthSecretPost, protocol.AuthPrivateKeyJWT}
	// Public clients (RFC 6749 §2.1) use the token endpoint and revocation; introspection
	// needs an authenticated caller (RFC 7662 §2.1).
	if p.MTLS {
		auth = append(auth, protocol.AuthTLSClient, protocol.AuthSelfSignedTLSClient)
	}
	withNone := append(slices.Clone(auth), protocol.AuthNone)
	doc := gin.H{
		"issuer":                                                   p.Issuer,
		"token_endpoint":                                           p.Issuer + "/oauth2/token",
		"jwks_uri":                                                 p.Issuer + "/.well-known/jwks.json",
		"revocation_endpoint":                                      p.Issuer + "/oauth2/revoke",
		"introspection_endpoint":                                   p.Issuer + "/oauth2/introspect",
		"grant_types_supported":                                    p.Grants.GrantTypes(),
		"token_endpoint_auth_methods_supported":                    withNone,
		"revocation_endpoint_auth_methods_supported":               withNone,
		"introspection_endpoint_auth_methods_supported":            auth,
		"token_endpoint_auth_signing_alg_values_supported":         grants.AssertionAlgorithms,
		"revocation_endpoint_auth_signing_alg_values_supported":    grants.AssertionAlgorithms,
		"introspection_endpoint_auth_signing_alg_values_supported": grants.AssertionAlgorithms,
		// A subject is the same user or client id for every client that sees it.
		"subject_types_supported":                   []string{"public"},
		"access_token_signing_alg_values_supported": p.Keys.Algorithms(),
		"dpop_signing_alg_values_supported":         dpop.Algorithms,
	}
	if p.MTLS {
		// One listener serves callers with and without a certificate, so the aliases are
		// the endpoints themselves (RFC 8705 §5): a client that looks for them finds them.
		doc["tls_client_certificate_bound_access_tokens"] = true
		doc["mtls_endpoint_aliases"] = gin.H{
			"token_endpoint":         p.Issuer + "/oauth2/token",
			"revocation_endpoint":    p.Issuer + "/oauth2/revoke",
			"introspection_endpoint": p.Issuer + "/oauth2/introspect",
		}
	}
	c.JSON(http.StatusOK, doc)
}

func (p *Public) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
	defer cancel()
	if err := p.Store.Ping(ctx); err != nil {
		state := "unreachable"
		if errors.Is(err, storage.ErrUnconfirmed) {
			// Redis answers, but writes could not be confirmed by min_replicas replicas.
			state = "too few replicas"
		}
		_ = c.Error(protocol.Wrap(protocol.TemporarilyUnavailable, "store "+state, err))
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "store": state})
		return
	}
	if p.Keys == nil || p.Keys.ActiveID() == "" {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "keys": "not loaded"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// remote is the caller's address, as requestContext recorded it.
func remote(c *gin.Context) string {
	r, _ := logging.RequestFrom(c.Request.Context())
	return r.Remote
}

// noStore marks answers that must not be cached (RFC 6749 §5.1).
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
}
