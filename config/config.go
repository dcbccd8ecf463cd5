package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/tokensmith/tokensmith/duration"
	passwordvalidator "github.com/wagslane/go-password-validator"
	"gopkg.in/yaml.v3"
)

// Config mirrors the YAML file. Every field can be overridden by the environment variable in
// its env tag.
type Config struct {
	// Issuer is the iss of every token and the base of the metadata URLs. Empty means derived
	// from Listen (DeriveIssuer), so discovery names the URL the server is reached at.
	Issuer string `yaml:"issuer" env:"ISSUER"`
	// Listen is the public listener (token endpoint, JWKS, discovery, health).
	Listen string `yaml:"listen" env:"LISTEN"`
	// AdminListen is the admin API listener; keep it on loopback or a private network.
	AdminListen string `yaml:"admin_listen" env:"ADMIN_LISTEN"`
	// TLSCert and TLSKey are PEM files; with them the public listener serves HTTPS (and
	// HTTP/2), and picks up new files when they change on disk.
	TLSCert string `yaml:"tls_cert" env:"TLS_CERT"`
	TLSKey  string `yaml:"tls_key" env:"TLS_KEY"`
	// AdminTLSCert and AdminTLSKey do the same for the admin listener.
	AdminTLSCert string `yaml:"admin_tls_cert" env:"ADMIN_TLS_CERT"`
	AdminTLSKey  string `yaml:"admin_tls_key" env:"ADMIN_TLS_KEY"`
	// DevTLS serves both listeners over HTTPS with a self-signed certificate for localhost,
	// generated into DataDir: for trying TLS-only clients on one machine, never for production.
	DevTLS bool `yaml:"dev_tls" env:"DEV_TLS"`
	// TrustedProxies are the addresses (IPs or CIDRs) whose X-Forwarded-For and
	// X-Forwarded-Proto headers are believed; from anyone else they are ignored.
	TrustedProxies []string `yaml:"trusted_proxies" env:"TRUSTED_PROXIES" envSeparator:","`
	// AdminToken is the bearer token of the admin API; generated into DataDir when empty.
	AdminToken string `yaml:"admin_token" env:"ADMIN_TOKEN"`
	// Storage selects the backend by URL: memory:, file:PATH, redis://…
	Storage string `yaml:"storage" env:"STORAGE"`
	// DataDir holds the embedded store and the generated admin token.
	DataDir string `yaml:"data_dir" env:"DATA_DIR"`
	// Audience is the aud of tokens for clients that configure none; empty means the issuer.
	Audience []string `yaml:"audience" env:"AUDIENCE" envSeparator:","`
	// ReplicaTimeout is how long a replica counts as live after its last heartbeat.
	ReplicaTimeout duration.Duration `yaml:"replica_timeout" env:"REPLICA_TIMEOUT"`
	// StoreTimeout bounds each store call of a token request; past it the answer is 503. A
	// hot path makes at most two calls, so the default keeps a 503 within a second.
	StoreTimeout duration.Duration `yaml:"store_timeout" env:"STORE_TIMEOUT"`
	// ClientCacheTTL is how long a replica trusts a client record it read (0: always read).
	ClientCacheTTL duration.Duration `yaml:"client_cache_ttl" env:"CLIENT_CACHE_TTL"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level" env:"LOG_LEVEL"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format" env:"LOG_FORMAT"`

	// Tokens are the server-wide policy defaults; clients override them one by one.
	Tokens Tokens `yaml:"tokens" envPrefix:""`
	// Keys is the signing-key lifecycle.
	Keys Keys `yaml:"keys" envPrefix:"KEYS_"`
	// Console is the integration console on the public listener.
	Console Console `yaml:"console" envPrefix:"CONSOLE_"`
	// Profiles turns on seed API profiles: extra token routes on the public listener speaking
	// a seed API's wire format (package profiles). TOKENSMITH_PROFILES (comma-separated names)
	// chooses which are on; the paths given in YAML stay.
	Profiles Profiles `yaml:"profiles" env:"-"`

	// Audit is where the audit trail goes.
	Audit Audit `yaml:"audit" envPrefix:""`

	// IssuerDerived is set by Load when Issuer was not configured but derived from Listen.
	IssuerDerived bool `yaml:"-"`
}

// Keys is the signing-key lifecycle.
type Keys struct {
	// PublishAhead is how long a new key is in the JWKS before it signs, so resource servers
	// holding a cached JWKS (the JWKS says max-age 5 min) have it by then.
	PublishAhead duration.Duration `yaml:"publish_ahead" env:"PUBLISH_AHEAD"`
	// RotateEvery rotates the signing key on a schedule; 0 turns it off.
	RotateEvery duration.Duration `yaml:"rotate_every" env:"ROTATE_EVERY"`
}

