package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/config"
)

func writeYAML(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokensmith.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "http://localhost:8080" || c.Listen != ":8080" || c.AdminListen != "127.0.0.1:8081" ||
		c.Storage != "file:data/tokensmith.db" || c.DataDir != "./data" {
		t.Fatalf("defaults = %+v", c)
	}
	tk := c.Tokens
	if tk.ClientCredentialsTTL.D() != 3*time.Hour || tk.PasswordTTL.D() != 24*time.Hour ||
		tk.RefreshTTL.D() != 14*24*time.Hour || tk.RefreshGrace.D() != 5*time.Second || tk.ReuseMinRemaining.D() != 5*time.Minute {
		t.Fatalf("token defaults = %+v", tk)
	}
}

func TestFileThenEnvironment(t *testing.T) {
	p := writeYAML(t, `
issuer: https://auth.example.com/
storage: "memory:"
audience: [https://api.example.com]
tokens:
  client_credentials_ttl: 1h
  refresh_ttl: 30d
  refresh_grace: 0s
`)
	c, err := config.Load(p, []string{"TOKENSMITH_ISSUER=https://id.example.com", "TOKENSMITH_REFRESH_GRACE=2s",
		"TOKENSMITH_DATA_DIR=/var/lib/ts", "UNRELATED=1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://id.example.com" {
		t.Errorf("issuer = %q: the environment must win over the file", c.Issuer)
	}
	if c.Storage != "memory:" || c.Tokens.ClientCredentialsTTL.D() != time.Hour || c.Tokens.RefreshTTL.D() != 30*24*time.Hour {
		t.Errorf("file values lost: %+v", c)
	}
	if c.Tokens.RefreshGrace.D() != 2*time.Second || c.DataDir != "/var/lib/ts" {
		t.Errorf("environment values lost: %+v", c)
	}
	if len(c.Audience) != 1 || c.Audience[0] != "https://api.example.com" {
		t.Errorf("audience = %v", c.Audience)
	}
	// The default store follows the data directory.
	c, err = config.Load("", []string{"TOKENSMITH_DATA_DIR=/srv/ts"})
	if err != nil || c.Storage != "file:/srv/ts/tokensmith.db" {
		t.Errorf("storage = %q (%v)", c.Storage, err)
	}
}

func TestAuditSinks(t *testing.T) {
	tests := []struct {
		env          []string
		kind, target string
	}{
		{nil, config.AuditLog, ""},
		{[]string{"TOKENSMITH_AUDIT=off"}, config.AuditOff, ""},
		{[]string{"TOKENSMITH_AUDIT=file:/var/log/ts/audit.jsonl"}, config.AuditFile, "/var/log/ts/audit.jsonl"},
		{[]string{"TOKENSMITH_AUDIT=redis", "TOKENSMITH_STORAGE=redis://127.0.0.1:6379"}, config.AuditRedis, "redis://127.0.0.1:6379"},
		{[]string{"TOKENSMITH_AUDIT=redis://audit.example:6379/2", "TOKENSMITH_STORAGE=memory:"}, config.AuditRedis, "redis://audit.example:6379/2"},
	}
	for _, tc := range tests {
		c, err := config.Load("", tc.env)
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		kind, target, err := c.ParseAuditSink()
		if err != nil || kind != tc.kind || target != tc.target {
			t.Errorf("%v: %q %q %v, want %q %q", tc.env, kind, target, err, tc.kind, tc.target)
		}
	}
}

func TestValidationNamesEveryBadField(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		yaml  string
		field string
	}{
		{"issuer not a URL", []string{"TOKENSMITH_ISSUER=localhost"}, "", "issuer:"},
		{"issuer with query", []string{"TOKENSMITH_ISSUER=https://a.example?x=1"}, "", "issuer:"},
		{"listen", []string{"TOKENSMITH_LISTEN=8080"}, "", "listen:"},
		{"admin listen equals listen", []string{"TOKENSMITH_ADMIN_LISTEN=:8080"}, "", "admin_listen:"},
		{"storage", []string{"TOKENSMITH_STORAGE=postgres://x"}, "", "storage:"},
		{"empty file path", []string{"TOKENSMITH_STORAGE=file:"}, "", "storage:"},
		{"short admin token", []string{"TOKENSMITH_ADMIN_TOKEN=short"}, "", "admin_token:"},
		{"long but guessable admin token", []string{"TOKENSMITH_ADMIN_TOKEN=aaaaaaaaaaaaaaaa"}, "", "admin_token:"},
		{"admin token of runs", []string{"TOKENSMITH_ADMIN_TOKEN=0123456789abcdef0123456789abcdef"}, "", "admin_token:"},
		{"cert without key", []string{"TOKENSMITH_TLS_CERT=/etc/ts/cert.pem"}, "", "tls_cert:"},
		{"admin key without cert", []string{"TOKENSMITH_ADMIN_TLS_KEY=/etc/ts/key.pem"}, "", "admin_tls_cert:"},
		{"dev TLS beside a real certificate", []string{"TOKENSMITH_DEV_TLS=true", "TOKENSMITH_TLS_CERT=c.pem", "TOKENSMITH_TLS_KEY=k.pem"}, "", "dev_tls:"},
		{"trusted proxy not an address", []string{"TOKENSMITH_TRUSTED_PROXIES=10.0.0.0/8,proxy.local"}, "", "trusted_proxies:"},
		{"log level", []string{"TOKENSMITH_LOG_LEVEL=loud"}, "", "log_level:"},
		{"ttl too short", nil, "tokens:\n  password_ttl: 500ms\n", "tokens.password_ttl:"},
		{"negative grace", nil, "tokens:\n  refresh_grace: -1s\n", "tokens.refresh_grace:"},
		{"bad duration in env", []string{"TOKENSMITH_REFRESH_TTL=soon"}, "", "TOKENSMITH_REFRESH_TTL:"},
		{"unknown YAML field", nil, "isuer: https://typo.example\n", "isuer"},
		{"console idle timeout under a minute", []string{"TOKENSMITH_CONSOLE_IDLE_TIMEOUT=30s"}, "", "console.idle_timeout:"},
		{"console absolute timeout under the idle one", nil, "console:\n  idle_timeout: 2h\n  absolute_timeout: 1h\n", "console.absolute_timeout:"},
		{"console negative rotate grace", []string{"TOKENSMITH_CONSOLE_ROTATE_GRACE=-1s"}, "", "console.rotate_grace:"},
		{"unknown audit sink", []string{"TOKENSMITH_AUDIT=syslog"}, "", "audit.sink:"},
		{"audit file without a path", []string{"TOKENSMITH_AUDIT=file:"}, "", "audit.sink:"},
		{"audit in the store's Redis without one", []string{"TOKENSMITH_AUDIT=redis", "TOKENSMITH_STORAGE=memory:"}, "", "audit.sink:"},
		{"audit buffer", []string{"TOKENSMITH_AUDIT_BUFFER=0"}, "", "audit.buffer:"},
		{"audit stream length", nil, "audit:\n  max_len: 10\n", "audit.max_len:"},
		{"symmetric signing algorithm", []string{"TOKENSMITH_KEYS_ALGORITHMS=RS256,HS256"}, "", "keys.algorithms: HS256 is symmetric"},
		{"unsigned tokens", nil, "keys:\n  algorithms: [none]\n", "keys.algorithms: \"none\" means an unsigned token"},
		{"unknown algorithm", []string{"TOKENSMITH_KEYS_ALGORITHMS=ES384"}, "", "keys.algorithms: \"ES384\" is not one of"},
		{"no algorithm", nil, "keys:\n  algorithms: []\n", "keys.algorithms: must name"},
		{"an algorithm twice", []string{"TOKENSMITH_KEYS_ALGORITHMS=ES256,RS256,ES256"}, "", "keys.algorithms: ES256 is named twice"},
		{"client certificates without TLS", []string{"TOKENSMITH_TLS_CLIENT_AUTH=request"}, "", "tls_client_auth: request needs the public listener to serve TLS"},
		{"client certificates required", []string{"TOKENSMITH_DEV_TLS=true", "TOKENSMITH_TLS_CLIENT_AUTH=require"}, "", "tls_client_auth: \"require\" must be off or request"},
		{"client CA missing", []string{"TOKENSMITH_DEV_TLS=true", "TOKENSMITH_TLS_CLIENT_AUTH=request", "TOKENSMITH_TLS_CLIENT_CA=/nonexistent/ca.pem"}, "", "tls_client_ca: open /nonexistent/ca.pem"},
		{"client CA without mutual TLS", []string{"TOKENSMITH_TLS_CLIENT_CA=/etc/ts/ca.pem"}, "", "tls_client_ca: is used only with"},
		{"client certificate header without proxies", []string{"TOKENSMITH_TLS_CLIENT_CERT_HEADER=X-SSL-Client-Cert"}, "", "tls_client_cert_header: is believed only from trusted_proxies"},
		{"client certificate header not a name", []string{"TOKENSMITH_TLS_CLIENT_CERT_HEADER=X SSL", "TOKENSMITH_TRUSTED_PROXIES=10.0.0.1"}, "", "tls_client_cert_header: \"X SSL\" is not a header name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeYAML(t, tc.yaml)
			}
			_, err := config.Load(path, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want one naming %q", err, tc.field)
			}
		})
	}
	// A bad listen is reported once, as itself, not also as the issuer derived from it.
	if _, err := config.Load("", []string{"TOKENSMITH_LISTEN=8080"}); err == nil || strings.Contains(err.Error(), "issuer") {
		t.Fatalf("error %v, want only listen named", err)
	}
	// All problems are reported at once.
	_, err := config.Load("", []string{"TOKENSMITH_ISSUER=x", "TOKENSMITH_LOG_LEVEL=loud"})
	if err == nil || !strings.Contains(err.Error(), "issuer:") || !strings.Contains(err.Error(), "log_level:") {
		t.Fatalf("error %v, want both fields", err)
	}
}

