package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/console"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/outage"
	"github.com/tokensmith/tokensmith/profiles"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/replica"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/storage"
	redisstore "github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/tlscert"
	"github.com/tokensmith/tokensmith/tracing"
)

func serveCmd(stdout, stderr io.Writer) *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the token server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, endpoints, err := loadConfig(cfgPath, os.Environ())
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					fmt.Fprintf(stderr, "invalid configuration: %s\n", strings.TrimPrefix(line, "config: "))
				}
				return exitCode(2)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logs := logging.NewBuffered(stderr, logFlushEvery)
			defer logs.Close()
			return serve(ctx, cfg, endpoints, stdout, newLogger(cfg, logs))
		},
	}
	c.Flags().StringVar(&cfgPath, "config", os.Getenv("TOKENSMITH_CONFIG"), "YAML configuration file (env TOKENSMITH_CONFIG)")
	return c
}

// loadConfig is config.Load plus what the configuration names outside the config package: the
// seed API profiles' routes, resolved and checked where the server that serves them is built,
// and a Redis storage URL's parameters, checked by the backend that reads them. Every problem
// comes back at once, as config.Load reports its own.
func loadConfig(path string, environ []string) (config.Config, []profiles.Endpoint, error) {
	cfg, err := config.Load(path, environ)
	endpoints, perr := server.ProfileEndpoints(cfg.Profiles.Enabled())
	if perr != nil {
		err = errors.Join(err, fmt.Errorf("profiles: %w", perr))
	}
	if kind, rest, _ := config.ParseStorage(cfg.Storage); kind == config.StorageRedis {
		if _, rerr := redisstore.Parse(rest); rerr != nil {
			err = errors.Join(err, fmt.Errorf("storage (TOKENSMITH_STORAGE): %w", rerr))
		}
	}
	return cfg, endpoints, err
}

// logFlushEvery bounds how late a log line is written (logging.Buffered).
const logFlushEvery = 100 * time.Millisecond

// newLogger is the server's logger, also made the default so packages that log without one
// of their own (registry) get the same format, level, masking and request ids.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	log := logging.New(w, cfg.LogFormat, cfg.LogLevel)
	slog.SetDefault(log)
	return log
}

