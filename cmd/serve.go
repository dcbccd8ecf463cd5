package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/console"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/outage"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/replica"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	redisstore "github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/tlscert"
)

func serveCmd(stdout, stderr io.Writer) *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the token server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath, os.Environ())
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
			return serve(ctx, cfg, stdout, newLogger(cfg, logs))
		},
	}
	c.Flags().StringVar(&cfgPath, "config", os.Getenv("TOKENSMITH_CONFIG"), "YAML configuration file (env TOKENSMITH_CONFIG)")
	return c
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

// openStore opens the configured backend. An embedded file store is locked for this process:
// two processes writing one buntdb file would corrupt it.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, quiet *storeQuiet) (storage.Storage, error) {
	kind, rest, err := config.ParseStorage(cfg.Storage)
	if err != nil {
		return nil, err
	}
	switch kind {
	case config.StorageMemory:
		return embedded.OpenMemory()
	case config.StorageFile:
		if err := os.MkdirAll(filepath.Dir(rest), 0o700); err != nil {
			return nil, fmt.Errorf("storage %s (TOKENSMITH_STORAGE): %w", cfg.Storage, err)
		}
		lock := flock.New(rest+".lock", flock.SetPermissions(0o600))
		if ok, err := lock.TryLock(); err != nil || !ok {
			if err == nil {
				err = errors.New("another tokensmith process is using it (an embedded store has one process; to run several, share Redis)")
			}
			return nil, fmt.Errorf("storage %s (TOKENSMITH_STORAGE): %w", cfg.Storage, err)
		}
		s, err := embedded.OpenFile(rest)
		if err != nil {
			_ = lock.Unlock()
			return nil, fmt.Errorf("storage %s (TOKENSMITH_STORAGE): %w", cfg.Storage, err)
		}
		return lockedStore{s, lock}, nil
	default:
		redisstore.SetLogger(slog.New(quietHandler{log.Handler(), quiet.quiet}))
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s, err := redisstore.Open(ctx, rest)
		if err != nil {
			return nil, fmt.Errorf("storage %s (TOKENSMITH_STORAGE) is unreachable: %w", storageLabel(cfg.Storage), err)
		}
		return s, nil
	}
}

// lockedStore releases the embedded store's lock after closing it.
type lockedStore struct {
	storage.Storage
	lock *flock.Flock
}

func (l lockedStore) Close() error {
	err := l.Storage.Close()
	_ = l.lock.Unlock()
	return err
}

// listen opens a listener; its error names the address, the setting and, for the usual
// causes, what to do.
func listen(addr, field, env string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	reason := err.Error()
	var se *os.SyscallError
	if errors.As(err, &se) {
		reason = se.Err.Error()
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		reason += ": another process is using that port; stop it or set " + env + " to a free one"
	case errors.Is(err, syscall.EACCES):
		reason += ": ports below 1024 need privileges; choose a higher port with " + env
	}
	return nil, fmt.Errorf("cannot listen on %s (%s, %s): %s", addr, field, env, reason)
}

// listenerTLS loads the certificates of both listeners: the configured files, or the dev
// certificate (created on first use). A nil config means plain HTTP.
func listenerTLS(cfg config.Config, log *slog.Logger) (pub, adm *tlscert.Files, devCert string, err error) {
	load := func(cert, key, what string) (*tlscert.Files, error) {
		f, err := tlscert.Load(cert, key, log.With("listener", what))
		if err != nil {
			return nil, err
		}
		leaf := f.Leaf()
		log.Info("TLS certificate loaded", "listener", what, "cert", cert, "dns_names", leaf.DNSNames, "not_after", leaf.NotAfter)
		if left := time.Until(leaf.NotAfter); left < 14*24*time.Hour {
			log.Warn("TLS certificate expires soon or has expired; replace the files, they are reloaded without a restart",
				"listener", what, "cert", cert, "not_after", leaf.NotAfter)
		}
		return f, nil
	}
	if cfg.DevTLS {
		certFile, keyFile, created, err := tlscert.EnsureDev(cfg.DataDir, time.Now())
		if err != nil {
			return nil, nil, "", fmt.Errorf("dev_tls (TOKENSMITH_DEV_TLS): %w", err)
		}
		if created {
			log.Info("created a self-signed development certificate for localhost", "cert", certFile)
		}
		f, err := load(certFile, keyFile, "public and admin")
		if err != nil {
			return nil, nil, "", fmt.Errorf("dev_tls (TOKENSMITH_DEV_TLS): %w", err)
		}
		return f, f, certFile, nil
	}
	if cfg.TLSCert != "" {
		if pub, err = load(cfg.TLSCert, cfg.TLSKey, "public"); err != nil {
			return nil, nil, "", fmt.Errorf("tls_cert, tls_key (TOKENSMITH_TLS_CERT, TOKENSMITH_TLS_KEY): %w", err)
		}
	}
	if cfg.AdminTLSCert != "" {
		if adm, err = load(cfg.AdminTLSCert, cfg.AdminTLSKey, "admin"); err != nil {
			return nil, nil, "", fmt.Errorf("admin_tls_cert, admin_tls_key (TOKENSMITH_ADMIN_TLS_CERT, TOKENSMITH_ADMIN_TLS_KEY): %w", err)
		}
	}
	return pub, adm, "", nil
}

