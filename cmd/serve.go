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

	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/replica"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	redisstore "github.com/tokensmith/tokensmith/storage/redis"
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

func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (storage.Storage, error) {
	kind, rest, err := config.ParseStorage(cfg.Storage)
	if err != nil {
		return nil, err
	}
	switch kind {
	case config.StorageMemory:
		return embedded.OpenMemory()
	case config.StorageFile:
		return embedded.OpenFile(rest)
	default:
		redisstore.SetLogger(log)
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return redisstore.Open(ctx, rest)
	}
}

// serve runs both listeners until ctx ends, then shuts them down gracefully.
func serve(ctx context.Context, cfg config.Config, stdout io.Writer, log *slog.Logger) error {
	// Background work (heartbeats, the change feed) stops with this context; every early
	// return cancels it before waiting for that work, so an error never waits for a signal.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	keyset, firstStart, err := keys.Load(ctx, store)
	if err != nil {
		return err
	}
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
	bus := replica.NewBus(store, log)
	reg := registry.New(store, bus, registry.WithAuditor(auditor))
	replicas := replica.New(store, cfg.ReplicaTimeout.D(), Version, log)
	m.Gauges(replicas.Live, func() time.Duration { return signingKeyAge(keyset, time.Now()) })
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
		grants.WithAuditor(auditor), grants.WithStoreObserver(m.ObserveStore))
	bus.Handle(gh.Forget)
	changes := make(chan struct{})
	go func() { bus.Run(ctx); close(changes) }()
	defer func() { cancel(); <-changes }()
	usage := make(chan struct{})
	go func() { flushUsage(ctx, gh, log); close(usage) }()
	defer func() { cancel(); <-usage }()

	pub := &server.Public{Issuer: cfg.Issuer, Grants: gh, Keys: keyset, Store: store, Metrics: m, Log: log}
	adm := &server.Admin{TokenHash: secret.Hash(adminToken), Registry: reg, Tokens: gh, Keys: keyset, Store: store, Metrics: m, Log: log, Version: Version}

	pubLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	admLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		pubLn.Close()
		return fmt.Errorf("admin_listen: %w", err)
	}

	if firstStart {
		if err := printWelcome(ctx, stdout, reg, pubLn.Addr(), adminTokenPath); err != nil {
			return err
		}
	}
	log.Info("tokensmith started", "version", Version, "issuer", cfg.Issuer, "listen", pubLn.Addr().String(),
		"admin_listen", admLn.Addr().String(), "storage", storageLabel(cfg.Storage), "kid", keyset.ActiveID(),
		"signer", keys.SignerName, "signer_version", keys.SignerVersion(),
		"replica", replicas.ID(), "live_replicas", replicas.Live(), "audit", auditLabel(cfg))

	servers := []*http.Server{
		{Handler: pub.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute},
		{Handler: adm.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute},
	}
	errc := make(chan error, 2)
	for i, ln := range []net.Listener{pubLn, admLn} {
		go func() { errc <- servers[i].Serve(ln) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("listener failed", "error", err)
		}
	}
	log.Info("shutting down")
	// Requests in flight finish (a token request is bounded by store_timeout); connections
	// that were opened but never used, which Shutdown would wait 5 s for, are then closed.
	shutCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if s.Shutdown(shutCtx) != nil {
				_ = s.Close()
			}
		})
	}
	wg.Wait()
	return nil
}

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
	active := ks.ActiveID()
	for _, k := range ks.Keys() {
		if k.ID == active {
			return now.Sub(k.CreatedAt)
		}
	}
	return 0
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
// goes to standard output, not the log: the secret is shown this once and never logged.
func printWelcome(ctx context.Context, w io.Writer, reg *registry.Service, addr net.Addr, adminTokenPath string) error {
	name := "demo"
	grantsAllowed := []string{protocol.GrantClientCredentials}
	scopes := []string{"demo"}
	v, err := reg.CreateClient(ctx, registry.ClientInput{Name: &name, GrantTypes: &grantsAllowed, Scopes: &scopes})
	if err != nil {
		return fmt.Errorf("demo client: %w", err)
	}
	host := "127.0.0.1"
	port := "8080"
	if tcp, ok := addr.(*net.TCPAddr); ok {
		port = fmt.Sprint(tcp.Port)
		if !tcp.IP.IsUnspecified() {
			host = tcp.IP.String()
		}
	}
	tokenPath := "(TOKENSMITH_ADMIN_TOKEN)"
	if adminTokenPath != "" {
		tokenPath, _ = filepath.Abs(adminTokenPath)
	}
	fmt.Fprintf(w, `
Tokensmith first start: created a demo client.

  client_id:     %s
  client_secret: %s   (shown once)

Get a token:

  curl -s -u '%s:%s' -d grant_type=client_credentials http://%s/oauth2/token

Public keys:  http://%s/.well-known/jwks.json
Admin token:  %s

`, v.ClientID, v.ClientSecret, v.ClientID, v.ClientSecret, net.JoinHostPort(host, port), net.JoinHostPort(host, port), tokenPath)
	return nil
}
