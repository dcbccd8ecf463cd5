package registry

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/duration"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/internal/jwkscache"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// ClientInput is the body of POST and PATCH /admin/clients. Nil fields are left as they are
// (PATCH) or take their defaults (POST).
type ClientInput struct {
	ClientID                *string            `json:"client_id,omitempty"`
	Name                    *string            `json:"name,omitempty"`
	GrantTypes              *[]string          `json:"grant_types,omitempty"`
	Scopes                  *[]string          `json:"scopes,omitempty"`
	Audience                *protocol.Audience `json:"audience,omitempty"`
	AccessTokenTTL          *string            `json:"access_token_ttl,omitempty"`
	RefreshTokenTTL         *string            `json:"refresh_token_ttl,omitempty"`
	RefreshGrace            *string            `json:"refresh_grace,omitempty"`
	Reuse                   *bool              `json:"reuse,omitempty"`
	ReuseMinRemaining       *string            `json:"reuse_min_remaining,omitempty"`
	DailyLimit              *int               `json:"daily_limit,omitempty"`
	HourlyLimit             *int               `json:"hourly_limit,omitempty"`
	DailyLimitShadow        *bool              `json:"daily_limit_shadow,omitempty"`
	HourlyLimitShadow       *bool              `json:"hourly_limit_shadow,omitempty"`
	TokenEndpointAuthMethod *string            `json:"token_endpoint_auth_method,omitempty"`
	Owner                   *string            `json:"owner,omitempty"`
	ResourceServer          *bool              `json:"resource_server,omitempty"`
	// AccessTokenSigningAlg is the algorithm of the client's access tokens: one of the
	// server's keys.algorithms, the first of them when not given at creation (or set to "").
	AccessTokenSigningAlg *string `json:"access_token_signing_alg,omitempty"`
	// DPoPBoundAccessTokens makes every token request of the client carry a DPoP proof, so
	// that none of its access tokens is a bearer token.
	DPoPBoundAccessTokens *bool `json:"dpop_bound_access_tokens,omitempty"`
	// DPoPNonceRequired makes the client's DPoP proofs carry a nonce the server handed out
	// (DPoP-Nonce), so that no proof can be made ahead of time.
	DPoPNonceRequired *bool `json:"dpop_nonce_required,omitempty"`
	// JWKS (an RFC 7517 set of public keys, inline) or JWKSURI (where the client publishes
	// it) holds the keys a private_key_jwt client signs its assertions with; null or "" removes.
	JWKS    *json.RawMessage `json:"jwks,omitempty"`
	JWKSURI *string          `json:"jwks_uri,omitempty"`
	// TLSClientAuthSubjectDN and the four TLSClientAuthSAN fields name the certificate of a
	// tls_client_auth client (RFC 8705 §2.1.2): exactly one is set; "" removes.
	TLSClientAuthSubjectDN *string `json:"tls_client_auth_subject_dn,omitempty"`
	TLSClientAuthSANDNS    *string `json:"tls_client_auth_san_dns,omitempty"`
	TLSClientAuthSANURI    *string `json:"tls_client_auth_san_uri,omitempty"`
	TLSClientAuthSANIP     *string `json:"tls_client_auth_san_ip,omitempty"`
	TLSClientAuthSANEmail  *string `json:"tls_client_auth_san_email,omitempty"`
	// TLSClientCertificateBoundAccessTokens binds the client's access tokens to the TLS
	// client certificate it asks with (RFC 8705 §3).
	TLSClientCertificateBoundAccessTokens *bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	// FederatedIdentities are the workloads that may act as the client with a token their
	// platform issued (a trusted issuer's iss and the token's sub); [] removes them all.
	FederatedIdentities *[]storage.FederatedIdentity `json:"federated_identities,omitempty"`
}

