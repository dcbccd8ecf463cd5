package grants

import (
	"context"
	"crypto/rsa"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/sync/singleflight"
)

// Request is a parsed token request. The HTTP layer fills it; nothing here reads HTTP.
type Request struct {
	GrantType string
	// Params holds every body parameter except the client credentials.
	Params       map[string]string
	ClientID     string
	ClientSecret string
	// AuthMethod is protocol.AuthSecretBasic, protocol.AuthSecretPost, or protocol.AuthNone
	// for a caller that sends no secret by design (a seed API's public app id). With
	// AuthNone, a refresh_token grant and no ClientID, the refresh token names its client,
	// which must be public (tokens.refresh sends nothing else).
	AuthMethod string
	// Remote is the caller's address, for the failed-login backoff.
	Remote string
	// refresh is the refresh token's record when it was read to find the client.
	refresh *storage.RefreshToken
}

// Token is what a successful grant returns. Times are absolute so a replayed answer (refresh
// grace window) reports the lifetime actually left.
type Token struct {
	// jti is kept for the reuse pool and the audit trail; it is not part of any answer.
	jti string
	// subject and reused are for the audit trail.
	subject string
	reused  bool
	// family is a new login's refresh family still to be stored, with the token's settlement
	// (reuse); not part of any answer.
	family           *storage.RefreshToken
	AccessToken      string    `json:"access_token"`
	IssuedAt         time.Time `json:"issued_at"`
	ExpiresAt        time.Time `json:"expires_at"`
	Scope            string    `json:"scope,omitempty"`
	RefreshToken     string    `json:"refresh_token,omitempty"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at,omitzero"`
	// IssuedTokenType is RFC 8693's issued_token_type, set by token exchange.
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	// RateLimit is where the caller stands against the client's tightest quota after this new
	// token; nil when the client has no limit or nothing was counted (reuse, refresh).
	RateLimit *protocol.RateLimit `json:"-"`
}

// ExpiresIn is how many seconds of the access token's life an answer reports at now. A token
// minted in this second reports its whole lifetime, even if the clock ticked over while
// answering; an earlier one (reused, or a retry in the refresh grace window) what is left.
func (t *Token) ExpiresIn(now time.Time) int64 { return max(t.ExpiresAt.Unix()-t.from(now), 0) }

// RefreshExpiresIn is ExpiresIn for the refresh token.
func (t *Token) RefreshExpiresIn(now time.Time) int64 {
	return max(t.RefreshExpiresAt.Unix()-t.from(now), 0)
}

func (t *Token) from(now time.Time) int64 {
	if n := now.Unix(); n-t.IssuedAt.Unix() > 1 {
		return n
	}
	return t.IssuedAt.Unix()
}

// Grant is one grant type.
type Grant interface {
	Type() oauth2.GrantType
	// Handle issues tokens for an authenticated client that is allowed this grant.
	Handle(ctx context.Context, c *Client, r *Request) (*Token, error)
}

// Policy holds the server-wide defaults that clients override one by one.
type Policy struct {
	Issuer               string
	Audience             []string
	ClientCredentialsTTL time.Duration
	PasswordTTL          time.Duration
	RefreshTTL           time.Duration
	// ExchangeTTL is the lifetime of access tokens from token exchange (at most the personal
	// token's remaining life).
	ExchangeTTL       time.Duration
	RefreshGrace      time.Duration
	ReuseMinRemaining time.Duration
	// DailyLimitLocation is the time zone whose calendar day a daily limit counts (UTC if nil).
	DailyLimitLocation *time.Location
	// FailedLoginLimit is how many wrong passwords one address may send for one username
	// before it is slowed down; ten times as many for one username from all addresses slow
	// down every address that has failed for it (storage.LoginAttempt).
	FailedLoginLimit int
	// ClientCacheTTL is how long a replica trusts a client record it read; 0 reads every time.
	ClientCacheTTL time.Duration
	// StoreTimeout bounds each store call of a request; 0 means no bound (tests).
	StoreTimeout time.Duration
}

