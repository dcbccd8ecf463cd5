package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/duration"
	"github.com/tokensmith/tokensmith/protocol"
	passwordvalidator "github.com/wagslane/go-password-validator"
)

// Validate checks every field and reports all problems at once, each naming its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		// An issuer that could not be derived is reported as the listen problem it comes from.
		if c.Issuer != "" || c.IssuerDerived {
			bad("issuer", "%q must be an absolute http(s) URL without query or fragment", c.Issuer)
		}
	}
	for field, addr := range map[string]string{"listen": c.Listen, "admin_listen": c.AdminListen} {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			bad(field, "%q must be host:port or :port", addr)
		}
	}
	if _, port, _ := net.SplitHostPort(c.Listen); c.Listen == c.AdminListen && port != "0" {
		bad("admin_listen", "must differ from listen (%q)", c.Listen)
	}
	if c.AdminToken != "" {
		if err := CheckAdminToken(c.AdminToken); err != nil {
			bad("admin_token", "%v", err)
		}
	}
	for _, pair := range [][4]string{{"tls_cert", c.TLSCert, "tls_key", c.TLSKey}, {"admin_tls_cert", c.AdminTLSCert, "admin_tls_key", c.AdminTLSKey}} {
		if (pair[1] == "") != (pair[3] == "") {
			bad(pair[0], "%s and %s are set together or not at all", pair[0], pair[2])
		}
		if c.DevTLS && pair[1] != "" {
			bad("dev_tls", "cannot be combined with %s: the dev certificate is for trying TLS on one machine", pair[0])
		}
	}
	c.validateMTLS(bad)
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			bad("trusted_proxies", "%q is neither an IP address nor a CIDR range", p)
		}
	}
	if _, _, err := ParseStorage(c.Storage); err != nil {
		bad("storage", "%v", err)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	for _, a := range c.Audience {
		if strings.TrimSpace(a) == "" {
			bad("audience", "must not contain empty values")
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q must be debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log_format", "%q must be text or json", c.LogFormat)
	}
	if c.ReplicaTimeout.D() < 3*time.Second {
		bad("replica_timeout", "must be at least 3s")
	}
	if c.StoreTimeout.D() < 50*time.Millisecond || c.StoreTimeout.D() > 30*time.Second {
		bad("store_timeout", "must be between 50ms and 30s")
	}
	if c.ClientCacheTTL < 0 {
		bad("client_cache_ttl", "must not be negative")
	}
	t := c.Tokens
	if _, err := time.LoadLocation(t.DailyLimitTimezone); err != nil || t.DailyLimitTimezone == "" {
		bad("tokens.daily_limit_timezone", "%q is not an IANA time zone", t.DailyLimitTimezone)
	}
	for field, d := range map[string]duration.Duration{
		"tokens.client_credentials_ttl": t.ClientCredentialsTTL,
		"tokens.password_ttl":           t.PasswordTTL,
		"tokens.refresh_ttl":            t.RefreshTTL,
		"tokens.exchange_ttl":           t.ExchangeTTL,
	} {
		if d.D() < time.Second {
			bad(field, "must be at least 1s, got %s", duration.Format(d.D()))
		}
	}
	if t.RefreshGrace < 0 {
		bad("tokens.refresh_grace", "must not be negative")
	}
	if t.ReuseMinRemaining < 0 {
		bad("tokens.reuse_min_remaining", "must not be negative")
	}
	if t.FailedLoginLimit < 1 {
		bad("tokens.failed_login_limit", "must be at least 1")
	}
	if len(c.Keys.Algorithms) == 0 {
		bad("keys.algorithms", "must name at least one algorithm (RS256 is what every integration verifies)")
	}
	for i, a := range c.Keys.Algorithms {
		if err := protocol.CheckSigningAlgorithm(a); err != nil {
			bad("keys.algorithms", "%v", err)
		} else if slices.Contains(c.Keys.Algorithms[:i], a) {
			bad("keys.algorithms", "%s is named twice", a)
		}
	}
	if c.Keys.PublishAhead < 0 || c.Keys.PublishAhead.D() > 24*time.Hour {
		bad("keys.publish_ahead", "must be between 0s and 24h")
	}
	if r := c.Keys.RotateEvery.D(); r != 0 && (r < time.Hour || r <= c.Keys.PublishAhead.D()) {
		bad("keys.rotate_every", "must be 0 (off) or at least 1h and longer than keys.publish_ahead")
	}
	con := c.Console
	if con.IdleTimeout.D() < time.Minute || con.IdleTimeout.D() > 24*time.Hour {
		// A session's idle expiry is moved forward at most once a minute.
		bad("console.idle_timeout", "must be between 1m and 24h")
	}
	if con.AbsoluteTimeout < con.IdleTimeout || con.AbsoluteTimeout.D() > 30*24*time.Hour {
		bad("console.absolute_timeout", "must be at least console.idle_timeout and at most 30d")
	}
	if con.RotateGrace < 0 || con.RotateGrace.D() > 30*24*time.Hour {
		bad("console.rotate_grace", "must be between 0s and 30d")
	}
	if _, _, err := c.ParseAuditSink(); err != nil {
		bad("audit.sink", "%v", err)
	}
	if c.Audit.Stream == "" {
		bad("audit.stream", "must not be empty")
	}
	if c.Audit.MaxLen < 1000 {
		bad("audit.max_len", "must be at least 1000")
	}
	if c.Audit.Buffer < 1 || c.Audit.Buffer > 10_000_000 {
		bad("audit.buffer", "must be between 1 and 10000000")
	}
	return errors.Join(errs...)
}

// validateMTLS checks the three mutual-TLS settings: each problem once, naming its field.
func (c Config) validateMTLS(bad func(field, format string, args ...any)) {
	switch c.TLSClientAuth {
	case ClientAuthOff:
	case ClientAuthRequest:
		if !c.PublicTLS() {
			bad("tls_client_auth", "request needs the public listener to serve TLS (tls_cert and tls_key, or dev_tls); "+
				"behind a TLS-terminating proxy use tls_client_cert_header instead")
		}
	default:
		bad("tls_client_auth", "%q must be off or request", c.TLSClientAuth)
	}
	if c.TLSClientCA != "" {
		if !c.MTLS() {
			bad("tls_client_ca", "is used only with tls_client_auth request or tls_client_cert_header")
		} else if err := checkCAFile(c.TLSClientCA); err != nil {
			bad("tls_client_ca", "%v", err)
		}
	}
	if h := c.TLSClientCertHeader; h != "" {
		switch {
		case !validHeaderName(h):
			bad("tls_client_cert_header", "%q is not a header name", h)
		case len(c.TrustedProxies) == 0:
			bad("tls_client_cert_header", "is believed only from trusted_proxies, and none are configured")
		}
	}
}

// checkCAFile reads a PEM file of CA certificates, refusing one that holds none.
func checkCAFile(name string) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := ParseCAs(b); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// ParseCAs reads PEM CA certificates into a pool; PEM blocks of other types are skipped, and a
// file without a single certificate, or with one that does not parse, is refused.
func ParseCAs(pemBytes []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("holds no PEM certificate")
	}
	return pool, nil
}