// Console configures the integration console served under /console/.
type Console struct {
	// Enabled serves the console; off, /console/ answers 404.
	Enabled bool `yaml:"enabled" env:"ENABLED"`
	// IdleTimeout ends a session nobody has used for this long.
	IdleTimeout duration.Duration `yaml:"idle_timeout" env:"IDLE_TIMEOUT"`
	// AbsoluteTimeout ends every session this long after sign-in, used or not.
	AbsoluteTimeout duration.Duration `yaml:"absolute_timeout" env:"ABSOLUTE_TIMEOUT"`
	// RotateGrace is how long a client's previous secret keeps working after the owner
	// regenerates it in the console; 0 ends it at once.
	RotateGrace duration.Duration `yaml:"rotate_grace" env:"ROTATE_GRACE"`
}

// Audit configures the audit trail: one event per token issued, reused, refreshed, exchanged,
// refused, replayed or revoked, and per admin change.
type Audit struct {
	// Sink is log (the server's log, the default), off, file:PATH (JSON lines), redis (a
	// stream in the store's Redis, which every replica appends to) or a redis://, rediss://,
	// redis+sentinel:// or redis+cluster:// URL of another Redis.
	Sink string `yaml:"sink" env:"AUDIT"`
	// Stream is the Redis stream's key.
	Stream string `yaml:"stream" env:"AUDIT_STREAM"`
	// MaxLen is about how many events the Redis stream keeps (XADD MAXLEN ~).
	MaxLen int64 `yaml:"max_len" env:"AUDIT_MAX_LEN"`
	// Buffer is how many events may wait for the sink; past it events are dropped and
	// counted, so a slow sink never slows a token request.
	Buffer int `yaml:"buffer" env:"AUDIT_BUFFER"`
}

// Audit sink kinds returned by ParseAuditSink.
const (
	AuditOff   = "off"
	AuditLog   = "log"
	AuditFile  = "file"
	AuditRedis = "redis"
)

// ParseAuditSink splits Audit.Sink into its kind and, for file, the path or, for redis, the
// Redis URL (the store's when the sink is just "redis").
func (c Config) ParseAuditSink() (kind, target string, err error) {
	s := c.Audit.Sink
	switch {
	case s == AuditOff || s == AuditLog:
		return s, "", nil
	case strings.HasPrefix(s, "file:"):
		if p := strings.TrimPrefix(s, "file:"); p != "" {
			return AuditFile, p, nil
		}
		return "", "", fmt.Errorf("%q: file: needs a path, e.g. file:/var/log/tokensmith/audit.jsonl", s)
	case s == AuditRedis:
		if kind, _, _ := ParseStorage(c.Storage); kind != StorageRedis {
			return "", "", fmt.Errorf("%q needs a Redis storage; give a redis:// URL to use another Redis", s)
		}
		return AuditRedis, c.Storage, nil
	case strings.HasPrefix(s, "redis://"), strings.HasPrefix(s, "rediss://"),
		strings.HasPrefix(s, "redis+sentinel://"), strings.HasPrefix(s, "redis+cluster://"):
		return AuditRedis, s, nil
	default:
		return "", "", fmt.Errorf("%q: want log, off, file:PATH, redis or a Redis URL", s)
	}
}

// Tokens holds the server-wide token policy defaults.
type Tokens struct {
	ClientCredentialsTTL duration.Duration `yaml:"client_credentials_ttl" env:"CLIENT_CREDENTIALS_TTL"`
	PasswordTTL          duration.Duration `yaml:"password_ttl" env:"PASSWORD_TTL"`
	RefreshTTL           duration.Duration `yaml:"refresh_ttl" env:"REFRESH_TTL"`
	// ExchangeTTL is the lifetime of access tokens from token exchange (RFC 8693).
	ExchangeTTL duration.Duration `yaml:"exchange_ttl" env:"EXCHANGE_TTL"`
	// RefreshGrace is how long a rotated refresh token is answered idempotently; 0 turns it off.
	RefreshGrace      duration.Duration `yaml:"refresh_grace" env:"REFRESH_GRACE"`
	ReuseMinRemaining duration.Duration `yaml:"reuse_min_remaining" env:"REUSE_MIN_REMAINING"`
	// DailyLimitTimezone is the IANA zone whose calendar day daily limits count.
	DailyLimitTimezone string `yaml:"daily_limit_timezone" env:"DAILY_LIMIT_TIMEZONE"`
	// FailedLoginLimit is how many wrong passwords in a row one username may send before
	// password-grant attempts for it are delayed with exponential backoff.
	FailedLoginLimit int `yaml:"failed_login_limit" env:"FAILED_LOGIN_LIMIT"`
}