// ClientView is a client as the admin API shows it. Durations that are empty use the server
// default. ClientSecret is set only in the answer that created or rotated it, and never for a
// public client, which has none.
type ClientView struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	Name                    string   `json:"name"`
	GrantTypes              []string `json:"grant_types"`
	Scopes                  []string `json:"scopes"`
	Audience                []string `json:"audience"`
	AccessTokenTTL          string   `json:"access_token_ttl,omitempty"`
	RefreshTokenTTL         string   `json:"refresh_token_ttl,omitempty"`
	RefreshGrace            string   `json:"refresh_grace,omitempty"`
	Reuse                   bool     `json:"reuse"`
	ReuseMinRemaining       string   `json:"reuse_min_remaining,omitempty"`
	DailyLimit              int      `json:"daily_limit"`
	HourlyLimit             int      `json:"hourly_limit"`
	DailyLimitShadow        bool     `json:"daily_limit_shadow"`
	HourlyLimitShadow       bool     `json:"hourly_limit_shadow"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	Owner                   string   `json:"owner,omitempty"`
	ResourceServer          bool     `json:"resource_server"`
	AccessTokenSigningAlg   string   `json:"access_token_signing_alg"`
	DPoPBoundAccessTokens   bool     `json:"dpop_bound_access_tokens"`
	DPoPNonceRequired       bool     `json:"dpop_nonce_required"`
	JWKSURI                 string   `json:"jwks_uri,omitempty"`
	// The name a tls_client_auth client's certificate is matched by (one of them).
	TLSClientAuthSubjectDN string `json:"tls_client_auth_subject_dn,omitempty"`
	TLSClientAuthSANDNS    string `json:"tls_client_auth_san_dns,omitempty"`
	TLSClientAuthSANURI    string `json:"tls_client_auth_san_uri,omitempty"`
	TLSClientAuthSANIP     string `json:"tls_client_auth_san_ip,omitempty"`
	TLSClientAuthSANEmail  string `json:"tls_client_auth_san_email,omitempty"`
	// TLSClientCertificateBoundAccessTokens: the client's access tokens carry cnf x5t#S256.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens"`
	// KeyIDs are the kids of an inline jwks: the keys themselves are not shown again.
	KeyIDs []string `json:"key_ids,omitempty"`
	// FederatedIdentities are the workloads that may act as the client.
	FederatedIdentities []storage.FederatedIdentity `json:"federated_identities,omitempty"`
	SecretGraceUntil    time.Time                   `json:"previous_secret_valid_until,omitzero"`
	CreatedAt           time.Time                   `json:"created_at"`
	UpdatedAt           time.Time                   `json:"updated_at"`
}

