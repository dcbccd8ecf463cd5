package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/replica"
	"github.com/tokensmith/tokensmith/storage"
	redisstore "github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/tracing"
)

// keyOptions is the signing-key lifecycle of cfg. A retired key stays published as long as the
// longest access token any client can be given (the store keeps that bound as clients are
// written, so a rotation reads one record, not every client); a shared store (Redis) may be
// one that lost its data under running replicas, so a start on an empty one waits for them to
// write their keys back.
func keyOptions(cfg config.Config, store storage.Storage, bus *replica.Bus) keys.Options {
	opts := keys.Options{
		Algorithms:   cfg.Keys.Algorithms,
		PublishAhead: cfg.Keys.PublishAhead.D(),
		RotateEvery:  cfg.Keys.RotateEvery.D(),
		Refresh:      keyRefresh,
		Lifetime: func(ctx context.Context) (time.Duration, error) {
			longest := max(cfg.Tokens.ClientCredentialsTTL.D(), cfg.Tokens.PasswordTTL.D(), cfg.Tokens.ExchangeTTL.D())
			given, err := store.LongestAccessTokenTTL(ctx)
			return max(longest, given), err
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

// grantsPolicy is the server-wide token policy of cfg.
func grantsPolicy(cfg config.Config) grants.Policy {
	return grants.Policy{
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
	}
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

// signingKeyAge is how long the longest-serving of the keys that sign now (one per
// algorithm) has been signing: the one a rotation alert is about.
func signingKeyAge(ks *keys.Set, now time.Time) time.Duration {
	var oldest time.Duration
	for _, alg := range ks.Algorithms() {
		k := ks.ActiveAt(alg, now)
		if k == nil || k.Algorithm != alg {
			continue // its first key is still published ahead
		}
		// A key published ahead starts signing at its activation.
		since := k.CreatedAt
		if k.ActivatesAt.After(since) {
			since = k.ActivatesAt
		}
		oldest = max(oldest, now.Sub(since))
	}
	return oldest
}

// usageFlushEvery is how often last-used times of personal tokens are written.
const usageFlushEvery = time.Minute

// flushUsage writes when personal tokens were last used every minute, and once more when ctx
// ends, so listings show last use at most a minute late and a clean stop loses none.
func flushUsage(ctx context.Context, gh *grants.Service, log *slog.Logger) {
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

// tracingShutdownGrace bounds the export of the last spans when the server stops.
const tracingShutdownGrace = 3 * time.Second

// stopTracing exports the spans still queued, within tracingShutdownGrace: a collector that
// does not answer delays the stop by that much at most.
func stopTracing(tr *tracing.Tracing, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownGrace)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		log.Warn("tracing: the last spans were not exported", "error", err)
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
	return redisstore.Redact(s)
}
