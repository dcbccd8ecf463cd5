package server

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/protocol"
)

// writeError renders any error as an RFC 6749 §5.2 JSON answer. It is the only place that turns
// errors into HTTP.
func writeError(c *gin.Context, log *slog.Logger, err error) {
	pe := protocol.As(err)
	status := pe.Status()
	switch {
	case status >= 500:
		// The cause may name the backend's failure; it never holds request secrets.
		log.ErrorContext(c.Request.Context(), "request failed", "path", c.Request.URL.Path, "error", pe.Code, "cause", pe.Unwrap())
	case pe.Code == protocol.TemporarilyUnavailable:
		log.WarnContext(c.Request.Context(), "store unavailable", "path", c.Request.URL.Path, "cause", pe.Unwrap())
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if pe.Code == protocol.InvalidClient && pe.Basic {
		h.Set("WWW-Authenticate", `Basic realm="tokensmith"`)
	}
	if pe.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(pe.RetryAfter))
	}
	c.AbortWithStatusJSON(status, pe)
}

// routeErrors answers unknown paths and methods in the same error shape.
func routeErrors(r *gin.Engine, log *slog.Logger) {
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		writeError(c, log, protocol.Errorf(protocol.NotFound, "no such endpoint"))
	})
	r.NoMethod(func(c *gin.Context) {
		writeError(c, log, protocol.Errorf(protocol.MethodNotFound, "method %s is not allowed here", c.Request.Method))
	})
}

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
// carry credentials. The request id comes from the context (logging.New's handler).
func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		level := slog.LevelInfo
		if c.Request.URL.Path == "/healthz" || c.Request.URL.Path == "/readyz" || c.Request.URL.Path == "/metrics" {
			level = slog.LevelDebug
		}
		ctx := c.Request.Context()
		if !log.Enabled(ctx, level) {
			return
		}
		req, _ := logging.RequestFrom(ctx)
		log.LogAttrs(ctx, level, "http", slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()), slog.Int("bytes", c.Writer.Size()), slog.String("remote", req.Remote),
			slog.Duration("duration", time.Since(start)))
	}
}

func newEngine(log *slog.Logger) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Gin trusts X-Forwarded-For from any caller by default, which would let anyone choose the
	// address the access log and the failed-login backoff see.
	_ = r.SetTrustedProxies(nil)
	// Client ids may contain '/' (RFC 6749 VSCHAR); routes match the escaped path so %2F stays
	// inside one path parameter.
	r.UseRawPath = true
	r.UnescapePathValues = true
	r.Use(requestContext, recovery(log), accessLog(log))
	routeErrors(r, log)
	return r
}

// noStore marks answers that must not be cached (RFC 6749 §5.1).
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
}
