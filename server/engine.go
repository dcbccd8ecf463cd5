package server

import (
	"log/slog"
	"net"
	"strings"

	"github.com/gin-gonic/gin"
)

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
