package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/duration"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
	"go.opentelemetry.io/otel/trace"
)

// ReplicaLister lists the live replicas.
type ReplicaLister interface {
	Replicas(ctx context.Context, now time.Time) ([]storage.Replica, error)
}

// KeyRotator starts a signing-key rotation of one algorithm, and retires the keys of an
// algorithm taken out of keys.algorithms.
type KeyRotator interface {
	Rotate(ctx context.Context, alg string, publishAhead time.Duration) (*keys.Key, error)
	Retire(ctx context.Context, alg string) ([]*keys.Key, error)
}

// TokenOperator revokes and introspects any client's tokens, for the operator.
type TokenOperator interface {
	RevokeAny(ctx context.Context, raw string) (bool, error)
	IntrospectAny(ctx context.Context, raw string) (*grants.Introspection, error)
}

// Admin is what the admin listener needs.
type Admin struct {
	// TokenHash is the SHA-256 of the admin bearer token.
	TokenHash []byte
	Registry  *registry.Service
	Tokens    TokenOperator
	Keys      *keys.Set
	// KeyManager rotates and retires signing keys; nil disables POST /admin/keys/rotate and
	// /admin/keys/retire.
	KeyManager KeyRotator
	Store      ReplicaLister
	Metrics    *metrics.Metrics
	Log        *slog.Logger
	Version    string
	// TrustedProxies and Outages are as for Public.
	TrustedProxies []string
	Outages        OutageReporter
	// Now is the clock of the failed-authentication backoff; time.Now when nil.
	Now func() time.Time
	// Audit records the changes the admin API makes itself (a key rotation); the registry
	// records the rest. Nil records nothing.
	Audit audit.Recorder
	// Tracer is as for Public.
	Tracer trace.TracerProvider

	guard *authGuard
}

// Handler returns the admin HTTP handler.
func (a *Admin) Handler() http.Handler {
	if a.Now == nil {
		a.Now = time.Now
	}
	a.guard = newAuthGuard()
	r := newEngine(a.Log, engineOptions{trustedProxies: a.TrustedProxies, outages: a.Outages, tracer: a.Tracer})
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(a.Metrics.Registry, promhttp.HandlerOpts{})))

	g := r.Group("/admin", a.auth)
	g.GET("/version", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"version": a.Version, "signer": keys.SignerName, "signer_version": keys.SignerVersion()})
	})
	g.POST("/clients", a.createClient)
	g.GET("/clients", a.listClients)
	g.GET("/clients/:id", a.getClient)
	g.PATCH("/clients/:id", a.updateClient)
	g.DELETE("/clients/:id", a.deleteClient)
	g.POST("/clients/:id/rotate-secret", a.rotateSecret)
	g.POST("/users", a.createUser)
	g.GET("/users", a.listUsers)
	g.GET("/users/:id", a.getUser)
	g.PATCH("/users/:id", a.updateUser)
	g.DELETE("/users/:id", a.deleteUser)
	g.POST("/users/:id/tokens", a.createPersonalToken)
	g.GET("/users/:id/tokens", a.listPersonalTokens)
	g.DELETE("/users/:id/tokens/:token_id", a.deletePersonalToken)
	g.POST("/trusted-issuers", a.createTrustedIssuer)
	g.GET("/trusted-issuers", a.listTrustedIssuers)
	g.GET("/trusted-issuers/:id", a.getTrustedIssuer)
	g.DELETE("/trusted-issuers/:id", a.deleteTrustedIssuer)
	g.GET("/keys", a.listKeys)
	g.POST("/keys/rotate", a.rotateKey)
	g.POST("/keys/retire", a.retireKeys)
	g.GET("/replicas", a.listReplicas)
	g.POST("/tokens/revoke", a.revokeToken)
	g.POST("/tokens/introspect", a.introspectToken)

	// net/http/pprof, behind the admin token: profiles name functions, paths and, in a heap
	// dump, could show memory that held a secret.
	dbg := r.Group("/debug/pprof", a.auth)
	dbg.GET("/", gin.WrapF(pprof.Index))
	dbg.GET("/cmdline", gin.WrapF(pprof.Cmdline))
	dbg.GET("/profile", gin.WrapF(pprof.Profile))
	dbg.GET("/symbol", gin.WrapF(pprof.Symbol))
	dbg.POST("/symbol", gin.WrapF(pprof.Symbol))
	dbg.GET("/trace", gin.WrapF(pprof.Trace))
	// pprof.Index serves every named profile (heap, goroutine, allocs, block, mutex, …).
	dbg.GET("/:profile", gin.WrapF(pprof.Index))
	return r
}