// View renders a stored client.
func View(c storage.Client) ClientView {
	v := ClientView{
		ClientID: c.ID, Name: c.Name, GrantTypes: nonNil(c.GrantTypes), Scopes: nonNil(c.Scopes),
		Audience: nonNil(c.Audience), Reuse: c.Reuse, DailyLimit: c.DailyLimit,
		HourlyLimit: c.HourlyLimit, DailyLimitShadow: c.DailyLimitShadow, HourlyLimitShadow: c.HourlyLimitShadow,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, Owner: c.Owner, ResourceServer: c.ResourceServer,
		AccessTokenTTL: fmtDur(c.AccessTokenTTL), RefreshTokenTTL: fmtDur(c.RefreshTokenTTL),
		ReuseMinRemaining: fmtDur(c.ReuseMinRemaining), AccessTokenSigningAlg: c.SigningAlg(),
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, JWKSURI: c.JWKSURI, DPoPBoundAccessTokens: c.DPoPBoundAccessTokens,
		DPoPNonceRequired:      c.DPoPNonceRequired,
		FederatedIdentities:    c.FederatedIdentities,
		TLSClientAuthSubjectDN: c.TLSClientAuth.SubjectDN, TLSClientAuthSANDNS: c.TLSClientAuth.SANDNS,
		TLSClientAuthSANURI: c.TLSClientAuth.SANURI, TLSClientAuthSANIP: c.TLSClientAuth.SANIP,
		TLSClientAuthSANEmail:                 c.TLSClientAuth.SANEmail,
		TLSClientCertificateBoundAccessTokens: c.TLSClientCertificateBoundAccessTokens,
	}
	if len(c.JWKS) > 0 {
		v.KeyIDs, _ = jwkscache.Check(c.JWKS)
	}
	if c.RefreshGrace != nil {
		v.RefreshGrace = duration.Format(*c.RefreshGrace)
	}
	if len(c.PrevSecretHash) > 0 && time.Now().Before(c.PrevSecretExpiresAt) {
		v.SecretGraceUntil = c.PrevSecretExpiresAt
	}
	return v
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return duration.Format(d)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Grant types a client may be given.
var knownGrants = []string{protocol.GrantClientCredentials, protocol.GrantPassword, protocol.GrantRefreshToken, protocol.GrantTokenExchange}

// CreateClient registers a client and returns it with its secret, which is shown only here.
//
// A create retried with the same request id (X-Request-Id) and the same input within
// RetryWindow makes no second client: the first attempt's answer never arrived (a 503 when
// the store's replicas did not confirm the write, or a lost connection), so the retry answers
// the client it made, with a new secret, since nobody saw the first.
func (s *Service) CreateClient(ctx context.Context, in ClientInput) (ClientView, error) {
	now := s.now().UTC()
	key := requestKey(ctx, "client.create", in)
	c := storage.Client{ID: idFrom(key), GrantTypes: []string{protocol.GrantClientCredentials}, CreatedAt: now, UpdatedAt: now, CreateRequest: key}
	if in.ClientID != nil {
		if err := validID(*in.ClientID); err != nil {
			return ClientView{}, err
		}
		c.ID = *in.ClientID
	}
	if err := s.checkOwner(ctx, in); err != nil {
		return ClientView{}, err
	}
	if err := s.checkSigningAlg(&in); err != nil {
		return ClientView{}, err
	}
	if err := s.checkFederated(ctx, in); err != nil {
		return ClientView{}, err
	}
	if in.TokenEndpointAuthMethod == nil && in.FederatedIdentities != nil && len(*in.FederatedIdentities) > 0 {
		// A workload's token is a JWT client assertion: the method is implied.
		in.TokenEndpointAuthMethod = new(protocol.AuthPrivateKeyJWT)
	}
	if in.AccessTokenSigningAlg == nil {
		in.AccessTokenSigningAlg = new(s.algs.Algorithms()[0])
	}
	if in.GrantTypes == nil && in.TokenEndpointAuthMethod != nil && *in.TokenEndpointAuthMethod == protocol.AuthNone {
		// A public client cannot have the usual default, client_credentials.
		c.GrantTypes = slices.Clone(publicGrants)
	}
	if err := apply(&c, in); err != nil {
		return ClientView{}, err
	}
	if err := s.checkTokenLen(c); err != nil {
		return ClientView{}, err
	}
	var sec string
	if hasSecret(c) {
		sec = secret.NewSecret()
		c.SecretHash = secret.Hash(sec)
	}
	err := s.store.CreateClient(ctx, c)
	if errors.Is(err, storage.ErrAlreadyExists) && key != "" {
		var retried storage.Client
		retried, err = s.store.UpdateClient(ctx, c.ID, func(stored *storage.Client) error {
			if stored.CreateRequest != key || now.Sub(stored.CreatedAt) > RetryWindow {
				return storage.ErrAlreadyExists
			}
			if sec != "" {
				stored.SecretHash = c.SecretHash
			}
			return nil
		})
		switch {
		case err == nil:
			c = retried
		case errors.Is(err, storage.ErrAlreadyExists) && in.ClientID == nil:
			// The same request id and input long after: a new request, under an id of its own.
			c.ID, c.CreateRequest = secret.NewID(), ""
			err = s.store.CreateClient(ctx, c)
		}
	}
	if err != nil {
		return ClientView{}, storeErr(err, "client "+c.ID)
	}
	v := View(c)
	s.recordChange(ctx, ActionClientCreate, c.ID, nil, v)
	v.ClientSecret = sec
	return v, nil
}

// RetryWindow is how long an admin request retried with the same X-Request-Id finds what its
// first attempt did (a client it created, a secret it rotated) rather than doing it again.
// Past it, the same id is a new request.
const RetryWindow = 10 * time.Minute

// requestKey names an admin request for its retries: a digest of what it does, who sent it,
// its request id and its input. A request without an id (none in the context) has no key.
func requestKey(ctx context.Context, what string, input any) string {
	r, ok := logging.RequestFrom(ctx)
	if !ok || r.ID == "" {
		return ""
	}
	b, _ := json.Marshal(input)
	return storage.KeyDigest(what, who(ctx), r.ID, string(b))
}

// idFrom is the id of a client created by the request named key: a retry of the request finds
// the client its first attempt made. Without a key it is random.
func idFrom(key string) string {
	if key == "" {
		return secret.NewID()
	}
	sum := sha256.Sum256([]byte("client-id\x00" + key))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:8]))[:12]
}

// publicGrants are the only grants a public client may have (grants.PublicGrants).
var publicGrants = []string{protocol.GrantPassword, protocol.GrantRefreshToken}

