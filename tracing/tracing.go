package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// The standard variables Open reads itself. The exporters read the rest (headers, timeout,
// compression, certificates), the SDK the sampler (OTEL_TRACES_SAMPLER, _ARG) and the batching
// (OTEL_BSP_*), the resource OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
const (
	envDisabled       = "OTEL_SDK_DISABLED"
	envExporter       = "OTEL_TRACES_EXPORTER"
	envEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// Exporter names of OTEL_TRACES_EXPORTER, and OTLP protocols.
const (
	exporterOTLP    = "otlp"
	exporterConsole = "console"
	exporterNone    = "none"

	protocolHTTP = "http/protobuf"
	protocolGRPC = "grpc"
)

// Tracing is the tracing Open set up.
type Tracing struct {
	// Provider starts the server's spans. It is nil when tracing is off: nothing then starts
	// a span, and no exporter runs.
	Provider trace.TracerProvider
	// Summary says where spans go, for the start-up log line: "off", or the exporters, e.g.
	// "otlp http/protobuf http://collector:4318". It never holds headers or credentials.
	Summary string
	sdk     *sdktrace.TracerProvider
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.Provider != nil }

// Shutdown exports the spans still queued and stops the exporters, giving up when ctx ends.
// It does nothing when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// Open sets tracing up as the OTEL_* variables say. It is off unless OTEL_TRACES_EXPORTER names
// an exporter or an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, which alone mean "otlp"); OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turn it off whatever else is set. OTLP goes over HTTP with protobuf
// unless OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL says grpc.
//
// A value the SDK would ignore with a warning (an unknown exporter, protocol or sampler, a
// malformed resource attribute) is an error here: a server that was asked to trace and
// silently does not, or samples everything it was told to sample a tenth of, is found out only
// when the traces are needed. Later failures, such as a collector that does not answer, are
// logged to log at most every exportErrorEvery, and never fail or slow a request.
//
// version is the server's, for the service.version resource attribute; service.name is
// "tokensmith" unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name another.
func Open(ctx context.Context, version string, log *slog.Logger) (*Tracing, error) {
	names, err := exporterNames()
	if err != nil || len(names) == 0 {
		return &Tracing{Summary: "off"}, err
	}
	errs := handleErrors(log)
	defer errs.setupDone()
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("tokensmith"), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing: OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	var exporters []sdktrace.SpanExporter
	var summary []string
	for _, name := range names {
		exp, what, err := newExporter(ctx, name)
		if err != nil {
			for _, e := range exporters {
				_ = e.Shutdown(context.Background())
			}
			return nil, err
		}
		exporters = append(exporters, exp)
		summary = append(summary, what)
	}
	// WithBatcher starts the batching goroutine at once: last, so that an error above leaves
	// nothing running.
	for _, exp := range exporters {
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	if err := errs.setupErr(); err != nil {
		_ = tp.Shutdown(context.Background())
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return &Tracing{Provider: tp, sdk: tp, Summary: strings.Join(summary, ", ")}, nil
}

// exporterNames are the exporters asked for; none means tracing is off.
func exporterNames() ([]string, error) {
	if v := os.Getenv(envDisabled); v != "" {
		disabled, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("tracing: %s=%q: want true or false", envDisabled, v)
		}
		if disabled {
			return nil, nil
		}
	}
	v := strings.TrimSpace(os.Getenv(envExporter))
	if v == "" {
		if os.Getenv(envEndpoint) == "" && os.Getenv(envTracesEndpoint) == "" {
			return nil, nil
		}
		return []string{exporterOTLP}, nil
	}
	var names []string
	for _, n := range strings.Split(v, ",") {
		n = strings.ToLower(strings.TrimSpace(n))
		switch n {
		case exporterOTLP, exporterConsole, exporterNone:
		default:
			return nil, fmt.Errorf("tracing: %s=%q: unknown exporter %q (want otlp, console or none)", envExporter, v, n)
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if slices.Contains(names, exporterNone) {
		if len(names) > 1 {
			return nil, fmt.Errorf("tracing: %s=%q: none cannot be combined with another exporter", envExporter, v)
		}
		return nil, nil
	}
	return names, nil
}

// newExporter builds one exporter, which reads its own settings from the environment, and
// describes it for the log.
func newExporter(ctx context.Context, name string) (sdktrace.SpanExporter, string, error) {
	if name == exporterConsole {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
		return exp, exporterConsole, err
	}
	// The exporters ignore an endpoint they cannot parse, with a line on their own logger, and
	// send to localhost instead.
	for _, name := range []string{envTracesEndpoint, envEndpoint} {
		if v := os.Getenv(name); v != "" {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, "", fmt.Errorf("tracing: %s=%q: want a URL such as http://otel-collector:4318", name, v)
			}
		}
	}
	proto, from := os.Getenv(envTracesProtocol), envTracesProtocol
	if proto == "" {
		proto, from = os.Getenv(envProtocol), envProtocol
	}
	var exp sdktrace.SpanExporter
	var err error
	switch proto {
	case "", protocolHTTP:
		proto = protocolHTTP
		exp, err = otlptracehttp.New(ctx)
	case protocolGRPC:
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, "", fmt.Errorf("tracing: %s=%q: want http/protobuf or grpc (the Go exporter has no http/json)", from, proto)
	}
	if err != nil {
		return nil, "", fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	what := exporterOTLP + " " + proto
	if ep := endpoint(); ep != "" {
		what += " " + ep
	}
	return exp, what, nil
}

// endpoint is the configured OTLP endpoint (a URL, checked by newExporter) without
// credentials, query or fragment, for the log; "" when the exporter's default (localhost)
// applies.
func endpoint() string {
	ep := os.Getenv(envTracesEndpoint)
	if ep == "" {
		ep = os.Getenv(envEndpoint)
	}
	u, err := url.Parse(ep)
	if ep == "" || err != nil {
		return ""
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// exportErrorEvery bounds how often a failing exporter is logged: every batch fails while a
// collector is down, and a busy server sends several batches a second.
const exportErrorEvery = time.Minute

// errorLog is the OpenTelemetry error handler: errors while Open runs are collected and
// returned by it; later ones are logged, at most one line per exportErrorEvery.
type errorLog struct {
	mu         sync.Mutex
	log        *slog.Logger
	setup      []error
	inSetup    bool
	last       time.Time
	suppressed int
}

var (
	errorsOnce sync.Once
	errorsTo   = &errorLog{}
)

// handleErrors makes errorsTo the SDK's error handler and logger, collecting errors until
// setupDone.
func handleErrors(log *slog.Logger) *errorLog {
	errorsOnce.Do(func() { otel.SetErrorHandler(errorsTo) })
	otel.SetLogger(logr.FromSlogHandler(log.Handler()))
	errorsTo.mu.Lock()
	defer errorsTo.mu.Unlock()
	errorsTo.log, errorsTo.inSetup, errorsTo.setup = log, true, nil
	return errorsTo
}

func (h *errorLog) setupDone() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inSetup = false
}

func (h *errorLog) setupErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return errors.Join(h.setup...)
}

// Handle implements otel.ErrorHandler.
func (h *errorLog) Handle(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inSetup {
		h.setup = append(h.setup, err)
		return
	}
	if h.log == nil {
		return
	}
	if now := time.Now(); now.Sub(h.last) >= exportErrorEvery {
		h.log.Warn("tracing: exporting spans failed; spans are dropped until it works again", "error", err,
			"failures_not_logged", h.suppressed)
		h.last, h.suppressed = now, 0
		return
	}
	h.suppressed++
}

// InstrumentRedis records a span for each command rdb sends (go-redis's OpenTelemetry hook),
// without the command's arguments (hashes and ids of tokens; never useful in a trace). Only
// commands sent for a traced request are recorded: the server's background work (key refresh,
// the change feed, replica heartbeats, the audit stream) would otherwise start a trace of its
// own every few seconds.
func InstrumentRedis(rdb redis.UniversalClient, tp trace.TracerProvider) error {
	return redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(childrenOnly{tp: tp}),
		redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false))
}

// childrenOnly is a TracerProvider whose tracers start a span only inside another one.
type childrenOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (c childrenOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childTracer{t: c.tp.Tracer(name, opts...)}
}

type childTracer struct {
	embedded.Tracer
	t trace.Tracer
}

// Start starts a span when ctx holds one (local, or remote from a traceparent header), and
// otherwise returns ctx and a span that records nothing.
func (c childTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return c.t.Start(ctx, name, opts...)
}