// auth admits requests with the admin token. The right token is always admitted: the
// backoff slows whoever keeps presenting wrong ones from an address (authGuard), not the
// owner, who may share that address (a NAT, a bastion) with a script holding a stale token.
// A success does not clear the address's count either, so a guesser there gains nothing from
// the owner's requests. Every refusal is counted.
func (a *Admin) auth(c *gin.Context) {
	addr, now := c.ClientIP(), a.Now()
	scheme, tok, _ := bytes.Cut([]byte(c.GetHeader("Authorization")), []byte(" "))
	if bytes.EqualFold(scheme, []byte("Bearer")) && secret.Matches(string(tok), a.TokenHash) {
		c.Next()
		return
	}
	if wait := a.guard.wait(addr, now); wait > 0 {
		a.Metrics.AdminAuthFailures.WithLabelValues("throttled").Inc()
		writeError(c, a.Log, &protocol.Error{Code: protocol.RateLimited, RetryAfter: int((wait + time.Second - 1) / time.Second),
			Description: "too many failed admin authentications from this address; retry after the time in Retry-After"})
		return
	}
	a.Metrics.AdminAuthFailures.WithLabelValues("invalid_token").Inc()
	if n := a.guard.failed(addr, now); n == adminAuthFreeFailures {
		a.Log.Warn("admin authentication keeps failing from one address; its attempts are now slowed down",
			"remote", addr, "failures", n)
	}
	c.Header("WWW-Authenticate", `Bearer realm="tokensmith-admin"`)
	writeError(c, a.Log, protocol.Errorf(protocol.Unauthorized, "a valid admin bearer token is required"))
}

// bindJSON decodes a JSON body strictly: the right content type, valid UTF-8 (Go's decoder
// would silently turn bad bytes into U+FFFD and the record would be stored changed), one
// object, no duplicate keys (which one wins is undefined across parsers), no unknown fields.
func bindJSON(c *gin.Context, v any, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, c.Request.Body, MaxBodyBytes))
	if err != nil {
		return badRequest("request body is unreadable or larger than %d bytes", MaxBodyBytes)
	}
	if optional && len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/json" {
		return badRequest("Content-Type must be application/json")
	}
	if !utf8.Valid(body) {
		return badRequest("request body is not valid UTF-8")
	}
	if err := noDuplicateKeys(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("unexpected data after the JSON object")
	}
	return nil
}

func (a *Admin) reply(c *gin.Context, status int, v any, err error) {
	if err != nil {
		writeError(c, a.Log, err)
		return
	}
	noStore(c)
	if v == nil {
		c.Status(status)
		return
	}
	c.JSON(status, v)
}

func (a *Admin) createClient(c *gin.Context) {
	var in registry.ClientInput
	if err := bindJSON(c, &in, true); err != nil {
		a.reply(c, 0, nil, err)
		return
	}
	v, err := a.Registry.CreateClient(c.Request.Context(), in)
	a.reply(c, http.StatusCreated, v, err)
}

func (a *Admin) listClients(c *gin.Context) {
	v, err := a.Registry.ListClients(c.Request.Context())
	a.reply(c, http.StatusOK, v, err)
}

func (a *Admin) getClient(c *gin.Context) {
	v, err := a.Registry.GetClient(c.Request.Context(), c.Param("id"))
	a.reply(c, http.StatusOK, v, err)
}