// serve runs both listeners until ctx ends, then shuts them down gracefully. Every error
// that keeps it from serving is returned at once, as one line naming its cause.
func serve(ctx context.Context, cfg config.Config, endpoints []profiles.Endpoint, stdout io.Writer, log *slog.Logger) error {
	// Everything started below stops in the reverse order it started, on every return: the
	// background work (heartbeats, the change feed) is told to stop before it is waited for,
	// so an error never waits for a signal.
	a := newApp(ctx)
	defer a.stopAll()
	ctx = a.ctx

	// The listeners come first: a taken port is the commonest start-up failure, and finding it
	// before the store is touched keeps a first start's demo client for the start that works.
	pubLn, err := listen(cfg.Listen, "listen", "TOKENSMITH_LISTEN")
	if err != nil {
		return err
	}
	a.onStop(func() { _ = pubLn.Close() })
	admLn, err := listen(cfg.AdminListen, "admin_listen", "TOKENSMITH_ADMIN_LISTEN")
	if err != nil {
		return err
	}
	a.onStop(func() { _ = admLn.Close() })
	_, port, _ := net.SplitHostPort(pubLn.Addr().String())
	if cfg.IssuerDerived {
		// The bound port, so listen ":0" gives the issuer the port it really has.
		host, _, _ := net.SplitHostPort(cfg.Listen)
		if cfg.Issuer, err = config.DeriveIssuer(net.JoinHostPort(host, port), cfg.PublicTLS()); err != nil {
			return err
		}
	}
	pubTLS, admTLS, devCert, err := listenerTLS(cfg, log)
	if err != nil {
		return err
	}

	// Tracing is stopped after everything that makes spans: the spans of the last requests
	// are exported before the process exits.
	tr, err := tracing.Open(ctx, Version, log)
	if err != nil {
		return err
	}
	a.onStop(func() { stopTracing(tr, log) })

	quiet := &storeQuiet{}
	store, err := openStore(ctx, cfg, log, quiet)
	if err != nil {
		return err
	}
	a.onStop(func() { _ = store.Close() })
	if rs, ok := store.(*redisstore.Store); ok && tr.Enabled() {
		if err := tracing.InstrumentRedis(rs.Client(), tr.Provider); err != nil {
			return err
		}
	}
	if err := reindexUsernames(ctx, store, log); err != nil {
		return err
	}
	bus := replica.NewBus(store, log)
	km, firstStart, err := keys.Open(ctx, store, keyOptions(cfg, store, bus), log)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	keyset := km.Set
	a.onStop(keyset.Close)
	adminToken, adminTokenPath, err := ensureAdminToken(cfg)
	if err != nil {
		return err
	}
	m := metrics.New()
	if rs, ok := store.(*redisstore.Store); ok {
		rs.ObserveWaits(m.ObserveWait)
	}
	auditor, runAudit, err := openAudit(cfg, log, m)
	if err != nil {
		return err
	}
	// The audit trail outlives the listeners and the background work started after it: it
	// stops after the last request has been answered, writes what is still queued, and closes
	// its sink.
	a.startOwn(runAudit)
	tokenBound := grants.AccessTokenBound(grantsPolicy(cfg), keyset)
	reg := registry.New(store, bus, registry.WithAuditor(auditor), registry.WithSigningAlgorithms(keyset),
		registry.WithAccessTokenBound(tokenBound))
	// Off the start path: a store of a million clients takes seconds to check.
	a.start(func(ctx context.Context) { warnLongTokens(ctx, store, tokenBound, log) })
	replicas := replica.New(store, cfg.ReplicaTimeout.D(), Version, log)
	m.Gauges(replicas.Live, func() time.Duration { return signingKeyAge(keyset, time.Now()) })
	kind, _, _ := config.ParseStorage(cfg.Storage)
	if kind != config.StorageRedis {
		if err := replicas.Sole(ctx); err != nil {
			return fmt.Errorf("replica registry: %w", err)
		}
	}
	if err := replicas.Beat(ctx); err != nil {
		return fmt.Errorf("replica registry: %w", err)
	}
	// Started after the store opened, so stopped (deregistered) before it closes: the other
	// replicas stop counting this one at once.
	a.start(replicas.Run)
	// The key of the audit trail's username digests is made by the first replica to start and
	// shared through the store, so a name has one digest on every replica and after restarts.
	auditKey, err := store.EnsureServerSecret(ctx, grants.AuditKeyName, secret.NewSecret())
	if err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	// DPoP nonces are made by one replica and checked by another: one key for all.
	nonceKey, err := store.EnsureServerSecret(ctx, grants.DPoPNonceKeyName, secret.NewSecret())
	if err != nil {
		return fmt.Errorf("DPoP nonce key: %w", err)
	}
	grantOpts := []grants.Option{grants.WithAuditKey([]byte(auditKey)), grants.WithDPoPNonceKey([]byte(nonceKey))}
	if cfg.TLSClientCA != "" {
		cas, err := tlscert.LoadClientCAs(cfg.TLSClientCA, log.With("listener", "public"))
		if err != nil {
			return fmt.Errorf("tls_client_ca (TOKENSMITH_TLS_CLIENT_CA): %w", err)
		}
		grantOpts = append(grantOpts, grants.WithClientCAs(cas.Pool))
	}
	gh := grants.NewService(store, keyset, grantsPolicy(cfg), append(grantOpts,
		grants.WithLogger(log), grants.WithReplicas(replicas.Live), grants.WithChangeFeed(bus.Healthy), grants.WithAnnouncer(bus),
		grants.WithIssueHook(func(g string) { m.Issued.WithLabelValues(g).Inc() }),
		grants.WithQuotaHook(func(e grants.QuotaEvent) { m.Quota(e.ClientID, e.Window, e.Shadow) }),
		grants.WithAuditor(auditor), grants.WithStoreObserver(m.ObserveStore), grants.WithTracerProvider(tr.Provider))...)
	bus.Handle(gh.Forget)
	bus.Handle(func(c storage.Change) {
		if c.Kind == storage.ChangeSigningKeys || c.Kind == "" {
			go func() {
				rctx, cancel := context.WithTimeout(ctx, cfg.StoreTimeout.D())
				defer cancel()
				if err := km.Reload(rctx); err != nil && ctx.Err() == nil {
					log.Warn("reloading the signing keys after a change failed; the next refresh retries", "error", err)
				}
			}()
		}
	})
	a.start(km.Run)
	a.start(bus.Run)
	// The last flush of last-use times runs when the app stops, before the store closes.
	a.start(func(ctx context.Context) { flushUsage(ctx, gh, log) })
	outages := outage.New(store, log)
	quiet.follow(outages.Down)
	a.start(outages.Run)

	pub := &server.Public{Issuer: cfg.Issuer, Grants: gh, Keys: keyset, Store: readiness(store), Metrics: m, Log: log,
		TrustedProxies: cfg.TrustedProxies, Outages: outages, Profiles: endpoints, Tracer: tr.Provider,
		MTLS: cfg.MTLS(), ClientCertHeader: cfg.TLSClientCertHeader}
	if cfg.Console.Enabled {
		pub.Console = console.New(console.Options{
			Passwords: gh, Registry: reg, Store: store, Issuer: cfg.Issuer,
			// Browsers reach the console at the issuer: behind a TLS-terminating proxy the
			// listener is plain HTTP but the cookies must still be Secure.
			Secure:      cfg.PublicTLS() || strings.HasPrefix(cfg.Issuer, "https://"),
			IdleTimeout: cfg.Console.IdleTimeout.D(), AbsoluteTimeout: cfg.Console.AbsoluteTimeout.D(),
			RotateGrace: cfg.Console.RotateGrace.D(), Log: log,
		})
	}
	adm := &server.Admin{TokenHash: secret.Hash(adminToken), Registry: reg, Tokens: gh, Keys: keyset, KeyManager: km, Store: store,
		Metrics: m, Log: log, Version: Version, TrustedProxies: cfg.TrustedProxies, Outages: outages, Audit: auditor,
		Tracer: tr.Provider}

	if firstStart {
		if err := printWelcome(ctx, stdout, reg, cfg.Issuer, devCert, adminTokenPath, cfg.Console.Enabled); err != nil {
			return err
		}
	}
	if devCert != "" {
		printDevTLS(stdout, cfg.Issuer, devCert)
	}
	switch {
	case cfg.IssuerDerived && kind == config.StorageRedis:
		// Tokens of one service carry one iss; each replica would derive its own.
		log.Warn("issuer derived from this replica's listener; replicas behind one load balancer need one issuer: set TOKENSMITH_ISSUER to its URL", "issuer", cfg.Issuer)
	case cfg.IssuerDerived:
		log.Info("issuer derived from the public listener; set TOKENSMITH_ISSUER when clients reach the server by another URL", "issuer", cfg.Issuer)
	}
	if w := cfg.IssuerWarning(port); !cfg.IssuerDerived && w != "" {
		log.Warn(w)
	}
	log.Info("tokensmith started", "version", Version, "issuer", cfg.Issuer, "listen", pubLn.Addr().String(), "tls", pubTLS != nil,
		"admin_listen", admLn.Addr().String(), "admin_tls", admTLS != nil, "storage", storageLabel(cfg.Storage), "kid", keyset.ActiveID(),
		"signer", keys.SignerName, "signer_version", keys.SignerVersion(),
		"replica", replicas.ID(), "live_replicas", replicas.Live(), "audit", auditLabel(cfg), "tracing", tr.Summary)
	for _, ep := range endpoints {
		log.Info("seed API profile on", "profile", ep.Profile, "api", ep.Seed,
			"route", strings.Join(ep.Route.HTTPMethods(), ",")+" "+ep.Path)
	}

	// The listeners are shut down, their last requests answered, before anything above stops.
	return serveListeners(ctx, log, []listener{
		{name: "public listener", ln: pubLn, tls: pubTLS, handler: pub.Handler(), hsts: devCert == "",
			clientCerts: cfg.TLSClientAuth == config.ClientAuthRequest},
		{name: "admin listener", ln: admLn, tls: admTLS, handler: adm.Handler(), hsts: devCert == ""},
	})
}

