package verify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/tokensmith/tokensmith/internal/jwkscache"
)

// Defaults for the zero values of Config.
const (
	DefaultLeeway          = 10 * time.Second
	DefaultRefreshInterval = 10 * time.Second
	DefaultCacheTTL        = 5 * time.Second
	DefaultHTTPTimeout     = 10 * time.Second
)

// maxTokenLen bounds what is parsed at all. Tokensmith's tokens are under 1,000 characters
// (ATOL's limit); a few kilobytes leave room for long audience lists.
const maxTokenLen = 8192

// Config configures a Verifier. Issuer and Audience are required.
type Config struct {
	// Issuer is the authorization server's issuer URL, exactly as its tokens carry it in iss
	// (TOKENSMITH_ISSUER). Unless JWKSURL is set, the JWKS is found through the server's
	// metadata: RFC 8414 (/.well-known/oauth-authorization-server), then OpenID Connect
	// discovery (/.well-known/openid-configuration). The metadata must name the same issuer.
	// Use https beyond one machine: whoever can answer for these URLs decides which tokens
	// are genuine.
	Issuer string
	// JWKSURL, when set, is where the keys are fetched, with no discovery.
	JWKSURL string
	// Audience lists what this API answers to: a token is accepted when its aud names at
	// least one of them (RFC 9068 §4). Tokensmith's aud is a client's audience setting, or the
	// issuer for clients that set none.
	Audience []string
	// Realm is the realm of the WWW-Authenticate challenge; the first audience when empty.
	Realm string
	// Algorithms are the signing algorithms accepted: any of RS256, PS256, ES256 and EdDSA
	// (Tokensmith's keys.algorithms; a client's access_token_signing_alg picks one). RS256
	// alone when empty. A token is accepted only with the algorithm of the key its kid names
	// (the key's alg in the JWKS; for a key without one, RS256 for RSA, ES256 for P-256 and
	// EdDSA for Ed25519), so one key never verifies two algorithms. none and every symmetric
	// algorithm are refused here, in New.
	Algorithms []string
	// Leeway is the clock skew allowed when checking exp, nbf and iat (DefaultLeeway when 0,
	// none when negative; at most 5 minutes).
	Leeway time.Duration
	// RefreshInterval bounds the fetches that are not due to the cache lifetime running out:
	// however many tokens name kids that are not cached, the JWKS is fetched for them at most
	// once per interval, and after a failed fetch nothing is tried for an interval
	// (DefaultRefreshInterval when 0).
	RefreshInterval time.Duration
	// HTTPClient makes every request to the authorization server (discovery, JWKS,
	// introspection); a client with a DefaultHTTPTimeout timeout when nil.
	HTTPClient *http.Client
	// Introspection is needed by routes that use Introspect, IntrospectOnly or
	// PersonalTokens.
	Introspection IntrospectionConfig
	// ErrorBody renders the body of every refused request, for an API that has its own error
	// envelope. The status and the WWW-Authenticate header stay RFC 6750's. A route may set
	// its own with the RenderError option. When nil the body is
	// {"error":"…","error_description":"…"}.
	ErrorBody ErrorBodyFunc
	// DPoP configures the checks of DPoP-bound tokens (Authorization: DPoP and a proof).
	DPoP DPoPConfig
	// ClientCertificate finds the client certificate a certificate-bound token (cnf
	// x5t#S256) must have come with. When nil it is the TLS connection's; behind a proxy that
	// terminates TLS, read the proxy's header here, and only from requests the proxy sent.
	ClientCertificate func(*http.Request) *x509.Certificate
	// Logger receives a WARN line when the JWKS or the introspection endpoint starts failing,
	// and an INFO line when it answers again; slog.Default() when nil.
	Logger *slog.Logger
}

// IntrospectionConfig lets the resource server ask the authorization server about a token
// (RFC 7662). The resource server authenticates as a client of its own: create it with
// `tokensmith client create --resource-server` (resource_server: true), or introspection
// answers active:false for every other client's tokens.
type IntrospectionConfig struct {
	// URL of the introspection endpoint; the introspection_endpoint of the server's metadata
	// when empty.
	URL string
	// ClientID and ClientSecret of the resource server's client, sent with HTTP Basic
	// (client_secret_basic, form-encoded per RFC 6749 §2.3.1).
	ClientID, ClientSecret string
	// CacheTTL is how long an answer is reused (DefaultCacheTTL when 0; negative turns the
	// cache off). A revocation reaches an introspecting route within CacheTTL. Answers are
	// never kept past the token's own exp.
	CacheTTL time.Duration
}