// UpdateClient changes the given fields of a client.
func (s *Service) UpdateClient(ctx context.Context, id string, in ClientInput) (ClientView, error) {
	if in.ClientID != nil && *in.ClientID != id {
		return ClientView{}, invalid("client_id cannot be changed")
	}
	// Whatever the change needs from the store is read before it starts: the update's
	// callback must not call the store (storage.Storage.UpdateClient).
	if err := s.checkOwner(ctx, in); err != nil {
		return ClientView{}, err
	}
	if err := s.checkSigningAlg(&in); err != nil {
		return ClientView{}, err
	}
	if err := s.checkFederated(ctx, in); err != nil {
		return ClientView{}, err
	}
	now := s.now().UTC()
	var before storage.Client
	c, err := s.store.UpdateClient(ctx, id, func(c *storage.Client) error {
		before = *c
		c.UpdatedAt = now
		if err := apply(c, in); err != nil {
			return err
		}
		return s.checkTokenLen(*c)
	})
	if err != nil {
		return ClientView{}, storeErr(err, "client "+id)
	}
	s.changed(ctx, storage.ChangeClient, id)
	v := View(c)
	s.recordChange(ctx, ActionClientUpdate, id, View(before), v)
	return v, nil
}

// checkTokenLen refuses a client whose longest access token would not fit the token parameter
// of the revocation and introspection endpoints, naming the larger of the two fields that make
// it long. It reads nothing, so it may run inside a store update.
func (s *Service) checkTokenLen(c storage.Client) error {
	if s.tokenBound == nil {
		return nil
	}
	n := s.tokenBound(c)
	if n <= protocol.MaxTokenLen {
		return nil
	}
	field := "scopes"
	if len(strings.Join(c.Audience, " ")) > len(strings.Join(c.Scopes, " ")) {
		field = "audience"
	}
	return invalid("%s: this client's access tokens could be %d bytes long, and the revocation and introspection "+
		"endpoints take tokens of at most %d bytes; register %d bytes less of scopes or audiences",
		field, n, protocol.MaxTokenLen, n-protocol.MaxTokenLen)
}

// checkOwner makes sure an owner being set names an existing user.
func (s *Service) checkOwner(ctx context.Context, in ClientInput) error {
	if in.Owner == nil || *in.Owner == "" {
		return nil
	}
	if _, err := s.store.GetUser(ctx, *in.Owner); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return invalid("owner: no user with id %q", *in.Owner)
		}
		return storeErr(err, "owner")
	}
	return nil
}

// checkSigningAlg refuses an access_token_signing_alg the server does not sign with (symmetric,
// none, unknown, or not in keys.algorithms) and one whose first key is still published ahead
// of signing, and turns "" into the default algorithm.
func (s *Service) checkSigningAlg(in *ClientInput) error {
	if in.AccessTokenSigningAlg == nil {
		return nil
	}
	algs := s.algs.Algorithms()
	alg := *in.AccessTokenSigningAlg
	if alg == "" {
		in.AccessTokenSigningAlg = &algs[0]
		return nil
	}
	if err := protocol.CheckSigningAlgorithm(alg); err != nil {
		return invalid("access_token_signing_alg: %v", err)
	}
	now := s.now()
	from, ok := s.algs.SignsFrom(alg, now)
	if !ok {
		return invalid("access_token_signing_alg: %s is not published by this server (keys.algorithms: %s)", alg, strings.Join(algs, ", "))
	}
	if from.After(now) {
		return invalid("access_token_signing_alg: the first %s key is published ahead of signing, so resource servers fetch it first; "+
			"it signs from %s: set it then", alg, from.UTC().Format(time.RFC3339))
	}
	return nil
}

// RotateSecret gives a client a new secret; the old one keeps working for grace.
func (s *Service) RotateSecret(ctx context.Context, id string, grace time.Duration) (string, ClientView, error) {
	return s.rotateSecret(ctx, id, grace, "")
}

// RotateOwnedSecret is RotateSecret for the console: it rotates only a client that owner owns,
// checked in the same atomic step, and answers a client of anyone else as not found.
func (s *Service) RotateOwnedSecret(ctx context.Context, owner, id string, grace time.Duration) (string, ClientView, error) {
	if owner == "" {
		return "", ClientView{}, storeErr(storage.ErrNotFound, "client "+id)
	}
	return s.rotateSecret(ctx, id, grace, owner)
}