// TestClientCAFile: a client CA file is read at start; one without a certificate is refused,
// naming the field once, and a good one passes.
func TestClientCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"TOKENSMITH_DEV_TLS=true", "TOKENSMITH_TLS_CLIENT_AUTH=request", "TOKENSMITH_TLS_CLIENT_CA=" + notPEM}
	_, err := config.Load("", env)
	if err == nil || strings.Count(err.Error(), "tls_client_ca:") != 1 || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("error %v, want one tls_client_ca problem: no certificate", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	env[2] = "TOKENSMITH_TLS_CLIENT_CA=" + good
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.MTLS() {
		t.Fatal("MTLS() = false with tls_client_auth request")
	}
}

func TestAdminTokenEntropy(t *testing.T) {
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{"aaaaaaaaaaaaaaaa", false},
		{"correct-horse-battery", false},
		{"9f86d081884c7d659a2feaa0c55ad015", true},                                 // openssl rand -hex 16
		{"tsa_G46VBj0GJO1fdig04mdpa4UXT6qZ3C__NF7hcaZxOQI", true},                  // what serve generates
		{"3b1f0c5e8e6d4f9a2c7b0d1e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a", true}, // openssl rand -hex 32
	} {
		if err := config.CheckAdminToken(tc.token); (err == nil) != tc.ok {
			t.Errorf("CheckAdminToken(%q) = %v, want ok=%v", tc.token, err, tc.ok)
		} else if err != nil && strings.Contains(err.Error(), tc.token) {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
}

func TestIssuerDerivedFromListen(t *testing.T) {
	for _, tc := range []struct {
		env     []string
		issuer  string
		derived bool
	}{
		{nil, "http://localhost:8080", true},
		{[]string{"TOKENSMITH_LISTEN=:9090"}, "http://localhost:9090", true},
		{[]string{"TOKENSMITH_LISTEN=127.0.0.1:9090"}, "http://127.0.0.1:9090", true},
		{[]string{"TOKENSMITH_LISTEN=0.0.0.0:9090"}, "http://localhost:9090", true},
		{[]string{"TOKENSMITH_LISTEN=[::1]:9090"}, "http://[::1]:9090", true},
		{[]string{"TOKENSMITH_LISTEN=[::]:9090"}, "http://localhost:9090", true},
		{[]string{"TOKENSMITH_LISTEN=auth.internal:9090"}, "http://auth.internal:9090", true},
		{[]string{"TOKENSMITH_DEV_TLS=true"}, "https://localhost:8080", true},
		{[]string{"TOKENSMITH_TLS_CERT=c.pem", "TOKENSMITH_TLS_KEY=k.pem", "TOKENSMITH_LISTEN=:8443"}, "https://localhost:8443", true},
		{[]string{"TOKENSMITH_ISSUER=https://auth.example.com/", "TOKENSMITH_LISTEN=:9090"}, "https://auth.example.com", false},
	} {
		c, err := config.Load("", tc.env)
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if c.Issuer != tc.issuer || c.IssuerDerived != tc.derived {
			t.Errorf("%v: issuer %q derived %v, want %q %v", tc.env, c.Issuer, c.IssuerDerived, tc.issuer, tc.derived)
		}
	}
}

func TestIssuerWarning(t *testing.T) {
	for _, tc := range []struct {
		name, issuer string
		tls          bool
		port         string
		warn         string
	}{
		{"derived", "http://localhost:9090", false, "9090", ""},
		{"explicit port elsewhere", "http://localhost:8080", false, "9090", "port 8080"},
		{"behind a proxy", "https://auth.example.com", false, "8080", ""},
		{"behind a proxy with a path", "https://example.com/auth", false, "8080", ""},
		{"proxy port named", "https://auth.example.com:8443", false, "8080", "port 8443"},
		{"https issuer, plain listener on its port", "https://localhost:8443", false, "8443", "serves http"},
		{"http issuer, TLS listener", "http://localhost:8443", true, "8443", "serves https"},
		{"default port, wrong scheme", "http://auth.example.com", true, "80", "serves https"},
		{"TLS on both", "https://localhost:8443", true, "8443", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.Issuer = tc.issuer
			if tc.tls {
				c.TLSCert, c.TLSKey = "c.pem", "k.pem"
			}
			got := c.IssuerWarning(tc.port)
			if (got == "") != (tc.warn == "") || !strings.Contains(got, tc.warn) {
				t.Fatalf("got %q, want one containing %q", got, tc.warn)
			}
		})
	}
}

