package server

import (
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/dpop"
	"github.com/tokensmith/tokensmith/protocol"
	"go.opentelemetry.io/otel/attribute"
)

// writeError renders any error as an RFC 6749 §5.2 JSON answer.
func writeError(c *gin.Context, log *slog.Logger, err error) {
	writeErrorAs(c, log, err, rfc6749Error)
}

// rfc6749Error is an error's RFC 6749 §5.2 status and body.
func rfc6749Error(pe *protocol.Error) (int, any) { return pe.Status(), pe }

// writeErrorAs renders any error with render's status and body (a seed API profile's
// envelope). It is the only place that turns errors into HTTP: logging, outage reporting and
// headers are the same for every shape.
func writeErrorAs(c *gin.Context, log *slog.Logger, err error, render func(*protocol.Error) (int, any)) {
	pe := protocol.As(err)
	status, body := render(pe)
	switch {
	case pe.Code == protocol.TemporarilyUnavailable:
		// An outage fails every request at once: it is logged once when it starts and once
		// when it ends (OutageReporter), not once per request.
		_ = c.Error(pe)
		log.DebugContext(c.Request.Context(), "store unavailable", "path", c.Request.URL.Path, "cause", pe.Unwrap())
	case status >= 500:
		// The cause may name the backend's failure; it never holds request secrets.
		log.ErrorContext(c.Request.Context(), "request failed", "path", c.Request.URL.Path, "error", pe.Code, "cause", pe.Unwrap())
	}
	if span := recording(c); span != nil {
		span.SetAttributes(attribute.String("oauth2.error", pe.Code))
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
	rateLimitHeaders(c, pe.RateLimit)
	if pe.DPoPNonce != "" {
		h.Set(dpop.NonceHeader, pe.DPoPNonce)
	}
	c.AbortWithStatusJSON(status, body)
}

// rateLimitHeaders tells the caller where it stands against its client's tightest quota, in
// the X-RateLimit-* headers GitHub and Auth0 answer: the limit, what is left of it, and when it
// resets (unix seconds). In shadow mode Remaining reaches 0 without anything being refused.
func rateLimitHeaders(c *gin.Context, rl *protocol.RateLimit) {
	if rl == nil {
		return
	}
	h := c.Writer.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(rl.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(rl.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.Reset.Unix(), 10))
}

// routeErrors answers unknown paths and methods in the same error shape.
func routeErrors(r *gin.Engine, log *slog.Logger) {
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		writeError(c, log, protocol.Errorf(protocol.NotFound, "no such endpoint"))
	})
	r.NoMethod(func(c *gin.Context) {
		// Gin's Allow lists the methods routed for the path; HEAD is served wherever GET is.
		h := c.Writer.Header()
		if allow := strings.Split(h.Get("Allow"), ", "); slices.Contains(allow, http.MethodGet) {
			h.Set("Allow", strings.Join(append(allow, http.MethodHead), ", "))
		}
		writeError(c, log, protocol.Errorf(protocol.MethodNotAllowed, "method %s is not allowed here", c.Request.Method))
	})
}