// OwnedClients lists the clients owner manages in the console, ordered by id. The store's
// owner index answers it, so a page view costs the owner's clients, not the whole registry.
func (s *Service) OwnedClients(ctx context.Context, owner string) ([]ClientView, error) {
	if owner == "" {
		return nil, nil
	}
	owned, err := s.store.OwnedClients(ctx, owner)
	if err != nil {
		return nil, storeErr(err, "clients")
	}
	return views(owned), nil
}

// rotateSecret rotates a client's secret; with owner set, only if the client is owner's.
func (s *Service) rotateSecret(ctx context.Context, id string, grace time.Duration, owner string) (string, ClientView, error) {
	if grace < 0 {
		return "", ClientView{}, invalid("grace must not be negative")
	}
	sec := secret.NewSecret()
	now := s.now().UTC()
	key := requestKey(ctx, "client.rotate_secret", []any{id, grace, owner})
	c, err := s.store.UpdateClient(ctx, id, func(c *storage.Client) error {
		if owner != "" && c.Owner != owner {
			return storage.ErrNotFound
		}
		if c.TokenEndpointAuthMethod == protocol.AuthNone {
			return invalid("client %s is public (token_endpoint_auth_method none) and has no secret; "+
				"to make it confidential, change token_endpoint_auth_method first", id)
		}
		if c.TokenEndpointAuthMethod == protocol.AuthPrivateKeyJWT {
			return invalid("client %s authenticates with its key (token_endpoint_auth_method %s) and has no secret; "+
				"to rotate, publish a new key in its jwks or jwks_uri", id, protocol.AuthPrivateKeyJWT)
		}
		if grants.CertificateMethod(c.TokenEndpointAuthMethod) {
			return invalid("client %s authenticates with its TLS client certificate (token_endpoint_auth_method %s) and has no secret; "+
				"to rotate, issue it a new certificate", id, c.TokenEndpointAuthMethod)
		}
		// A retry of the rotation whose answer never arrived replaces the secret nobody saw and
		// keeps the grace of the one before it, which the client may still be using.
		retry := key != "" && c.RotateRequest == key && now.Sub(c.UpdatedAt) <= RetryWindow
		if !retry {
			c.PrevSecretHash, c.PrevSecretExpiresAt = nil, time.Time{}
			if grace > 0 {
				c.PrevSecretHash, c.PrevSecretExpiresAt = c.SecretHash, now.Add(grace)
			}
		}
		c.SecretHash = secret.Hash(sec)
		c.RotateRequest = key
		c.UpdatedAt = now
		return nil
	})
	if err != nil {
		return "", ClientView{}, storeErr(err, "client "+id)
	}
	s.changed(ctx, storage.ChangeClient, id)
	v := View(c)
	// The secret itself never reaches the trail: only that it changed, and the old one's grace.
	after := map[string]any{"secret": "rotated"}
	if !v.SecretGraceUntil.IsZero() {
		after["previous_secret_valid_until"] = v.SecretGraceUntil
	}
	s.audit.Record(ctx, audit.Event{Kind: audit.AdminChange, Who: who(ctx), What: ActionClientRotateSecret, Target: id, After: after})
	return sec, v, nil
}

// GetClient returns one client.
func (s *Service) GetClient(ctx context.Context, id string) (ClientView, error) {
	c, err := s.store.GetClient(ctx, id)
	return View(c), storeErr(err, "client "+id)
}

// ListClients returns every client, ordered by id.
func (s *Service) ListClients(ctx context.Context) ([]ClientView, error) {
	all, err := s.store.ListClients(ctx)
	if err != nil {
		return nil, storeErr(err, "clients")
	}
	return views(all), nil
}

