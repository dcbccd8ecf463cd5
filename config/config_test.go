package config_test

import (
	"os"
	"path/filepath"
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
		{"log level", []string{"TOKENSMITH_LOG_LEVEL=loud"}, "", "log_level:"},
		{"ttl too short", nil, "tokens:\n  password_ttl: 500ms\n", "tokens.password_ttl:"},
		{"negative grace", nil, "tokens:\n  refresh_grace: -1s\n", "tokens.refresh_grace:"},
		{"bad duration in env", []string{"TOKENSMITH_REFRESH_TTL=soon"}, "", "TOKENSMITH_REFRESH_TTL:"},
		{"unknown YAML field", nil, "isuer: https://typo.example\n", "isuer"},
		{"unknown audit sink", []string{"TOKENSMITH_AUDIT=syslog"}, "", "audit.sink:"},
		{"audit file without a path", []string{"TOKENSMITH_AUDIT=file:"}, "", "audit.sink:"},
		{"audit in the store's Redis without one", []string{"TOKENSMITH_AUDIT=redis", "TOKENSMITH_STORAGE=memory:"}, "", "audit.sink:"},
		{"audit buffer", []string{"TOKENSMITH_AUDIT_BUFFER=0"}, "", "audit.buffer:"},
		{"audit stream length", nil, "audit:\n  max_len: 10\n", "audit.max_len:"},
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
	// All problems are reported at once.
	_, err := config.Load("", []string{"TOKENSMITH_ISSUER=x", "TOKENSMITH_LOG_LEVEL=loud"})
	if err == nil || !strings.Contains(err.Error(), "issuer:") || !strings.Contains(err.Error(), "log_level:") {
		t.Fatalf("error %v, want both fields", err)
	}
}

func TestDurationFormat(t *testing.T) {
	for in, want := range map[string]string{"3h": "3h", "24h": "24h", "336h": "14d", "14d": "14d", "90s": "1m30s", "5m": "5m", "0s": "0s", "1h30m": "1h30m"} {
		d, err := config.ParseDuration(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := config.FormatDuration(d); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

func TestDurationRefusesOverflowAndNonsense(t *testing.T) {
	for _, in := range []string{"213504d", "106752d", "36501d", "9223372036854775807d", "-1d", "1.5d", "d", "2562048h", "876001h", "soon"} {
		if d, err := config.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %s, want an error", in, d)
		}
	}
	if d, err := config.ParseDuration("36500d"); err != nil || d != config.MaxDuration {
		t.Errorf("36500d: %s %v, want the maximum", d, err)
	}
}
