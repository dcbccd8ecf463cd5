package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/duration"
)

// Config mirrors the YAML file. Every field can be overridden by the environment variable in
// its env tag.
type Config struct {
	// Issuer is the iss of every token and the base of the metadata URLs. Empty means derived
	// from Listen: http(s)://HOST:PORT of the public listener, localhost when it
	// listens on every address, https when it serves TLS, so discovery names the URL the server
	// is reached at. Set it when clients reach the server by another URL (a proxy, a load
	// balancer); a set issuer whose port cannot be the listener's is warned about at start.
	Issuer string `yaml:"issuer" env:"ISSUER"`
	// Listen is the public listener (token endpoint, JWKS, discovery, health).
	Listen string `yaml:"listen" env:"LISTEN"`
	// AdminListen is the admin API listener; keep it on loopback or a private network.
	AdminListen string `yaml:"admin_listen" env:"ADMIN_LISTEN"`
	// TLSCert is the public listener's certificate chain, a PEM file; with it and TLSKey the
	// public listener serves HTTPS (and HTTP/2), and picks up new files when they change on disk.
	TLSCert string `yaml:"tls_cert" env:"TLS_CERT"`
	// TLSKey is the private key of TLSCert, a PEM file; set together with TLSCert.
	TLSKey string `yaml:"tls_key" env:"TLS_KEY"`
	// AdminTLSCert does for the admin listener what TLSCert does for the public one.
	AdminTLSCert string `yaml:"admin_tls_cert" env:"ADMIN_TLS_CERT"`
	// AdminTLSKey is the private key of AdminTLSCert; set together with AdminTLSCert.
	AdminTLSKey string `yaml:"admin_tls_key" env:"ADMIN_TLS_KEY"`
	// DevTLS serves both listeners over HTTPS with a self-signed certificate for localhost,
	// 127.0.0.1 and ::1, generated into DataDir (dev-cert.pem): for trying TLS-only clients on
	// one machine, never for production. Not with TLSCert or AdminTLSCert.
	DevTLS bool `yaml:"dev_tls" env:"DEV_TLS"`
	// TLSClientAuth is off or request. With request the public TLS listener asks every caller
	// for a client certificate without requiring one (RFC 8705 mutual TLS): clients that
	// authenticate with tls_client_auth or self_signed_tls_client_auth, or whose tokens are
	// bound to their certificate, present one; everyone else carries on without. The server
	// checks the certificate itself, so CA-issued and self-signed ones share the listener.
	// Needs tls_cert (or dev_tls).
	TLSClientAuth string `yaml:"tls_client_auth" env:"TLS_CLIENT_AUTH"`
	// TLSClientCA is a PEM file of the CA certificates a tls_client_auth client's certificate
	// must chain to. It is read again when it changes on disk, like tls_cert. Without it only
	// self_signed_tls_client_auth is offered.
	TLSClientCA string `yaml:"tls_client_ca" env:"TLS_CLIENT_CA"`
	// TLSClientCertHeader is the request header in which a TLS-terminating proxy in front
	// passes the client certificate it received, as URL-encoded PEM (nginx's
	// $ssl_client_escaped_cert). It is believed only from trusted_proxies and ignored from
	// anyone else; it turns mutual TLS on without tls_client_auth.
	TLSClientCertHeader string `yaml:"tls_client_cert_header" env:"TLS_CLIENT_CERT_HEADER"`
	// TrustedProxies are the addresses (IPs or CIDRs; in the environment, comma-separated)
	// whose X-Forwarded-For and X-Forwarded-Proto headers are believed; from anyone else they
	// are ignored.
	TrustedProxies []string `yaml:"trusted_proxies" env:"TRUSTED_PROXIES" envSeparator:","`
	// AdminToken is the bearer token of the admin API; generated into DataDir (admin-token)
	// when empty. One with under 128 bits of estimated entropy is refused (openssl rand -hex 32
	// makes a good one).
	AdminToken string `yaml:"admin_token" env:"ADMIN_TOKEN"`
	// Storage selects the backend by URL: memory:, file:PATH, redis://, rediss://,
	// redis+sentinel:// or redis+cluster://. Empty means file:tokensmith.db in DataDir.
	Storage string `yaml:"storage" env:"STORAGE"`
	// DataDir holds the embedded store, the generated admin token and the dev certificate.
	DataDir string `yaml:"data_dir" env:"DATA_DIR"`
	// Audience is the aud of tokens for clients that configure none; empty means the issuer.
	// In the environment, comma-separated.
	Audience []string `yaml:"audience" env:"AUDIENCE" envSeparator:","`
	// ReplicaTimeout is how long a replica counts as live after its last heartbeat (at least 3s).
	ReplicaTimeout duration.Duration `yaml:"replica_timeout" env:"REPLICA_TIMEOUT"`
	// StoreTimeout bounds each store call of a token request; past it the answer is 503. A
	// hot path makes at most two calls, so the default keeps a 503 within a second (50ms to 30s).
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
	// a seed API's wire format (package profiles). In YAML a list of names, or a map of name to
	// {paths: {route: /path}}; TOKENSMITH_PROFILES (comma-separated names) chooses which are on,
	// and the paths given in YAML stay.
	Profiles Profiles `yaml:"profiles" env:"-"`

	// Audit is where the audit trail goes.
	Audit Audit `yaml:"audit" envPrefix:""`

	// IssuerDerived is set by Load when Issuer was not configured but derived from Listen.
	IssuerDerived bool `yaml:"-"`
}