// views are the views of cs, ordered by id.
func views(cs []storage.Client) []ClientView {
	out := make([]ClientView, 0, len(cs))
	for _, c := range cs {
		out = append(out, View(c))
	}
	slices.SortFunc(out, func(a, b ClientView) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out
}

// DeleteClient removes a client. Its tokens stop working at once on every replica: it can no
// longer authenticate, its refresh tokens are refused, and introspection answers inactive for
// all its tokens, also after a new client is created under the same id (that client's
// NotBefore is this deletion).
func (s *Service) DeleteClient(ctx context.Context, id string) error {
	// Read first, for the audit trail's record of what was deleted.
	before, berr := s.store.GetClient(ctx, id)
	if err := s.store.DeleteClient(ctx, id, s.now()); err != nil {
		return storeErr(err, "client "+id)
	}
	s.changed(ctx, storage.ChangeClient, id)
	var b any
	if berr == nil {
		b = View(before)
	}
	s.recordChange(ctx, ActionClientDelete, id, b, nil)
	return nil
}

// apply validates in and writes it onto c; on error c may be partly changed and must be
// dropped. It reads nothing: it runs inside a store update.
func apply(c *storage.Client, in ClientInput) error {
	if in.Name != nil {
		if utf8.RuneCountInString(*in.Name) > 200 || !printable(*in.Name) {
			return invalid("name must be at most 200 printable characters")
		}
		c.Name = *in.Name
	}
	if in.GrantTypes != nil {
		gts, err := uniq("grant_types", *in.GrantTypes, func(g string) error {
			if !slices.Contains(knownGrants, g) {
				return invalid("grant_types: %q is not one of %s", g, strings.Join(knownGrants, ", "))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(gts) == 0 {
			return invalid("grant_types must not be empty")
		}
		c.GrantTypes = gts
	}
	if in.Scopes != nil {
		scopes, err := checkScopes("scopes", *in.Scopes)
		if err != nil {
			return err
		}
		c.Scopes = scopes
	}
	if in.Audience != nil {
		aud, err := uniq("audience", *in.Audience, func(a string) error {
			if !printable(a) || strings.ContainsRune(a, ' ') {
				return invalid("audience: %q must be printable, without spaces or control characters", a)
			}
			return nil
		})
		if err != nil {
			return err
		}
		c.Audience = aud
	}
	durs := []struct {
		name string
		in   *string
		min  time.Duration
		set  func(time.Duration)
	}{
		{"access_token_ttl", in.AccessTokenTTL, time.Second, func(d time.Duration) { c.AccessTokenTTL = d }},
		{"refresh_token_ttl", in.RefreshTokenTTL, time.Second, func(d time.Duration) { c.RefreshTokenTTL = d }},
		{"refresh_grace", in.RefreshGrace, 0, func(d time.Duration) { c.RefreshGrace = &d }},
		{"reuse_min_remaining", in.ReuseMinRemaining, 0, func(d time.Duration) { c.ReuseMinRemaining = d }},
	}
	for _, d := range durs {
		if d.in == nil {
			continue
		}
		if *d.in == "" && d.name == "refresh_grace" {
			c.RefreshGrace = nil // back to the server default
			continue
		}
		if *d.in == "" {
			d.set(0)
			continue
		}
		v, err := duration.Parse(*d.in)
		if err != nil {
			return invalid("%s: %v", d.name, err)
		}
		if v < d.min {
			return invalid("%s must be at least %s", d.name, duration.Format(d.min))
		}
		d.set(v)
	}
	if in.Reuse != nil {
		c.Reuse = *in.Reuse
	}
	for _, l := range []struct {
		name string
		in   *int
		set  *int
	}{{"daily_limit", in.DailyLimit, &c.DailyLimit}, {"hourly_limit", in.HourlyLimit, &c.HourlyLimit}} {
		if l.in == nil {
			continue
		}
		if *l.in < 0 {
			return invalid("%s must not be negative (0 means no limit)", l.name)
		}
		*l.set = *l.in
	}
	if in.DailyLimitShadow != nil {
		c.DailyLimitShadow = *in.DailyLimitShadow
	}
	if in.HourlyLimitShadow != nil {
		c.HourlyLimitShadow = *in.HourlyLimitShadow
	}
	if in.TokenEndpointAuthMethod != nil {
		switch m := *in.TokenEndpointAuthMethod; m {
		case "", protocol.AuthSecretBasic, protocol.AuthSecretPost:
			c.TokenEndpointAuthMethod = m
		case protocol.AuthNone, protocol.AuthPrivateKeyJWT, protocol.AuthTLSClient, protocol.AuthSelfSignedTLSClient:
			// A public, key- or certificate-authenticated client has no secret: whatever it had
			// stops working.
			c.TokenEndpointAuthMethod = m
			c.SecretHash, c.PrevSecretHash, c.PrevSecretExpiresAt = nil, nil, time.Time{}
		default:
			return invalid("token_endpoint_auth_method must be %s, %s, %s, %s, %s or %s",
				protocol.AuthSecretBasic, protocol.AuthSecretPost, protocol.AuthPrivateKeyJWT,
				protocol.AuthTLSClient, protocol.AuthSelfSignedTLSClient, protocol.AuthNone)
		}
	}
	if err := applyKeys(c, in); err != nil {
		return err
	}
	if err := applyCertificateName(c, in); err != nil {
		return err
	}
	if in.TLSClientCertificateBoundAccessTokens != nil {
		c.TLSClientCertificateBoundAccessTokens = *in.TLSClientCertificateBoundAccessTokens
	}
	if c.TokenEndpointAuthMethod == protocol.AuthNone {
		for _, g := range c.GrantTypes {
			if !slices.Contains(publicGrants, g) {
				return invalid("grant_types: a public client (token_endpoint_auth_method none) may have only %s, not %s",
					strings.Join(publicGrants, " and "), g)
			}
		}
	}
	if in.Owner != nil {
		c.Owner = *in.Owner
	}
	if in.ResourceServer != nil {
		c.ResourceServer = *in.ResourceServer
	}
	if in.AccessTokenSigningAlg != nil {
		c.AccessTokenSigningAlg = *in.AccessTokenSigningAlg // checked by checkSigningAlg
	}
	if in.DPoPBoundAccessTokens != nil {
		c.DPoPBoundAccessTokens = *in.DPoPBoundAccessTokens
	}
	if in.DPoPNonceRequired != nil {
		c.DPoPNonceRequired = *in.DPoPNonceRequired
	}
	return nil
}

// applyKeys sets a client's jwks and jwks_uri, refusing a set or a URL the token endpoint could
// not safely use, and requires one of them exactly when the client authenticates with its key.
func applyKeys(c *storage.Client, in ClientInput) error {
	if in.JWKS != nil {
		c.JWKS = nil
		if body := []byte(*in.JWKS); len(body) > 0 && string(body) != "null" {
			if _, err := jwkscache.Check(body); err != nil {
				return invalid("jwks: %v", err)
			}
			c.JWKS = slices.Clone(body)
		}
	}
	if in.JWKSURI != nil {
		if u := *in.JWKSURI; u != "" {
			if err := jwkscache.CheckURL(u); err != nil {
				return invalid("jwks_uri: %v", err)
			}
		}
		c.JWKSURI = *in.JWKSURI
	}
	if in.FederatedIdentities != nil {
		fis, err := checkFederatedIdentities(*in.FederatedIdentities)
		if err != nil {
			return err
		}
		c.FederatedIdentities = fis
	}
	jwt := c.TokenEndpointAuthMethod == protocol.AuthPrivateKeyJWT
	selfSigned := c.TokenEndpointAuthMethod == protocol.AuthSelfSignedTLSClient
	keyed := jwt || selfSigned
	switch {
	case jwt && len(c.JWKS) == 0 && c.JWKSURI == "" && len(c.FederatedIdentities) == 0:
		return invalid("jwks, jwks_uri or federated_identities: a client with token_endpoint_auth_method %s needs its public keys or a federated identity", protocol.AuthPrivateKeyJWT)
	case selfSigned && len(c.JWKS) == 0 && c.JWKSURI == "":
		return invalid("jwks or jwks_uri: a client with token_endpoint_auth_method %s needs the public key of its certificate", protocol.AuthSelfSignedTLSClient)
	case keyed && len(c.JWKS) > 0 && c.JWKSURI != "":
		return invalid("jwks and jwks_uri: give one of them, not both")
	case !keyed && (len(c.JWKS) > 0 || c.JWKSURI != ""):
		return invalid("jwks, jwks_uri: only a client with token_endpoint_auth_method %s or %s has keys", protocol.AuthPrivateKeyJWT, protocol.AuthSelfSignedTLSClient)
	case !jwt && len(c.FederatedIdentities) > 0:
		return invalid("federated_identities: only a client with token_endpoint_auth_method %s has federated identities", protocol.AuthPrivateKeyJWT)
	}
	return nil
}

// hasSecret says whether a client authenticates with a secret we generate.
func hasSecret(c storage.Client) bool {
	m := c.TokenEndpointAuthMethod
	return m != protocol.AuthNone && m != protocol.AuthPrivateKeyJWT && !grants.CertificateMethod(m)
}

// applyCertificateName sets the name a tls_client_auth client's certificate is matched by,
// and requires exactly one such name of that method and none of any other.
func applyCertificateName(c *storage.Client, in ClientInput) error {
	names := []struct {
		field string
		in    *string
		set   *string
		check func(string) error
	}{
		{"tls_client_auth_subject_dn", in.TLSClientAuthSubjectDN, &c.TLSClientAuth.SubjectDN, checkDN},
		{"tls_client_auth_san_dns", in.TLSClientAuthSANDNS, &c.TLSClientAuth.SANDNS, checkDNSName},
		{"tls_client_auth_san_uri", in.TLSClientAuthSANURI, &c.TLSClientAuth.SANURI, checkURI},
		{"tls_client_auth_san_ip", in.TLSClientAuthSANIP, &c.TLSClientAuth.SANIP, checkIP},
		{"tls_client_auth_san_email", in.TLSClientAuthSANEmail, &c.TLSClientAuth.SANEmail, checkEmail},
	}
	var set []string
	for _, n := range names {
		if n.in != nil {
			v := strings.TrimSpace(*n.in)
			if v != "" {
				if err := n.check(v); err != nil {
					return invalid("%s: %v", n.field, err)
				}
			}
			if n.field == "tls_client_auth_subject_dn" {
				v = grants.NormalizeDN(v)
			}
			*n.set = v
		}
		if *n.set != "" {
			set = append(set, n.field)
		}
	}
	tlsAuth := c.TokenEndpointAuthMethod == protocol.AuthTLSClient
	switch {
	case tlsAuth && len(set) == 0:
		return invalid("tls_client_auth_subject_dn, tls_client_auth_san_dns, tls_client_auth_san_uri, tls_client_auth_san_ip or "+
			"tls_client_auth_san_email: a client with token_endpoint_auth_method %s needs exactly one of them", protocol.AuthTLSClient)
	case tlsAuth && len(set) > 1:
		return invalid("%s: a %s client's certificate is matched by exactly one of them", strings.Join(set, " and "), protocol.AuthTLSClient)
	case !tlsAuth && len(set) > 0:
		return invalid("%s: only a client with token_endpoint_auth_method %s has one", set[0], protocol.AuthTLSClient)
	}
	return nil
}

func checkDN(v string) error {
	if !printable(v) || len(v) > 1024 {
		return errors.New("must be at most 1024 printable characters")
	}
	for _, rdn := range strings.Split(grants.NormalizeDN(v), ",") {
		if k, val, ok := strings.Cut(rdn, "="); !ok || k == "" || val == "" {
			return fmt.Errorf("%q is not a distinguished name in RFC 4514 form, such as CN=orders,O=Example,C=DE", v)
		}
	}
	return nil
}

func checkDNSName(v string) error {
	if len(v) > 253 || strings.ContainsAny(v, " /:@") || !printable(v) {
		return fmt.Errorf("%q is not a DNS name", v)
	}
	return nil
}

func checkURI(v string) error {
	if u, err := url.Parse(v); err != nil || u.Scheme == "" || !printable(v) || len(v) > 2048 {
		return fmt.Errorf("%q is not an absolute URI", v)
	}
	return nil
}

func checkIP(v string) error {
	if net.ParseIP(v) == nil {
		return fmt.Errorf("%q is not an IP address", v)
	}
	return nil
}

func checkEmail(v string) error {
	if local, domain, ok := strings.Cut(v, "@"); !ok || local == "" || domain == "" || !printable(v) || len(v) > 320 {
		return fmt.Errorf("%q is not an email address", v)
	}
	return nil
}

// MaxClientIDLen is the longest client_id accepted.
const MaxClientIDLen = 128

// validID allows what RFC 6749 Appendix A.1 allows in a client_id, VSCHAR (printable ASCII,
// space, ':', '/' and '%' included): client_secret_basic carries it form-urlencoded
// (§2.3.1) and the admin API path-escaped, so every one of them round-trips.
func validID(id string) error {
	if id == "" || len(id) > MaxClientIDLen {
		return invalid("client_id must be 1 to %d characters", MaxClientIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return invalid("client_id may contain only printable ASCII characters (RFC 6749 VSCHAR)")
		}
	}
	return nil
}