// serve runs both listeners until ctx ends, then shuts them down gracefully. Every error
// that keeps it from serving is returned at once, as one line naming its cause.
func serve(ctx context.Context, cfg config.Config, stdout io.Writer, log *slog.Logger) error {
	// Background work (heartbeats, the change feed) stops with this context; every early
	// return cancels it before waiting for that work, so an error never waits for a signal.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The listeners come first: a taken port is the commonest start-up failure, and finding it
	// before the store is touched keeps a first start's demo client for the start that works.
	pubLn, err := listen(cfg.Listen, "listen", "TOKENSMITH_LISTEN")
	if err != nil {
		return err
	}
	defer pubLn.Close()
	admLn, err := listen(cfg.AdminListen, "admin_listen", "TOKENSMITH_ADMIN_LISTEN")
	if err != nil {
		return err
	}
	defer admLn.Close()
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

	quiet := &storeQuiet{}
	store, err := openStore(ctx, cfg, log, quiet)
	if err != nil {
		return err
	}
	defer store.Close()
	bus := replica.NewBus(store, log)
	km, firstStart, err := keys.Open(ctx, store, keyOptions(cfg, store, bus), log)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	keyset := km.Set
	defer keyset.Close()
	adminToken, adminTokenPath, err := ensureAdminToken(cfg)
	if err != nil {
		return err
	}
	m := metrics.New()
	auditor, runAudit, err := openAudit(cfg, log, m)
	if err != nil {
		return err
	}
	// The audit trail outlives the listeners: it stops after the last request has been
	// answered, writes what is still queued, and closes its sink.
	auditCtx, stopAudit := context.WithCancel(context.WithoutCancel(ctx))
	auditDone := make(chan struct{})
	go func() { runAudit(auditCtx); close(auditDone) }()
	defer func() { stopAudit(); <-auditDone }()
	reg := registry.New(store, bus, registry.WithAuditor(auditor))
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
	heartbeats := make(chan struct{})
	go func() { replicas.Run(ctx); close(heartbeats) }()
	// Deregister before the store closes, so the other replicas stop counting this one at once.
	defer func() { cancel(); <-heartbeats }()
	gh := grants.NewHandler(store, keyset, grants.Policy{
		Issuer:               cfg.Issuer,
		Audience:             cfg.Audience,
		ClientCredentialsTTL: cfg.Tokens.ClientCredentialsTTL.D(),
		PasswordTTL:          cfg.Tokens.PasswordTTL.D(),
		RefreshTTL:           cfg.Tokens.RefreshTTL.D(),
		ExchangeTTL:          cfg.Tokens.ExchangeTTL.D(),
		RefreshGrace:         cfg.Tokens.RefreshGrace.D(),
		ReuseMinRemaining:    cfg.Tokens.ReuseMinRemaining.D(),
		DailyLimitLocation:   cfg.DailyLimitLocation(),
		FailedLoginLimit:     cfg.Tokens.FailedLoginLimit,
		ClientCacheTTL:       cfg.ClientCacheTTL.D(),
		StoreTimeout:         cfg.StoreTimeout.D(),
	}, grants.WithLogger(log), grants.WithReplicas(replicas.Live), grants.WithChangeFeed(bus.Healthy), grants.WithAnnouncer(bus),
		grants.WithIssueHook(func(g string) { m.Issued.WithLabelValues(g).Inc() }),
		grants.WithQuotaHook(func(e grants.QuotaEvent) { m.Quota(e.ClientID, e.Window, e.Shadow) }),
		grants.WithAuditor(auditor), grants.WithStoreObserver(m.ObserveStore))
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
	keyLoop := make(chan struct{})
	go func() { km.Run(ctx); close(keyLoop) }()
	defer func() { cancel(); <-keyLoop }()
	changes := make(chan struct{})
	go func() { bus.Run(ctx); close(changes) }()
	defer func() { cancel(); <-changes }()
	usage := make(chan struct{})
	go func() { flushUsage(ctx, gh, log); close(usage) }()
	defer func() { cancel(); <-usage }()
	outages := outage.New(store, log)
	quiet.follow(outages.Down)
	outagesDone := make(chan struct{})
	go func() { outages.Run(ctx); close(outagesDone) }()
	defer func() { cancel(); <-outagesDone }()

	endpoints, err := cfg.ProfileEndpoints()
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	pub := &server.Public{Issuer: cfg.Issuer, Grants: gh, Keys: keyset, Store: store, Metrics: m, Log: log,
		TrustedProxies: cfg.TrustedProxies, Outages: outages, Profiles: endpoints}
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
		Metrics: m, Log: log, Version: Version, TrustedProxies: cfg.TrustedProxies, Outages: outages}

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
		"replica", replicas.ID(), "live_replicas", replicas.Live(), "audit", auditLabel(cfg))
	for _, ep := range endpoints {
		log.Info("seed API profile on", "profile", ep.Profile, "api", ep.Seed,
			"route", strings.Join(ep.Route.HTTPMethods(), ",")+" "+ep.Path)
	}

	servers := []*http.Server{
		{Handler: pub.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute},
		{Handler: adm.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute},
	}
	names := []string{"public listener", "admin listener"}
	errc := make(chan error, 2)
	for i, ln := range []net.Listener{pubLn, admLn} {
		files := []*tlscert.Files{pubTLS, admTLS}[i]
		if files != nil {
			servers[i].TLSConfig = tlscert.Config(files)
		}
		go func() {
			var err error
			if files == nil {
				err = servers[i].Serve(ln)
			} else {
				// ServeTLS offers HTTP/2 as well as HTTP/1.1 (ALPN).
				err = servers[i].ServeTLS(ln, "", "")
			}
			errc <- fmt.Errorf("%s %s stopped: %w", names[i], ln.Addr(), err)
		}()
	}
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
		// A listener that stops by itself stops the process, with a non-zero exit.
		log.Error("shutting down: a listener failed", "error", failed)
	}
	log.Info("shutting down")
	// Requests in flight finish (a token request is bounded by store_timeout); connections
	// that were opened but never used, which Shutdown would wait 5 s for, are then closed.
	shutCtx, cancelShut := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancelShut()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if s.Shutdown(shutCtx) != nil {
				_ = s.Close()
			}
		})
	}
	wg.Wait()
	return failed
}