// ErrorBodyFunc renders the body of a refused request: its Content-Type and bytes.
type ErrorBodyFunc func(r *http.Request, e *Error) (contentType string, body []byte)

// Verifier verifies Tokensmith access tokens. It is safe for concurrent use; create one per
// authorization server and share it between routes, so they share its key and introspection
// caches.
type Verifier struct {
	issuer   string
	audience []string
	realm    string
	leeway   time.Duration
	errBody  ErrorBodyFunc
	algs     []jose.SignatureAlgorithm
	intro    *introspector
	keys     keySet
	disc     *discovery
	dpop     DPoPConfig
	dpopAlgs string
	certOf   func(*http.Request) *x509.Certificate
	now      func() time.Time
	log      *slog.Logger
}

// New checks cfg and returns a Verifier. It makes no request: the metadata and the keys are
// fetched when the first token arrives, so a resource server starts while the authorization
// server is down. Call Refresh to fetch them at once (and fail early on a wrong URL).
func New(cfg Config) (*Verifier, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if err := checkURL(cfg.Issuer); err != nil {
		bad("Issuer: %v", err)
	}
	if cfg.JWKSURL != "" {
		if err := checkURL(cfg.JWKSURL); err != nil {
			bad("JWKSURL: %v", err)
		}
	}
	if cfg.Introspection.URL != "" {
		if err := checkURL(cfg.Introspection.URL); err != nil {
			bad("Introspection.URL: %v", err)
		}
	}
	if len(cfg.Audience) == 0 || slices.Contains(cfg.Audience, "") {
		bad("Audience: give at least one, and no empty one (RFC 9068 §4: a resource server checks aud)")
	}
	if cfg.Leeway > 5*time.Minute {
		bad("Leeway: %s is more than 5m", cfg.Leeway)
	}
	if cfg.RefreshInterval < 0 {
		bad("RefreshInterval: %s is negative", cfg.RefreshInterval)
	}
	if strings.ContainsAny(cfg.Realm, "\"\\") {
		bad("Realm: quotes and backslashes cannot appear in a challenge")
	}
	algs, err := acceptedAlgorithms(cfg.Algorithms)
	if err != nil {
		bad("Algorithms: %v", err)
	}
	proofAlgs, err := acceptedAlgorithms(cfg.DPoP.Algorithms)
	switch {
	case cfg.DPoP.Algorithms == nil:
		proofAlgs = signingAlgorithms
	case err != nil:
		bad("DPoP.Algorithms: %v", err)
	}
	if cfg.DPoP.ExternalURL != "" {
		if err := checkURL(cfg.DPoP.ExternalURL); err != nil {
			bad("DPoP.ExternalURL: %v", err)
		}
	}
	if cfg.DPoP.Window < 0 || cfg.DPoP.Window > 5*time.Minute {
		bad("DPoP.Window: %s is not between 0 and 5m", cfg.DPoP.Window)
	}
	if len(problems) > 0 {
		return nil, errors.New("verify: " + strings.Join(problems, "; "))
	}
	leeway := max(orDefault(cfg.Leeway, DefaultLeeway), 0)
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	realm := cfg.Realm
	if realm == "" {
		realm = quotable(cfg.Audience[0])
	}
	v := &Verifier{
		issuer: cfg.Issuer, audience: slices.Clone(cfg.Audience), realm: realm, leeway: leeway, algs: algs,
		errBody: cfg.ErrorBody, now: time.Now, log: log.With("component", "verify"),
		dpop: cfg.DPoP, certOf: cfg.ClientCertificate,
	}
	v.dpop.Algorithms = make([]string, len(proofAlgs))
	for i, a := range proofAlgs {
		v.dpop.Algorithms[i] = string(a)
	}
	v.dpopAlgs = strings.Join(v.dpop.Algorithms, " ")
	if v.dpop.Replay == nil {
		v.dpop.Replay = NewMemoryReplayCache(defaultReplayEntries)
	}
	interval := orDefault(cfg.RefreshInterval, DefaultRefreshInterval)
	v.disc = &discovery{issuer: cfg.Issuer, client: client, interval: interval, now: v.clock}
	jwksURL := func(ctx context.Context) (string, error) {
		if cfg.JWKSURL != "" {
			return cfg.JWKSURL, nil
		}
		md, err := v.disc.get(ctx)
		if err != nil {
			return "", err
		}
		return md.JWKSURI, nil
	}
	v.keys = keySet{jwkscache.New(jwkscache.Config{URL: jwksURL, Client: client, Interval: interval,
		Timeout: DefaultHTTPTimeout, Now: v.clock, Log: v.log})}
	if cfg.Introspection.ClientID != "" {
		ttl := orDefault(cfg.Introspection.CacheTTL, DefaultCacheTTL)
		if cfg.Introspection.CacheTTL < 0 {
			ttl = 0
		}
		endpoint := func(ctx context.Context) (string, error) {
			if cfg.Introspection.URL != "" {
				return cfg.Introspection.URL, nil
			}
			md, err := v.disc.get(ctx)
			if err != nil {
				return "", err
			}
			if md.IntrospectionEndpoint == "" {
				return "", errors.New("the server's metadata names no introspection_endpoint")
			}
			return md.IntrospectionEndpoint, nil
		}
		v.intro = &introspector{endpoint: endpoint, clientID: cfg.Introspection.ClientID, secret: cfg.Introspection.ClientSecret,
			client: client, ttl: ttl, now: v.clock, log: v.log}
	}
	return v, nil
}