func (a *Admin) updateClient(c *gin.Context) {
	var in registry.ClientInput
	if err := bindJSON(c, &in, false); err != nil {
		a.reply(c, 0, nil, err)
		return
	}
	v, err := a.Registry.UpdateClient(c.Request.Context(), c.Param("id"), in)
	a.reply(c, http.StatusOK, v, err)
}

func (a *Admin) deleteClient(c *gin.Context) {
	err := a.Registry.DeleteClient(c.Request.Context(), c.Param("id"))
	a.reply(c, http.StatusNoContent, nil, err)
}

// RotateSecretInput is the body of POST /admin/clients/{id}/rotate-secret.
type RotateSecretInput struct {
	Grace string `json:"grace"`
}

// RotateSecretOutput is its answer; the secret is shown only here.
type RotateSecretOutput struct {
	ClientSecret             string `json:"client_secret"`
	PreviousSecretValidUntil string `json:"previous_secret_valid_until,omitempty"`
}

func (a *Admin) rotateSecret(c *gin.Context) {
	var in RotateSecretInput
	if err := bindJSON(c, &in, true); err != nil {
		a.reply(c, 0, nil, err)
		return
	}
	var grace duration.Duration
	if in.Grace != "" {
		if err := grace.UnmarshalText([]byte(in.Grace)); err != nil {
			a.reply(c, 0, nil, badRequest("grace: %v", err))
			return
		}
	}
	sec, v, err := a.Registry.RotateSecret(c.Request.Context(), c.Param("id"), grace.D())
	out := RotateSecretOutput{ClientSecret: sec}
	if !v.SecretGraceUntil.IsZero() {
		out.PreviousSecretValidUntil = v.SecretGraceUntil.Format("2006-01-02T15:04:05Z07:00")
	}
	a.reply(c, http.StatusOK, out, err)
}

func (a *Admin) createUser(c *gin.Context) {
	var in registry.UserInput
	if err := bindJSON(c, &in, false); err != nil {
		a.reply(c, 0, nil, err)
		return
	}
	v, err := a.Registry.CreateUser(c.Request.Context(), in)
	a.reply(c, http.StatusCreated, v, err)
}

// listUsers lists every user, or with ?username= the one user of that name (compared
// case-insensitively), as a list of zero or one.
func (a *Admin) listUsers(c *gin.Context) {
	if name, ok := c.GetQuery("username"); ok {
		u, err := a.Registry.FindUser(c.Request.Context(), name)
		switch {
		case err == nil:
			a.reply(c, http.StatusOK, []registry.UserView{u}, nil)
		case errors.Is(err, &protocol.Error{Code: protocol.NotFound}):
			a.reply(c, http.StatusOK, []registry.UserView{}, nil)
		default:
			a.reply(c, 0, nil, err)
		}
		return
	}
	v, err := a.Registry.ListUsers(c.Request.Context())
	a.reply(c, http.StatusOK, v, err)
}

func (a *Admin) getUser(c *gin.Context) {
	v, err := a.Registry.GetUser(c.Request.Context(), c.Param("id"))
	a.reply(c, http.StatusOK, v, err)
}

func (a *Admin) updateUser(c *gin.Context) {
	var in registry.UserUpdate
	if err := bindJSON(c, &in, false); err != nil {
		a.reply(c, 0, nil, err)
		return
	}
	v, err := a.Registry.UpdateUser(c.Request.Context(), c.Param("id"), in)
	if err == nil && in.Password != nil {
		a.Log.Info("user password changed", "user_id", v.ID)
	}
	a.reply(c, http.StatusOK, v, err)
}

func (a *Admin) deleteUser(c *gin.Context) {
	err := a.Registry.DeleteUser(c.Request.Context(), c.Param("id"))
	a.reply(c, http.StatusNoContent, nil, err)
}

func (a *Admin) createPersonalToken(c *gin.Context) {
	var in registry.PersonalTokenInput
	if err := bindJSON(c, &in, false); err != nil {
		a.reply(c, 0, nil, err)
		return
	}
	v, err := a.Registry.CreatePersonalToken(c.Request.Context(), c.Param("id"), in)
	a.reply(c, http.StatusCreated, v, err)
}

