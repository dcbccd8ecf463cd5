package server

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/protocol"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// recovery turns a panic (a bug, never bad input) into a logged 500 with the usual shape.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecovery(func(c *gin.Context, v any) {
		log.ErrorContext(c.Request.Context(), "panic", "path", c.Request.URL.Path, "panic", v)
		writeError(c, log, protocol.Errorf(protocol.ServerError, "internal error"))
	})
}

// requestContext gives every request an id, adopted from a sane X-Request-Id or generated,
// echoed in the answer, and puts it in the request's context with the caller's address: every
// log line logged with that context and every audit event of the request carry them.
func requestContext(c *gin.Context) {
	id := c.GetHeader(RequestIDHeader)
	if !logging.ValidRequestID(id) {
		id = logging.NewRequestID()
	}
	c.Writer.Header()[RequestIDHeader] = []string{id}
	ctx := logging.WithRequest(c.Request.Context(), logging.Request{ID: id, Remote: c.ClientIP()})
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// RequestIDHeader carries a request's id in both directions.
const RequestIDHeader = "X-Request-Id"

// accessLog logs one line per request: never the query string, body or headers, which may
// carry credentials. remote is the caller's address as the trusted proxies report it (the
// request context's, see requestContext), and scheme what the caller used.
func accessLog(log *slog.Logger, proxies *proxies) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		level := slog.LevelInfo
		if probe(c.Request.URL.Path) {
			level = slog.LevelDebug
		}
		ctx := c.Request.Context()
		if !log.Enabled(ctx, level) {
			return
		}
		req, _ := logging.RequestFrom(ctx)
		log.LogAttrs(ctx, level, "http", slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()), slog.Int("bytes", c.Writer.Size()), slog.String("remote", req.Remote),
			slog.String("scheme", proxies.scheme(c)), slog.Duration("duration", time.Since(start)))
	}
}

// probe reports whether path is a health check or a metrics scrape: repeated every few seconds
// by machines, logged at debug level and not traced.
func probe(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// TracerName names the server's tracer (the instrumentation scope of its spans).
const TracerName = "github.com/tokensmith/tokensmith/server"

// propagator reads the W3C trace context (traceparent, tracestate) and baggage of a request.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// traceRequests records a server span for every request but the probes, named by its method
// and route ("POST /oauth2/token", "GET /admin/clients/:id"), so traces group by endpoint and
// not by client id. When the request carries a W3C traceparent, the span is the caller's
// span's child and the request's work joins the caller's trace. The span's attributes follow
// the OpenTelemetry HTTP conventions; the path is recorded, never the query string or a
// header. A 5xx answer marks the span failed; a 4xx is the caller's error, not the server's.
func traceRequests(tp trace.TracerProvider, proxies *proxies) gin.HandlerFunc {
	tracer := tp.Tracer(TracerName)
	return func(c *gin.Context) {
		path := c.Request.URL.Path
		if probe(path) {
			c.Next()
			return
		}
		method, name := c.Request.Method, c.Request.Method
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		default:
			method, name = "_OTHER", "HTTP"
		}
		attrs := make([]attribute.KeyValue, 0, 8)
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String(method), semconv.URLPath(path),
			semconv.URLScheme(proxies.scheme(c)), semconv.UserAgentOriginal(c.Request.UserAgent()))
		if route := c.FullPath(); route != "" {
			name += " " + route
			attrs = append(attrs, semconv.HTTPRoute(route))
		}
		if req, ok := logging.RequestFrom(c.Request.Context()); ok {
			attrs = append(attrs, semconv.ClientAddress(req.Remote), attribute.String("tokensmith.request_id", req.ID))
		}
		ctx := propagator.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		defer span.End()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
		status := c.Writer.Status()
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
}

// recording is the request's span if it is being recorded, else nil: attributes are built
// only for a span that keeps them.
func recording(c *gin.Context) trace.Span {
	if span := trace.SpanFromContext(c.Request.Context()); span.IsRecording() {
		return span
	}
	return nil
}

// OutageReporter hears of every request answered 503 because the store did not answer
// (outage.Tracker implements it).
type OutageReporter interface {
	Failed(cause error)
}

// reportOutages tells r of every 503 answer, with the cause writeError recorded.
func reportOutages(r OutageReporter) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if c.Writer.Status() == http.StatusServiceUnavailable {
			var cause error
			if last := c.Errors.Last(); last != nil {
				cause = errors.Unwrap(last.Err)
			}
			if errors.Is(cause, grants.ErrBusy) {
				return // this server's own load, not the store
			}
			r.Failed(cause)
		}
	}
}
