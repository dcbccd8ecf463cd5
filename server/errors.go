package server

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/protocol"
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
		writeError(c, log, protocol.Errorf(protocol.MethodNotAllowed, "method %s is not allowed here", c.Request.Method))
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

// proxies are the addresses whose forwarding headers are believed.
type proxies struct{ nets []*net.IPNet }

// parseProxies reads IPs and CIDR ranges (validated by config).
func parseProxies(list []string) (*proxies, error) {
	p := &proxies{}
	for _, s := range list {
		if !strings.Contains(s, "/") {
			if ip := net.ParseIP(s); ip != nil && ip.To4() != nil {
				s += "/32"
			} else {
				s += "/128"
			}
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		p.nets = append(p.nets, n)
	}
	return p, nil
}

func (p *proxies) trusts(remote string) bool {
	ip := net.ParseIP(remote)
	for _, n := range p.nets {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// scheme is "https" when the caller reached this listener over TLS, or reached a trusted
// proxy that says so in X-Forwarded-Proto. No URL is ever built from it: those come from the
// issuer.
func (p *proxies) scheme(c *gin.Context) string {
	if c.Request.TLS != nil {
		return "https"
	}
	if fwd := c.GetHeader("X-Forwarded-Proto"); fwd != "" && p.trusts(c.RemoteIP()) {
		first, _, _ := strings.Cut(fwd, ",")
		if strings.EqualFold(strings.TrimSpace(first), "https") {
			return "https"
		}
	}
	return "http"
}

// engineOptions are what both listeners share about the network in front of them and the
// store behind them.
type engineOptions struct {
	trustedProxies []string
	outages        OutageReporter
}

func newEngine(log *slog.Logger, o engineOptions) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Gin trusts X-Forwarded-For from any caller by default, which would let anyone choose the
	// address the access log and the failed-login backoff see: only the configured proxies are
	// believed (X-Forwarded-For, then X-Real-IP, read right to left past trusted hops).
	px, err := parseProxies(o.trustedProxies)
	if err == nil {
		err = r.SetTrustedProxies(o.trustedProxies)
	}
	if err != nil || len(o.trustedProxies) == 0 {
		if err != nil {
			log.Error("trusted_proxies ignored", "error", err)
		}
		px = &proxies{}
		_ = r.SetTrustedProxies(nil)
	}
	// Client ids may contain '/' (RFC 6749 VSCHAR); routes match the escaped path so %2F stays
	// inside one path parameter.
	r.UseRawPath = true
	r.UnescapePathValues = true
	r.Use(requestContext, recovery(log), accessLog(log, px))
	if o.outages != nil {
		r.Use(reportOutages(o.outages))
	}
	routeErrors(r, log)
	return r
}

// noStore marks answers that must not be cached (RFC 6749 §5.1).
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
}