func (a *Admin) listPersonalTokens(c *gin.Context) {
	v, err := a.Registry.ListPersonalTokens(c.Request.Context(), c.Param("id"))
	a.reply(c, http.StatusOK, v, err)
}

func (a *Admin) deletePersonalToken(c *gin.Context) {
	err := a.Registry.DeletePersonalToken(c.Request.Context(), c.Param("id"), c.Param("token_id"))
	a.reply(c, http.StatusNoContent, nil, err)
}

func (a *Admin) createTrustedIssuer(c *gin.Context) {
	var in registry.TrustedIssuerInput
	if err := bindJSON(c, &in, false); err != nil {
		a.reply(c, 0, nil, err)
		return
	}
	v, err := a.Registry.CreateTrustedIssuer(c.Request.Context(), in)
	a.reply(c, http.StatusCreated, v, err)
}

func (a *Admin) listTrustedIssuers(c *gin.Context) {
	v, err := a.Registry.ListTrustedIssuers(c.Request.Context())
	a.reply(c, http.StatusOK, v, err)
}

func (a *Admin) getTrustedIssuer(c *gin.Context) {
	v, err := a.Registry.GetTrustedIssuer(c.Request.Context(), c.Param("id"))
	a.reply(c, http.StatusOK, v, err)
}

func (a *Admin) deleteTrustedIssuer(c *gin.Context) {
	err := a.Registry.DeleteTrustedIssuer(c.Request.Context(), c.Param("id"))
	a.reply(c, http.StatusNoContent, nil, err)
}

func (a *Admin) listKeys(c *gin.Context) {
	a.reply(c, http.StatusOK, a.Keys.Views(time.Now()), nil)
}

// RotateKeyInput is the body of POST /admin/keys/rotate.
type RotateKeyInput struct {
	// Alg is the algorithm whose key is rotated; empty means the default (the first of
	// keys.algorithms). The other algorithms' keys are left as they are.
	Alg string `json:"alg,omitempty"`
	// PublishAhead is how long the new key is published before it signs ("0s": at once);
	// empty means the configured keys.publish_ahead.
	PublishAhead string `json:"publish_ahead,omitempty"`
}

// RetireKeysInput is the body of POST /admin/keys/retire.
type RetireKeysInput struct {
	// Alg is an algorithm taken out of keys.algorithms whose keys are still published.
	Alg string `json:"alg"`
}

// Names of key changes in the audit trail.
const (
	ActionKeysRotate = "keys.rotate"
	ActionKeysRetire = "keys.retire"
)

// checkAlg refuses an alg value that no key can have, naming the field.
func checkAlg(alg string) error {
	if err := protocol.CheckSigningAlgorithm(alg); err != nil {
		return badRequest("alg: %v", err)
	}
	return nil
}

func (a *Admin) retireKeys(c *gin.Context) {
	var in RetireKeysInput
	if err := bindJSON(c, &in, false); err != nil {
		a.reply(c, 0, nil, err)
		return
	}
	if err := checkAlg(in.Alg); err != nil {
		a.reply(c, 0, nil, err)
		return
	}
	if a.KeyManager == nil {
		a.reply(c, 0, nil, protocol.Errorf(protocol.NotFound, "key retirement is not available"))
		return
	}
	retired, err := a.KeyManager.Retire(c.Request.Context(), in.Alg)
	switch {
	case errors.Is(err, keys.ErrInUse):
		err = badRequest("alg: %s is in keys.algorithms on this server and signs tokens; take it out of every replica's keys.algorithms first", in.Alg)
	case errors.Is(err, keys.ErrNoLiveKey):
		err = protocol.Errorf(protocol.NotFound, "no %s key is left to retire", in.Alg)
	case err != nil:
		err = protocol.Unavailable(err)
	}
	out := []keys.View{}
	if err == nil {
		ids := map[string]bool{}
		for _, k := range retired {
			ids[k.ID] = true
			if a.Audit != nil {
				a.Audit.Record(c.Request.Context(), audit.Event{Kind: audit.AdminChange, Who: "admin", What: ActionKeysRetire,
					Target: k.ID, After: map[string]any{"alg": k.Algorithm, "published_until": k.RemoveAt.UTC()}})
			}
		}
		for _, v := range a.Keys.Views(time.Now()) {
			if ids[v.Kid] {
				out = append(out, v)
			}
		}
	}
	a.reply(c, http.StatusOK, out, err)
}

