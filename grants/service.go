package grants

import (
	"context"
	"crypto/x509"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/internal/jwkscache"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/sync/singleflight"
)

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
	// through RFC 7009); nil in tests that run one Service.
	announce Announcer
	// cpu admits signatures and password checks first come, first served.
	cpu *cpuGate
	// audit receives an event for every token answered, refused, replayed or revoked.
	audit Auditor
	// observe, when set, measures every store call.
	observe StoreObserver
	// spans records the steps of a request when tracing is on.
	spans spans
	// clientKeys caches the key sets private_key_jwt clients publish at their jwks_uri.
	clientKeys *jwkscache.Group
	// auditKey keys the digests of refused usernames (WithAuditKey).
	auditKey []byte
	// patMisses remembers personal token ids the store did not hold; personalMatches counts
	// the digest comparisons of presented personal tokens.
	patMisses       *misses
	personalMatches atomic.Int64
	// fed caches trusted issuers and their keys, for workloads' platform tokens.
	fed *federated
	// clientCAs are the CAs of tls_client_auth clients (WithClientCAs).
	clientCAs func() *x509.CertPool
	// nonceKey keys the DPoP nonces (WithDPoPNonceKey).
	nonceKey []byte
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

// Option configures a Service.
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
	c := &core{store: store, keys: k, policy: p, now: time.Now, log: slog.Default(),
		replicas: func() int { return 1 }, trusted: func() bool { return true }, cpu: newCPUGate(0), audit: audit.Discard}
	for _, o := range opts {
		o(c)
	}
	if len(c.auditKey) == 0 {
		c.auditKey = processKey()
	}
	if len(c.nonceKey) == 0 {
		c.nonceKey = processKey()
	}
	if p.StoreTimeout > 0 || c.observe != nil || c.spans.tracer != nil {
		c.store = guardedStore{next: store, timeout: p.StoreTimeout, observe: c.observe, spans: c.spans}
	}
	c.cpu.spans = c.spans
	c.clients = newCache[storage.Client](p.ClientCacheTTL, c.now, c.trusted)
	c.pats = newCache[storage.PersonalToken](p.ClientCacheTTL, c.now, c.trusted)
	c.usage = newUsage()
	c.patMisses = newMisses()
	c.clientKeys = jwkscache.NewGroup(jwkscache.Config{Interval: 10 * time.Second, Timeout: 3 * time.Second, Now: c.now, Log: c.log})
	c.fed = newFederated(p.ClientCacheTTL, c.now, c.trusted, jwkscache.Config{Interval: 10 * time.Second, Timeout: 3 * time.Second, Now: c.now, Log: c.log})
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
		h.core.patMisses.forget(c.ID)
	case storage.ChangeUser:
		h.core.pats.dropIf(func(t storage.PersonalToken) bool { return t.UserID == c.ID })
	case storage.ChangeTrustedIssuer:
		h.core.fed.forget(c.ID)
	case "":
		h.core.clients.clear()
		h.core.pats.clear()
		h.core.patMisses.clear()
		h.core.fed.forget("")
	}
}

// Serves reports whether grant is a grant type this Service serves.
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
	if err := h.core.bindDPoP(ctx, c, r); err != nil {
		return nil, err
	}
	if err := h.core.bindCertificate(c, r); err != nil {
		return nil, err
	}
	t, err := g.Handle(ctx, c, r)
	if err == nil && len(r.DPoP) > 0 {
		// The next proof can carry it: no use_dpop_nonce round trip when one becomes required.
		t.DPoPNonce = h.core.dpopNonces(h.core.now())[0]
	}
	return t, err
}