// DefaultExchangeTTL is the lifetime of exchanged access tokens when the policy sets none.
const DefaultExchangeTTL = 15 * time.Minute

// Keys signs new access tokens and finds the public key of a kid, to verify tokens presented
// for introspection and revocation. keys.Set implements it.
type Keys interface {
	Sign(claims jwt.Claims) (string, error)
	PublicKey(kid string) (*rsa.PublicKey, bool)
}

// Service is the token service: it dispatches token requests to grants, and revokes and
// introspects what it issued. It reads no HTTP; the server package is its HTTP face.
type Service struct {
	core   *core
	grants map[string]Grant
}

// core is what the grants share.
type core struct {
	store  Store
	keys   Keys
	policy Policy
	now    func() time.Time
	log    *slog.Logger
	// onIssue, when set, is told about every token pair minted (metrics, tests).
	onIssue func(grant string)
	// onQuota, when set, is told about every issuance beyond a limit (metrics).
	onQuota func(QuotaEvent)
	// replicas is the number of live replicas, the capacity of a reuse pool.
	replicas func() int
	pools    singleflight.Group
	clients  *cache[storage.Client]
	pats     *cache[storage.PersonalToken]
	trusted  func() bool
	// usage collects when personal tokens were used, written to the store in batches.
	usage *usage
	// announce tells every replica about a change made here (a personal token revoked
	// through RFC 7009); nil in tests that run one handler.
	announce Announcer
	// cpu admits signatures and password checks first come, first served.
	cpu *cpuGate
	// audit receives an event for every token answered, refused, replayed or revoked.
	audit Auditor
	// observe, when set, measures every store call.
	observe StoreObserver
}

// Auditor takes audit events (audit.Writer implements it); it must not block.
type Auditor interface {
	Record(ctx context.Context, e audit.Event)
}

// WithAuditor sends audit events to a (and metrics that count them).
func WithAuditor(a Auditor) Option { return func(c *core) { c.audit = a } }

// Announcer tells every replica that a record changed (replica.Bus implements it).
type Announcer interface {
	Announce(ctx context.Context, c storage.Change) error
}

// WithAnnouncer makes changes made by the token endpoints (a revoked personal token) reach
// every replica at once.
func WithAnnouncer(a Announcer) Option { return func(c *core) { c.announce = a } }

// Option configures a Handler.
type Option func(*core)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(c *core) { c.now = now } }

// WithLogger sets the logger; it never receives secrets.
func WithLogger(l *slog.Logger) Option { return func(c *core) { c.log = l } }

// WithIssueHook registers fn to be called once for every newly minted access token.
func WithIssueHook(fn func(grant string)) Option { return func(c *core) { c.onIssue = fn } }

// WithReplicas sets the live-replica count used as reuse capacity (default: 1).
func WithReplicas(live func() int) Option { return func(c *core) { c.replicas = live } }

// WithChangeFeed makes the client cache depend on the change feed: while trusted() is false
// (the feed is down, so a change on another replica could be missed) every request reads its
// client from the store. Without it the cache is trusted for ClientCacheTTL.
func WithChangeFeed(trusted func() bool) Option { return func(c *core) { c.trusted = trusted } }

// NewService builds the dispatcher with all grants Tokensmith serves.
func NewService(store Store, k Keys, p Policy, opts ...Option) *Service {
	if p.StoreTimeout > 0 {
		store = deadlineStore{next: store, d: p.StoreTimeout}
	}
	c := &core{store: store, keys: k, policy: p, now: time.Now, log: slog.Default(),
		replicas: func() int { return 1 }, trusted: func() bool { return true }, cpu: newCPUGate(0), audit: audit.Discard}
	for _, o := range opts {
		o(c)
	}
	if c.observe != nil {
		c.store = observedStore{next: c.store, observe: c.observe}
	}
	c.clients = newCache[storage.Client](p.ClientCacheTTL, c.now, c.trusted)
	c.pats = newCache[storage.PersonalToken](p.ClientCacheTTL, c.now, c.trusted)
	c.usage = newUsage()
	if len(c.policy.Audience) == 0 {
		c.policy.Audience = []string{p.Issuer}
	}
	if c.policy.ExchangeTTL <= 0 {
		c.policy.ExchangeTTL = DefaultExchangeTTL
	}
	h := &Service{core: c, grants: map[string]Grant{}}
	for _, g := range []Grant{
		&clientCredentials{c},
		newPassword(c),
		newRefresh(c),
		&exchange{c},
	} {
		h.grants[string(g.Type())] = g
	}
	return h
}