// signingAlgorithms are the algorithms a Verifier can be configured for: Tokensmith's.
var signingAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// acceptedAlgorithms checks Config.Algorithms; RS256 alone when it is empty.
func acceptedAlgorithms(names []string) ([]jose.SignatureAlgorithm, error) {
	if len(names) == 0 {
		return []jose.SignatureAlgorithm{jose.RS256}, nil
	}
	var out []jose.SignatureAlgorithm
	for _, n := range names {
		alg := jose.SignatureAlgorithm(n)
		switch up := strings.ToUpper(n); {
		case up == "NONE" || strings.HasPrefix(up, "HS"):
			return nil, fmt.Errorf("%q would accept tokens anyone holding the JWKS can make", n)
		case !slices.Contains(signingAlgorithms, alg):
			return nil, fmt.Errorf("%q is not one of RS256, PS256, ES256, EdDSA", n)
		}
		if !slices.Contains(out, alg) {
			out = append(out, alg)
		}
	}
	return out, nil
}

// algorithmList names algs for an error message: "RS256", "RS256 and ES256".
func algorithmList(algs []jose.SignatureAlgorithm) string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// clock reads v.now, which tests replace.
func (v *Verifier) clock() time.Time { return v.now() }

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func checkURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// Refresh fetches the metadata (unless a JWKS URL is configured) and the JWKS now. A resource
// server may call it at start to fail early on a wrong URL; without it they are fetched when
// the first token arrives.
func (v *Verifier) Refresh(ctx context.Context) error {
	if err := v.keys.Refresh(ctx); err != nil {
		if ctx.Err() != nil {
			return refuse(ErrUnavailable, "the signing keys cannot be fetched", err)
		}
		return err
	}
	return nil
}

// Verify checks a token as a route built with opts would (scopes, introspection, personal
// tokens; the token-source options do not apply) and returns its claims, or an *Error that
// says why it is refused. It is the core of the middleware, for callers that are not HTTP
// handlers.
func (v *Verifier) Verify(ctx context.Context, token string, opts ...Option) (*Claims, error) {
	return v.Route(opts...).verify(ctx, token)
}

// Claims are the verified claims of an access token (RFC 9068 §2.2), or what introspection
// said of a token.
type Claims struct {
	Issuer   string
	Subject  string // the user's id, or the client's for client_credentials
	Audience []string
	ClientID string
	Scopes   []string
	ID       string // jti
	// IssuedAt, ExpiresAt and NotBefore are zero when the token does not say (a personal
	// token without expiry, no nbf).
	IssuedAt, ExpiresAt, NotBefore time.Time
	// Username is set by introspection for a user's token.
	Username string
	// Personal marks a personal token (tsp_…), accepted on a route with PersonalTokens.
	Personal bool
	// Introspected: the authorization server confirmed the token is active.
	Introspected bool
	// Confirmation is the key or certificate the token is bound to (cnf), empty for a bearer
	// token. Route.Authenticate has checked the binding; Verify, which sees no request,
	// has not.
	Confirmation Confirmation
}