// validHeaderName reports whether h is an HTTP field name (RFC 9110 token).
func validHeaderName(h string) bool {
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return h != ""
}

// MinAdminTokenBits is the least estimated entropy an admin token may have.
const MinAdminTokenBits = 128

// CheckAdminToken refuses an admin token that could be guessed: its entropy is estimated from
// the kinds of characters it uses and its length, with repeats and runs such as "aaaa" or
// "1234" discounted (github.com/wagslane/go-password-validator). The token is never quoted.
func CheckAdminToken(tok string) error {
	if bits := passwordvalidator.GetEntropy(tok); bits < MinAdminTokenBits {
		return fmt.Errorf("has about %d bits of entropy, at least %d are required (generate one with: openssl rand -hex 32)",
			int(bits), MinAdminTokenBits)
	}
	return nil
}

// IssuerWarning explains why the issuer cannot be the URL of the public listener when it is
// bound to port, or returns "". An issuer without a port (https://auth.example.com) is taken
// to be a proxy's address and is not questioned; one that names a port, or whose default
// port is the listener's, must match the listener, or clients that check the discovery
// document's issuer against the URL they fetched it from (go-oidc, openid-client) refuse it.
func (c Config) IssuerWarning(port string) string {
	u, err := url.Parse(c.Issuer)
	if err != nil {
		return ""
	}
	scheme := "http"
	if c.PublicTLS() {
		scheme = "https"
	}
	iport := u.Port()
	switch {
	case iport != "" && iport != port:
		return fmt.Sprintf("issuer %s names port %s but the public listener is on port %s: "+
			"unless a proxy forwards port %s to it, clients will refuse the discovery document; leave issuer unset to derive it from listen",
			c.Issuer, iport, port, iport)
	case iport == "" && map[string]string{"http": "80", "https": "443"}[u.Scheme] != port:
		return ""
	case u.Scheme != scheme:
		return fmt.Sprintf("issuer %s uses %s but the public listener on port %s serves %s", c.Issuer, u.Scheme, port, scheme)
	}
	return ""
}