func TestTrustedProxiesFromEnvironment(t *testing.T) {
	c, err := config.Load("", []string{"TOKENSMITH_TRUSTED_PROXIES=10.0.0.0/8,192.0.2.7,::1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 3 || c.TrustedProxies[1] != "192.0.2.7" {
		t.Fatalf("trusted proxies = %v", c.TrustedProxies)
	}
}

func TestKeyAlgorithms(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		yaml string
		want []string
	}{
		{"default", nil, "", []string{"RS256"}},
		{"environment, spaces allowed", []string{"TOKENSMITH_KEYS_ALGORITHMS=EdDSA, RS256 ,PS256"}, "", []string{"EdDSA", "RS256", "PS256"}},
		{"YAML", nil, "keys:\n  algorithms: [ES256, RS256]\n", []string{"ES256", "RS256"}},
		{"environment over YAML", []string{"TOKENSMITH_KEYS_ALGORITHMS=PS256"}, "keys:\n  algorithms: [ES256]\n", []string{"PS256"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeYAML(t, tc.yaml)
			}
			c, err := config.Load(path, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Keys.Algorithms, tc.want) {
				t.Fatalf("keys.algorithms = %q, want %q", c.Keys.Algorithms, tc.want)
			}
		})
	}
}

func TestConsole(t *testing.T) {
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if con := c.Console; !con.Enabled || con.IdleTimeout.D() != 30*time.Minute || con.AbsoluteTimeout.D() != 12*time.Hour || con.RotateGrace != 0 {
		t.Fatalf("console defaults = %+v, want on, 30m idle, 12h absolute, no rotate grace", con)
	}
	p := writeYAML(t, "console:\n  enabled: false\n  rotate_grace: 1h\n")
	if c, err = config.Load(p, nil); err != nil || c.Console.Enabled || c.Console.RotateGrace.D() != time.Hour {
		t.Fatalf("from YAML: %+v %v", c.Console, err)
	}
	c, err = config.Load(p, []string{"TOKENSMITH_CONSOLE_ENABLED=true", "TOKENSMITH_CONSOLE_IDLE_TIMEOUT=10m",
		"TOKENSMITH_CONSOLE_ABSOLUTE_TIMEOUT=1d"})
	if err != nil || !c.Console.Enabled || c.Console.IdleTimeout.D() != 10*time.Minute || c.Console.AbsoluteTimeout.D() != 24*time.Hour {
		t.Fatalf("from the environment: %+v %v", c.Console, err)
	}
}