// HasScope reports whether the token carries scope.
func (c *Claims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// accessClaims are the claims beside the registered ones that Tokensmith writes.
type accessClaims struct {
	ClientID string        `json:"client_id"`
	Scope    string        `json:"scope"`
	Cnf      *Confirmation `json:"cnf"`
}

// typ is the media type of an access token (RFC 9068 §2.1): at+jwt, or in full
// application/at+jwt; media types compare case-insensitively.
func isAccessTokenType(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == "at+jwt" || typ == "application/at+jwt"
}

// local verifies a JWT with the published keys: one of the configured algorithms (RS256 only
// by default), typ at+jwt, a key found by kid in the JWKS (never in the token's own jwk, jku,
// x5u or x5c) whose algorithm is the token's, then iss, aud, exp, nbf, iat and the claims
// RFC 9068 requires.
func (v *Verifier) local(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > maxTokenLen {
		return nil, refuse(ErrMalformed, fmt.Sprintf("the token is longer than %d characters", maxTokenLen), nil)
	}
	// The allowed algorithms are part of parsing: none, HS256 (with the public key as an HMAC
	// secret) and every other alg are refused before a key is looked at.
	tok, err := jwt.ParseSigned(raw, v.algs)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			verb := "is"
			if len(v.algs) > 1 {
				verb = "are"
			}
			return nil, refuse(ErrAlgorithm, fmt.Sprintf("the token is signed with %s, only %s %s accepted",
				printable(string(alg.Got)), algorithmList(v.algs), verb), err)
		}
		return nil, refuse(ErrMalformed, "the token is not a well-formed JWT", err)
	}
	if len(tok.Headers) != 1 {
		return nil, refuse(ErrMalformed, "the token is not a well-formed JWT", nil)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !isAccessTokenType(typ) {
		return nil, refuse(ErrType, fmt.Sprintf("the token type is %s, not at+jwt: not an access token", orNone(printable(typ))), nil)
	}
	if h.KeyID == "" {
		return nil, refuse(ErrUnknownKey, "the token names no signing key (kid)", nil)
	}
	key, err := v.keys.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if key.alg != jose.SignatureAlgorithm(h.Algorithm) {
		// RFC 7517 §4.4: a key is for one algorithm. An RSA key published for PS256 must not
		// verify an RS256 signature made with it, nor the other way round.
		return nil, refuse(ErrAlgorithm, fmt.Sprintf("the token is signed with %s, but its key is for %s", printable(h.Algorithm), key.alg), nil)
	}
	var std jwt.Claims
	var extra accessClaims
	if err := tok.Claims(key.pub, &std, &extra); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return nil, refuse(ErrSignature, "the token signature is invalid", err)
		}
		return nil, refuse(ErrClaims, "the token claims do not parse", err)
	}
	now := v.now()
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: v.audience, Time: now}, v.leeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, refuse(ErrIssuer, "the token was issued by another issuer", err)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, refuse(ErrAudience, "the token is not meant for this API (aud)", err)
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, refuse(ErrNotYetValid, "the token is not valid yet (nbf)", err)
	case errors.Is(err, jwt.ErrExpired):
		return nil, refuse(ErrExpired, "the token expired at "+std.Expiry.Time().UTC().Format(time.RFC3339), err)
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, refuse(ErrNotYetValid, "the token is issued in the future (iat)", err)
	case err != nil:
		return nil, refuse(ErrClaims, "the token claims are invalid", err)
	}
	// go-jose checks exp and iat only when present; RFC 9068 §2.2 requires them.
	for _, c := range []struct {
		name string
		ok   bool
	}{{"exp", std.Expiry != nil}, {"iat", std.IssuedAt != nil}, {"sub", std.Subject != ""},
		{"client_id", extra.ClientID != ""}, {"jti", std.ID != ""}} {
		if !c.ok {
			return nil, refuse(ErrClaims, "the token has no "+c.name+" claim", nil)
		}
	}
	out := &Claims{
		Issuer: std.Issuer, Subject: std.Subject, Audience: []string(std.Audience), ClientID: extra.ClientID,
		Scopes: strings.Fields(extra.Scope), ID: std.ID, IssuedAt: std.IssuedAt.Time(), ExpiresAt: std.Expiry.Time(),
	}
	if std.NotBefore != nil {
		out.NotBefore = std.NotBefore.Time()
	}
	if extra.Cnf != nil {
		out.Confirmation = *extra.Cnf
	}
	return out, nil
}

func orNone(s string) string {
	if s == "" {
		return "missing"
	}
	return s
}