// reindexUsernames moves users stored before usernames were Unicode-normalised to the
// normalised form, so a look-alike name is refused for them too. Every start runs it: on a
// store already moved it only reads the name index. Users it cannot move (two old users whose
// names look alike) still sign in with their own names; the operator hears of them once per
// start.
func reindexUsernames(ctx context.Context, store storage.Storage, log *slog.Logger) error {
	r, err := store.ReindexUsernames(ctx)
	if err != nil {
		return fmt.Errorf("reindexing usernames: %w", err)
	}
	if r.Moved > 0 {
		log.Info("usernames stored before Unicode normalisation moved to their normalised form", "users", r.Moved)
	}
	for _, c := range r.Conflicts {
		log.Warn("two users have names that look alike once normalised; both still sign in with their own names, "+
			"but consider deleting one and creating it again under another name", "user", c[0], "look_alike", c[1])
	}
	return nil
}

// warnLongTokens names the clients registered before their tokens' length was checked (or
// before the issuer or the default audience grew) whose longest access token would not fit the
// revocation and introspection endpoints: they are still served, and the operator should narrow
// their scopes or audiences, which any change to them now requires. A store that cannot list
// its clients is left to the requests that follow to report.
//
// Clients saved since lengths were checked cannot be too long for the configuration they were
// saved under, so the walk is needed once per store and configuration, not at every start of
// every replica (at a million clients it reads hundreds of megabytes). The store's one-time
// record for that configuration, named by what it bounds, lets the first replica to claim it
// walk the clients, a record at a time, and every later start skip the walk.
func warnLongTokens(ctx context.Context, store storage.Storage, bound func(storage.Client) int, log *slog.Logger) {
	mark := "checked-token-lengths:" + storage.KeyDigest(
		strconv.Itoa(bound(storage.Client{})), strconv.Itoa(bound(storage.Client{Audience: []string{"a"}})))
	claim := secret.New(16)
	if got, err := store.EnsureServerSecret(ctx, mark, claim); err != nil || got != claim {
		return
	}
	_ = store.EachClient(ctx, func(c storage.Client) error {
		if n := bound(c); n > protocol.MaxTokenLen {
			log.Warn("a client's access tokens can be longer than revocation and introspection take; narrow its scopes or audience",
				"client_id", c.ID, "longest", n, "limit", protocol.MaxTokenLen)
		}
		return ctx.Err()
	})
}
