package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"
)

// engineOptions are what both listeners share about the network in front of them and the
// store behind them.
type engineOptions struct {
	trustedProxies []string
	outages        OutageReporter
	// tracer, when set, records a span per request.
	tracer trace.TracerProvider
}

// newEngine is the engine of one listener, with the middleware and error answers both share.
func newEngine(log *slog.Logger, o engineOptions) engine {
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
	r.Use(headMethod, requestContext)
	if o.tracer != nil {
		// Inside requestContext (its span carries the caller's address), around everything
		// else: the access line and a recovered panic belong to the request's span.
		r.Use(traceRequests(o.tracer, px))
	}
	r.Use(recovery(log), accessLog(log, px))
	if o.outages != nil {
		r.Use(reportOutages(o.outages))
	}
	routeErrors(r, log)
	return engine{r}
}

// engine is a listener's Gin engine, answering HEAD wherever GET is routed: RFC 9110 §9.3.2
// expects it, and health checks and link checkers use it. Gin routes a HEAD request only to
// HEAD routes; rather than registering one beside every GET (and missing the next), no HEAD
// route is registered anywhere and ServeHTTP serves them all.
type engine struct{ *gin.Engine }

// ServeHTTP routes a HEAD request as a GET, so the GET route's middleware and handlers answer
// it with the GET's status and headers, and drops the body they write. headMethod puts the
// method back before any of them runs: the handlers and the access log see HEAD. A path with
// no GET route answers HEAD as it answers GET: 404, or 405 naming HEAD.
func (e engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodHead {
		e.Engine.ServeHTTP(w, r)
		return
	}
	get := r.WithContext(context.WithValue(r.Context(), headRequest{}, true))
	get.Method = http.MethodGet
	e.Engine.ServeHTTP(bodiless{w}, get)
}

// headRequest marks, in its context, a HEAD request routed as a GET.
type headRequest struct{}

// headMethod gives a HEAD request routed as a GET its method back.
func headMethod(c *gin.Context) {
	if c.Request.Context().Value(headRequest{}) != nil {
		c.Request.Method = http.MethodHead
	}
}

// bodiless passes on the status and headers of an answer and drops its body, as a HEAD answer
// must whatever the handler writes. Gin writes the status before the first byte of a body, so
// dropping a write never loses it.
type bodiless struct{ http.ResponseWriter }

func (bodiless) Write(p []byte) (int, error) { return len(p), nil }

// Flush passes a flush on: Gin's own writer assumes the one beneath can.
func (b bodiless) Flush() {
	if f, ok := b.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (b bodiless) Unwrap() http.ResponseWriter { return b.ResponseWriter }

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