// EnvPrefix is the prefix of every environment override.
const EnvPrefix = "TOKENSMITH_"

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:         ":8080",
		AdminListen:    "127.0.0.1:8081",
		DataDir:        "./data",
		LogLevel:       "info",
		LogFormat:      "text",
		ReplicaTimeout: duration.Duration(15 * time.Second),
		StoreTimeout:   duration.Duration(500 * time.Millisecond),
		ClientCacheTTL: duration.Duration(time.Second),
		Keys:           Keys{PublishAhead: duration.Duration(10 * time.Minute)},
		Console: Console{
			Enabled:         true,
			IdleTimeout:     duration.Duration(30 * time.Minute),
			AbsoluteTimeout: duration.Duration(12 * time.Hour),
		},
		Tokens: Tokens{
			ClientCredentialsTTL: duration.Duration(3 * time.Hour),
			PasswordTTL:          duration.Duration(24 * time.Hour),
			RefreshTTL:           duration.Duration(14 * 24 * time.Hour),
			ExchangeTTL:          duration.Duration(15 * time.Minute),
			RefreshGrace:         duration.Duration(5 * time.Second),
			ReuseMinRemaining:    duration.Duration(5 * time.Minute),
			FailedLoginLimit:     5,
			DailyLimitTimezone:   "UTC",
		},
		Audit: Audit{Sink: AuditLog, Stream: "ts:audit", MaxLen: 1_000_000, Buffer: 10_000},
	}
}

// Load builds the configuration: defaults, then the YAML file at path (if path is not empty),
// then TOKENSMITH_* variables from environ, then Validate.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		// An empty file decodes to io.EOF: it simply sets nothing.
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	envMap := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			envMap[k] = v
		}
	}
	if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: envMap}); err != nil {
		return c, envError(err)
	}
	if v, ok := envMap[EnvPrefix+"PROFILES"]; ok {
		c.Profiles = c.Profiles.only(v)
	}
	if c.Storage == "" {
		c.Storage = "file:" + filepath.Join(c.DataDir, "tokensmith.db")
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	if c.Issuer == "" {
		if iss, err := DeriveIssuer(c.Listen, c.PublicTLS()); err == nil {
			c.Issuer, c.IssuerDerived = iss, true
		}
	}
	return c, c.Validate()
}

// DeriveIssuer is the URL of a public listener on listen: https when it serves TLS, and
// localhost when it listens on every address (":8080" gives http://localhost:8080, the documented
// default issuer).
func DeriveIssuer(listen string, tls bool) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		return "", fmt.Errorf("%q must be host:port or :port", listen)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// PublicTLS reports whether the public listener serves HTTPS.
func (c Config) PublicTLS() bool { return c.DevTLS || c.TLSCert != "" }

// AdminTLS reports whether the admin listener serves HTTPS.
func (c Config) AdminTLS() bool { return c.DevTLS || c.AdminTLSCert != "" }

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

// envError rewrites the env library's errors, which name Go fields, to name the variables.
func envError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: environment: %w", err)
	}
	keys := envKeys(reflect.TypeFor[Config]())
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			errs = append(errs, fmt.Errorf("%s%s: %v", EnvPrefix, keys[pe.Name], pe.Err))
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// envKeys maps struct field names to their env tags, through nested structs.
func envKeys(t reflect.Type) map[string]string {
	out := map[string]string{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct {
			maps.Copy(out, envKeys(f.Type))
		}
		if k := f.Tag.Get("env"); k != "" {
			out[f.Name] = strings.Split(k, ",")[0]
		}
	}
	return out
}

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

// DailyLimitLocation is the loaded time zone of Tokens.DailyLimitTimezone (valid after Load).
func (c Config) DailyLimitLocation() *time.Location {
	loc, err := time.LoadLocation(c.Tokens.DailyLimitTimezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Storage kinds returned by ParseStorage.
const (
	StorageMemory = "memory"
	StorageFile   = "file"
	StorageRedis  = "redis"
)

// ParseStorage splits a storage URL into its kind and the backend-specific rest.
func ParseStorage(s string) (kind, rest string, err error) {
	switch {
	case s == "memory:" || s == "memory":
		return StorageMemory, "", nil
	case strings.HasPrefix(s, "file:"):
		p := strings.TrimPrefix(s, "file:")
		p = strings.TrimPrefix(p, "//")
		if p == "" {
			return "", "", fmt.Errorf("%q: file: needs a path, e.g. file:./data/tokensmith.db", s)
		}
		return StorageFile, p, nil
	case strings.HasPrefix(s, "redis://"), strings.HasPrefix(s, "rediss://"),
		strings.HasPrefix(s, "redis+sentinel://"), strings.HasPrefix(s, "redis+cluster://"):
		return StorageRedis, s, nil
	default:
		return "", "", fmt.Errorf("%q: unknown backend (want memory:, file:PATH, redis://, rediss://, redis+sentinel:// or redis+cluster://)", s)
	}
}