// Keys is the signing-key lifecycle.
type Keys struct {
	// Algorithms are the algorithms access tokens can be signed with, each with its own key
	// in the JWKS: RS256, PS256, ES256 (P-256) and EdDSA (Ed25519); in the environment,
	// comma-separated. The first is the default of clients created without
	// access_token_signing_alg. An algorithm added later publishes its first key
	// PublishAhead before it signs.
	Algorithms []string `yaml:"algorithms" env:"ALGORITHMS" envSeparator:","`
	// PublishAhead is how long a new key is in the JWKS before it signs, so resource servers
	// holding a cached JWKS (the JWKS says max-age 5 min) have it by then (at most 24h).
	PublishAhead duration.Duration `yaml:"publish_ahead" env:"PUBLISH_AHEAD"`
	// RotateEvery rotates each algorithm's signing key on a schedule; 0 turns it off. At least
	// 1h and longer than PublishAhead.
	RotateEvery duration.Duration `yaml:"rotate_every" env:"ROTATE_EVERY"`
}

// Console configures the integration console served under /console/.
type Console struct {
	// Enabled serves the console; off, /console/ answers 404.
	Enabled bool `yaml:"enabled" env:"ENABLED"`
	// IdleTimeout ends a session nobody has used for this long (1m to 24h).
	IdleTimeout duration.Duration `yaml:"idle_timeout" env:"IDLE_TIMEOUT"`
	// AbsoluteTimeout ends every session this long after sign-in, used or not (at least
	// IdleTimeout, at most 30d).
	AbsoluteTimeout duration.Duration `yaml:"absolute_timeout" env:"ABSOLUTE_TIMEOUT"`
	// RotateGrace is how long a client's previous secret keeps working after the owner
	// regenerates it in the console; 0 ends it at once.
	RotateGrace duration.Duration `yaml:"rotate_grace" env:"ROTATE_GRACE"`
}

// Audit configures the audit trail: one event per token issued, reused, refreshed, exchanged,
// refused, replayed or revoked, and per admin change.
type Audit struct {
	// Sink is log (the server's log, the default), off, file:PATH (JSON lines, mode 0600),
	// redis (a stream in the store's Redis, which every replica appends to) or a redis://,
	// rediss://, redis+sentinel:// or redis+cluster:// URL of another Redis.
	Sink string `yaml:"sink" env:"AUDIT"`
	// Stream is the Redis stream's key.
	Stream string `yaml:"stream" env:"AUDIT_STREAM"`
	// MaxLen is about how many events the Redis stream keeps (XADD MAXLEN ~); at least 1000.
	MaxLen int64 `yaml:"max_len" env:"AUDIT_MAX_LEN"`
	// Buffer is how many events may wait for the sink; past it events are dropped and
	// counted, so a slow sink never slows a token request.
	Buffer int `yaml:"buffer" env:"AUDIT_BUFFER"`
}

// Tokens holds the server-wide token policy defaults.
type Tokens struct {
	// ClientCredentialsTTL is the lifetime of access tokens from the client_credentials grant.
	ClientCredentialsTTL duration.Duration `yaml:"client_credentials_ttl" env:"CLIENT_CREDENTIALS_TTL"`
	// PasswordTTL is the lifetime of access tokens from the password and refresh_token grants.
	PasswordTTL duration.Duration `yaml:"password_ttl" env:"PASSWORD_TTL"`
	// RefreshTTL is the lifetime of refresh tokens.
	RefreshTTL duration.Duration `yaml:"refresh_ttl" env:"REFRESH_TTL"`
	// ExchangeTTL is the lifetime of access tokens from token exchange (RFC 8693).
	ExchangeTTL duration.Duration `yaml:"exchange_ttl" env:"EXCHANGE_TTL"`
	// RefreshGrace is how long a rotated refresh token is answered idempotently; 0 turns it off.
	RefreshGrace duration.Duration `yaml:"refresh_grace" env:"REFRESH_GRACE"`
	// ReuseMinRemaining is the least lifetime an earlier token must have left to be handed out
	// again to a client with reuse on; one closer to expiry is replaced by a new token.
	ReuseMinRemaining duration.Duration `yaml:"reuse_min_remaining" env:"REUSE_MIN_REMAINING"`
	// DailyLimitTimezone is the IANA zone whose calendar day daily limits count, and whose
	// clock hour hourly limits count.
	DailyLimitTimezone string `yaml:"daily_limit_timezone" env:"DAILY_LIMIT_TIMEZONE"`
	// FailedLoginLimit is how many wrong passwords one address may send for one username
	// before its password-grant attempts and console sign-ins are slowed with exponential
	// backoff; ten times as many for one username from all addresses slow down every address
	// that failed for it.
	FailedLoginLimit int `yaml:"failed_login_limit" env:"FAILED_LOGIN_LIMIT"`
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

// Values of TLSClientAuth.
const (
	ClientAuthOff     = "off"
	ClientAuthRequest = "request"
)

// MTLS reports whether client certificates reach the server: asked for on the public TLS
// listener, or passed on by a trusted proxy.
func (c Config) MTLS() bool {
	return c.TLSClientAuth == ClientAuthRequest || c.TLSClientCertHeader != ""
}

// PublicTLS reports whether the public listener serves HTTPS.
func (c Config) PublicTLS() bool { return c.DevTLS || c.TLSCert != "" }

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
