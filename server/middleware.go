package server

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/protocol"
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
			slog.String("scheme", proxies.scheme(c)), slog.Duration("duration", time.Since(start)))
	}
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