// keyOptions is the signing-key lifecycle of cfg. A retired key stays published as long as the
// longest access token any client can be given; a shared store (Redis) may be one that lost
// its data under running replicas, so a start on an empty one waits for them to write their keys
// back.
func keyOptions(cfg config.Config, store storage.Storage, bus *replica.Bus) keys.Options {
	opts := keys.Options{
		PublishAhead: cfg.Keys.PublishAhead.D(),
		RotateEvery:  cfg.Keys.RotateEvery.D(),
		Refresh:      keyRefresh,
		Lifetime: func(ctx context.Context) (time.Duration, error) {
			longest := max(cfg.Tokens.ClientCredentialsTTL.D(), cfg.Tokens.PasswordTTL.D(), cfg.Tokens.ExchangeTTL.D())
			clients, err := store.ListClients(ctx)
			for _, c := range clients {
				longest = max(longest, c.AccessTokenTTL)
			}
			return longest, err
		},
		Changed: func(ctx context.Context) {
			_ = bus.Announce(ctx, storage.Change{Kind: storage.ChangeSigningKeys})
		},
	}
	if kind, _, _ := config.ParseStorage(cfg.Storage); kind == config.StorageRedis {
		opts.RestoreWait = 2*keyRefresh + time.Second
	}
	return opts
}

// keyRefresh is how often a replica re-reads the signing keys.
const keyRefresh = 2 * time.Second

// openAudit returns the recorder grants and the registry report to (the metrics, and the
// audit trail unless it is off) and the function that runs the trail's writer until its
// context ends.
func openAudit(cfg config.Config, log *slog.Logger, m *metrics.Metrics) (audit.Recorder, func(context.Context), error) {
	kind, target, err := cfg.ParseAuditSink()
	if err != nil {
		return nil, nil, err
	}
	var sink audit.Sink
	switch kind {
	case config.AuditOff:
		return m, func(context.Context) {}, nil
	case config.AuditLog:
		sink = audit.LogSink{Log: log}
	case config.AuditFile:
		if sink, err = audit.OpenFile(target); err != nil {
			return nil, nil, err
		}
	case config.AuditRedis:
		o, err := redisstore.Options(target)
		if err != nil {
			return nil, nil, fmt.Errorf("audit: %w", err)
		}
		sink = audit.NewRedisSink(goredis.NewUniversalClient(o), cfg.Audit.Stream, cfg.Audit.MaxLen)
	}
	w := audit.NewWriter(sink, audit.Options{Buffer: cfg.Audit.Buffer, Log: log, Hooks: m.AuditHooks()})
	return audit.Tee(m, w), w.Run, nil
}