// GrantTypes lists the grant types served, for discovery metadata.
func (h *Service) GrantTypes() []string {
	out := make([]string, 0, len(h.grants))
	for t := range h.grants {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Forget drops cached copies of a changed record, so the very next request reads it again.
// An empty kind drops everything (the change feed was down and may have missed changes).
func (h *Service) Forget(c storage.Change) {
	switch c.Kind {
	case storage.ChangeClient:
		h.core.clients.drop(c.ID)
	case storage.ChangePersonalToken:
		h.core.pats.drop(c.ID)
	case storage.ChangeUser:
		h.core.pats.dropIf(func(t storage.PersonalToken) bool { return t.UserID == c.ID })
	case "":
		h.core.clients.clear()
		h.core.pats.clear()
	}
}

// Serves reports whether grant is a grant type this handler serves.
func (h *Service) Serves(grant string) bool {
	_, ok := h.grants[grant]
	return ok
}

// Token handles one token request end to end, and records its outcome in the audit trail.
func (h *Service) Token(ctx context.Context, r *Request) (*Token, error) {
	t, err := h.token(ctx, r)
	if err != nil {
		if err != errReplayRefresh { // recorded where the replay was found, with its family
			h.core.refused(ctx, EndpointToken, r, err)
		}
		return nil, err
	}
	h.core.audit.Record(ctx, issuedEvent(r, t))
	return t, nil
}

func (h *Service) token(ctx context.Context, r *Request) (*Token, error) {
	if r.GrantType == "" {
		return nil, protocol.Errorf(protocol.InvalidRequest, "missing grant_type")
	}
	g, ok := h.grants[r.GrantType]
	if !ok {
		return nil, protocol.Errorf(protocol.UnsupportedGrantType, "grant_type %q is not supported", r.GrantType)
	}
	if r.ClientID == "" && r.AuthMethod == protocol.AuthNone && r.GrantType == protocol.GrantRefreshToken {
		rec, err := h.core.readRefresh(ctx, r.Params[protocol.ParamRefreshToken])
		if err != nil {
			return nil, err
		}
		r.ClientID, r.refresh = rec.ClientID, &rec
	}
	c, err := h.core.authenticate(ctx, r)
	if err != nil {
		return nil, err
	}
	if c.IsPublic() && !slices.Contains(PublicGrants, r.GrantType) {
		return nil, protocol.Errorf(protocol.UnauthorizedClient, "a public client may use only the %s grants", strings.Join(PublicGrants, " and "))
	}
	if !slices.Contains(c.GrantTypes, r.GrantType) {
		return nil, protocol.Errorf(protocol.UnauthorizedClient, "client is not allowed the %s grant", r.GrantType)
	}
	return g.Handle(ctx, c, r)
}

// PublicGrants are the grants a public client may have: a user's password, and the
// refresh tokens of that login. Never client_credentials: with no secret, anyone who knows the
// id would be the client.
var PublicGrants = []string{protocol.GrantPassword, protocol.GrantRefreshToken}

// Client adapts a stored client to go-oauth2's ClientInfo and ClientPasswordVerifier, so the
// same value can be handed to go-oauth2 components.
type Client struct {
	storage.Client
	now time.Time
}

var (
	_ oauth2.ClientInfo             = (*Client)(nil)
	_ oauth2.ClientPasswordVerifier = (*Client)(nil)
)

// GetID implements oauth2.ClientInfo.
func (c *Client) GetID() string { return c.ID }

// GetSecret implements oauth2.ClientInfo. It is always empty: only a digest is stored, and
// VerifyPassword is the way to check a secret.
func (c *Client) GetSecret() string { return "" }

// GetDomain implements oauth2.ClientInfo; Tokensmith clients have no redirect URIs.
func (c *Client) GetDomain() string { return "" }

// IsPublic implements oauth2.ClientInfo: a client with token_endpoint_auth_method "none"
// (RFC 6749 §2.1) has no secret and is identified by its id alone.
func (c *Client) IsPublic() bool { return c.TokenEndpointAuthMethod == protocol.AuthNone }

// GetUserID implements oauth2.ClientInfo with the owning user.
func (c *Client) GetUserID() string { return c.Owner }

// VerifyPassword implements oauth2.ClientPasswordVerifier: the current secret, or the previous
// one while its rotation grace lasts, compared in constant time.
func (c *Client) VerifyPassword(presented string) bool {
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
	if r.ClientID == "" {
		return nil, fail("client authentication is required")
	}
	cl, err := c.lookupClient(ctx, r.ClientID, false)
	if err == nil && !cl.accepts(r.ClientSecret) {
		// The cached record may predate a secret rotation: check the store before refusing.
		cl, err = c.lookupClient(ctx, r.ClientID, true)
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

// accepts reports whether presented authenticates the client: its secret for a confidential
// client; nothing at all for a public one, which must not be sent a secret it does not have
// (a secret sent anyway means the caller takes it for another client).
func (c *Client) accepts(presented string) bool {
	if c.IsPublic() {
		return presented == ""
	}
	return c.VerifyPassword(presented)
}

// ErrBusy is the cause of a 503 that comes from this server's own load, not from the store: a
// caller that gave up while waiting for a CPU slot, or a reuse pool whose every slot is held by
// issuances in flight. The HTTP layer does not report it as a store outage.
var ErrBusy = errors.New("grants: busy")

// resolveScope checks a requested scope (RFC 6749 §3.3) against the client's allowed scopes.
// No scope requested means every allowed scope.
func resolveScope(allowed []string, requested string) (string, error) {
	if requested == "" {
		return strings.Join(allowed, " "), nil
	}
	var out []string
	for _, s := range strings.Split(requested, " ") {
		if s == "" {
			continue
		}
		if !validScopeToken(s) {
			return "", protocol.Errorf(protocol.InvalidScope, "scope %q has characters RFC 6749 §3.3 does not allow", s)
		}
		if !slices.Contains(allowed, s) {
			return "", protocol.Errorf(protocol.InvalidScope, "scope %q is not allowed for this client", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " "), nil
}

func validScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x21 || b == 0x22 || b == 0x5c || b > 0x7e {
			return false
		}
	}
	return true
}

// target resolves the scope and audience a new token is asked for (RFC 6749 §3.3, RFC 8707).
func (c *core) target(cl *Client, r *Request) (scope string, aud []string, err error) {
	if scope, err = resolveScope(cl.Scopes, r.Params[protocol.ParamScope]); err != nil {
		return "", nil, err
	}
	aud, err = c.resolveAudience(cl, r.Params[protocol.ParamAudience])
	return scope, aud, err
}

// resolveAudience picks the aud: the requested one if the client may have it, else all of the
// client's audiences (or the server default).
func (c *core) resolveAudience(cl *Client, requested string) ([]string, error) {
	allowed := cl.Audience
	if len(allowed) == 0 {
		allowed = c.policy.Audience
	}
	if requested == "" {
		return allowed, nil
	}
	if !slices.Contains(allowed, requested) {
		return nil, protocol.Errorf(protocol.InvalidTarget, "audience %q is not allowed for this client", requested)
	}
	return []string{requested}, nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
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