func (a *Admin) rotateKey(c *gin.Context) {
	var in RotateKeyInput
	if err := bindJSON(c, &in, true); err != nil {
		a.reply(c, 0, nil, err)
		return
	}
	if in.Alg != "" {
		if err := checkAlg(in.Alg); err != nil {
			a.reply(c, 0, nil, err)
			return
		}
	}
	ahead := time.Duration(-1)
	if in.PublishAhead != "" {
		d, err := duration.Parse(in.PublishAhead)
		if err != nil || d < 0 || d > 24*time.Hour {
			a.reply(c, 0, nil, badRequest("publish_ahead must be a duration from 0s to 24h"))
			return
		}
		ahead = d
	}
	if a.KeyManager == nil {
		a.reply(c, 0, nil, protocol.Errorf(protocol.NotFound, "key rotation is not available"))
		return
	}
	k, err := a.KeyManager.Rotate(c.Request.Context(), in.Alg, ahead)
	switch {
	case errors.Is(err, keys.ErrRotationPending):
		err = protocol.Errorf(protocol.AlreadyExists, "a new key is already waiting to take over; rotate again once it signs")
	case errors.Is(err, keys.ErrNotConfigured):
		err = badRequest("alg: %s is not in keys.algorithms on this server (%s)", in.Alg, strings.Join(a.Keys.Algorithms(), ", "))
	case err != nil:
		err = protocol.Unavailable(err)
	case a.Audit != nil:
		a.Audit.Record(c.Request.Context(), audit.Event{Kind: audit.AdminChange, Who: "admin", What: ActionKeysRotate,
			Target: k.ID, After: map[string]any{"alg": k.Algorithm, "signs_from": k.ActivatesAt.UTC()}})
	}
	var out *keys.View
	if err == nil {
		for _, v := range a.Keys.Views(time.Now()) {
			if v.Kid == k.ID {
				out = &v
			}
		}
	}
	a.reply(c, http.StatusCreated, out, err)
}

// TokenInput is the body of POST /admin/tokens/revoke and /admin/tokens/introspect.
type TokenInput struct {
	Token string `json:"token"`
}

// RevokeOutput answers POST /admin/tokens/revoke.
type RevokeOutput struct {
	// Revoked is false when the token was not live (unknown, malformed, expired or already
	// revoked): nothing needed doing.
	Revoked bool `json:"revoked"`
}

func (a *Admin) tokenInput(c *gin.Context) (string, error) {
	var in TokenInput
	if err := bindJSON(c, &in, false); err != nil {
		return "", err
	}
	if in.Token == "" {
		return "", badRequest("token is required")
	}
	return in.Token, nil
}

func (a *Admin) revokeToken(c *gin.Context) {
	tok, err := a.tokenInput(c)
	var out RevokeOutput
	if err == nil {
		out.Revoked, err = a.Tokens.RevokeAny(c.Request.Context(), tok)
	}
	a.reply(c, http.StatusOK, out, err)
}

func (a *Admin) introspectToken(c *gin.Context) {
	tok, err := a.tokenInput(c)
	var out *grants.Introspection
	if err == nil {
		out, err = a.Tokens.IntrospectAny(c.Request.Context(), tok)
	}
	a.reply(c, http.StatusOK, out, err)
}

func (a *Admin) listReplicas(c *gin.Context) {
	live, err := a.Store.Replicas(c.Request.Context(), time.Now())
	if err != nil {
		err = protocol.Unavailable(err)
	}
	a.reply(c, http.StatusOK, live, err)
}