// signingKeyAge is how long the key that signs now has been signing.
func signingKeyAge(ks *keys.Set, now time.Time) time.Duration {
	k := ks.ActiveAt(now)
	if k == nil {
		return 0
	}
	// A key published ahead starts signing at its activation.
	since := k.CreatedAt
	if k.ActivatesAt.After(since) {
		since = k.ActivatesAt
	}
	return now.Sub(since)
}

// usageFlushEvery is how often last-used times of personal tokens are written.
const usageFlushEvery = time.Minute

// flushUsage writes when personal tokens were last used every minute, and once more when ctx
// ends, so listings show last use at most a minute late and a clean stop loses none.
func flushUsage(ctx context.Context, gh *grants.Handler, log *slog.Logger) {
	t := time.NewTicker(usageFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := gh.FlushUsage(fctx); err != nil {
				log.Warn("writing personal token last-use times failed", "error", err)
			}
			return
		}
		if err := gh.FlushUsage(ctx); err != nil {
			log.Warn("writing personal token last-use times failed; kept for the next try", "error", err)
		}
	}
}

// auditLabel names the audit sink for the start-up log, without a Redis URL's credentials.
func auditLabel(cfg config.Config) string {
	kind, target, _ := cfg.ParseAuditSink()
	switch kind {
	case config.AuditFile:
		return "file:" + target
	case config.AuditRedis:
		return "redis " + storageLabel(target) + " stream " + cfg.Audit.Stream
	}
	return kind
}

// storageLabel keeps credentials in a Redis URL out of the log.
func storageLabel(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "***" + s[i:]
		}
	}
	return s
}

// ensureAdminToken returns the configured admin token or the one in the data directory,
// generating it (mode 0600) on first start.
func ensureAdminToken(cfg config.Config) (tok, path string, err error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, "", nil
	}
	path = adminTokenFile(cfg.DataDir)
	if b, err := os.ReadFile(path); err == nil {
		if tok = strings.TrimSpace(string(b)); tok != "" {
			if err := config.CheckAdminToken(tok); err != nil {
				return "", "", fmt.Errorf("admin token in %s: %w; delete the file to have one generated", path, err)
			}
			return tok, path, nil
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", "", fmt.Errorf("data_dir: %w", err)
	}
	tok = "tsa_" + secret.NewSecret()
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("admin token: %w", err)
	}
	return tok, path, nil
}

// printWelcome creates the demo client on the very first start and prints how to use it. It
// goes to standard output, not the log: the secret is shown this once and never logged. The
// curl line uses the issuer, the URL the server says it is reached at.
func printWelcome(ctx context.Context, w io.Writer, reg *registry.Service, issuer, devCert, adminTokenPath string, consoleOn bool) error {
	name := "demo"
	grantsAllowed := []string{protocol.GrantClientCredentials}
	scopes := []string{"demo"}
	v, err := reg.CreateClient(ctx, registry.ClientInput{Name: &name, GrantTypes: &grantsAllowed, Scopes: &scopes})
	if err != nil {
		return fmt.Errorf("demo client: %w", err)
	}
	tokenPath := "(TOKENSMITH_ADMIN_TOKEN)"
	if adminTokenPath != "" {
		tokenPath, _ = filepath.Abs(adminTokenPath)
	}
	cacert := ""
	if devCert != "" {
		abs, _ := filepath.Abs(devCert)
		cacert = "--cacert " + abs + " "
	}
	fmt.Fprintf(w, `
Tokensmith first start: created a demo client.

  client_id:     %s
  client_secret: %s   (shown once)

Get a token:

  curl -s %s-u '%s:%s' -d grant_type=client_credentials %s/oauth2/token

Public keys:  %s/.well-known/jwks.json
Admin token:  %s
`, v.ClientID, v.ClientSecret, cacert, v.ClientID, v.ClientSecret, issuer, issuer, tokenPath)
	if consoleOn {
		fmt.Fprintf(w, "Console:      %s/console/  (for users: tokensmith user create, then client update ID --owner USER_ID)\n", issuer)
	}
	fmt.Fprintln(w)
	return nil
}

// printDevTLS says, on every start with the dev certificate, how to trust it.
func printDevTLS(w io.Writer, issuer, devCert string) {
	abs, _ := filepath.Abs(devCert)
	fmt.Fprintf(w, `Dev TLS: both listeners serve HTTPS with a self-signed certificate for localhost, 127.0.0.1 and ::1.
Trust it, and only it, for this server:

  curl --cacert %s %s/.well-known/oauth-authorization-server
  Python requests: REQUESTS_CA_BUNDLE=%s    Node: NODE_EXTRA_CA_CERTS=%s
  Go: add it to tls.Config.RootCAs.  The CLI trusts it by itself when run from this directory.

`, abs, issuer, abs, abs)
}
