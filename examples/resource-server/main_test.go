package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/verify"
)

// environ is an environment for parseSettings.
func environ(vars ...string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for _, kv := range vars {
			if k, v, _ := strings.Cut(kv, "="); k == name {
				return v, true
			}
		}
		return "", false
	}
}

// TestUsageListsEverySetting: -h names every flag with its environment variable and built-in
// default, and never shows what the environment set (the client secret among it).
func TestUsageListsEverySetting(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := parseSettings([]string{"-h"}, environ("API_CLIENT_SECRET=s3cret-from-env", "API_LISTEN=0.0.0.0:1"), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: got %v, want flag.ErrHelp", err)
	}
	usage := out.String()
	for _, row := range []struct{ flag, env, def string }{
		{"-listen", "API_LISTEN", "127.0.0.1:9090"},
		{"-issuer", "TOKENSMITH_ISSUER", "http://localhost:8080"},
		{"-audience", "API_AUDIENCE", "http://localhost:9090"},
		{"-client-id", "API_CLIENT_ID", "(none)"},
		{"-client-secret", "API_CLIENT_SECRET", "(none)"},
		{"-introspection-cache", "API_INTROSPECTION_CACHE", "1s"},
		{"-ca-file", "API_CA_FILE", "(none)"},
	} {
		t.Run(row.flag, func(t *testing.T) {
			line := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(row.flag) + `\s+` + regexp.QuoteMeta(row.env) + `\s+` + regexp.QuoteMeta(row.def) + `\s+\S`)
			if !line.MatchString(usage) {
				t.Errorf("usage has no line %s %s %s:\n%s", row.flag, row.env, row.def, usage)
			}
		})
	}
	for _, leak := range []string{"s3cret-from-env", "0.0.0.0:1"} {
		if strings.Contains(usage, leak) {
			t.Errorf("usage shows %q, which the environment set:\n%s", leak, usage)
		}
	}
}

// TestSettings: a flag beats its environment variable, which beats the built-in default.
func TestSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     []string
		want    settings
		wantErr string
	}{
		{"defaults", nil, nil, settings{listen: "127.0.0.1:9090", issuer: "http://localhost:8080", audience: "http://localhost:9090",
			introspectionCache: time.Second}, ""},
		{"environment", nil, []string{"API_LISTEN=:1", "API_CA_FILE=ca.pem", "API_INTROSPECTION_CACHE=5s", "API_CLIENT_ID=api"},
			settings{listen: ":1", issuer: "http://localhost:8080", audience: "http://localhost:9090", clientID: "api", caFile: "ca.pem",
				introspectionCache: 5 * time.Second}, ""},
		{"flags over the environment", []string{"-listen", ":2", "-ca-file", "other.pem"}, []string{"API_LISTEN=:1", "API_CA_FILE=ca.pem"},
			settings{listen: ":2", issuer: "http://localhost:8080", audience: "http://localhost:9090", caFile: "other.pem",
				introspectionCache: time.Second}, ""},
		{"bad cache duration", nil, []string{"API_INTROSPECTION_CACHE=soon"}, settings{}, "API_INTROSPECTION_CACHE"},
		{"stray argument", []string{"serve"}, nil, settings{}, `unexpected argument "serve"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseSettings(tc.args, environ(tc.env...), &bytes.Buffer{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error: got %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tc.want {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

// TestCAFile: with -ca-file the API reaches a Tokensmith whose certificate that CA signed,
// which the system's roots alone refuse.
func TestCAFile(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, caFile string
		reaches      bool
		wantErr      string
	}{
		{"the CA trusted", caFile, true, ""},
		{"system roots only", "", false, ""},
		{"a file without a certificate", notPEM, false, "holds no PEM certificate"},
		{"a missing file", filepath.Join(dir, "missing.pem"), false, "API_CA_FILE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, err := httpClient(tc.caFile)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error: got %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if client == nil {
				client = &http.Client{} // verify's own: the system's roots
			}
			resp, err := client.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if got := err == nil; got != tc.reaches {
				t.Errorf("reaches the server: got %v (%v), want %v", got, err, tc.reaches)
			}
		})
	}
}

// TestRefusalsCarryError: every refusal the API writes is JSON with error and
// error_description, RFC 6750's code where a token is refused, Tokensmith's words where RFC
// 6750 has none; tokens.make's route keeps its own envelope.
func TestRefusalsCarryError(t *testing.T) {
	t.Parallel()
	// An issuer that does not answer: the keys cannot be fetched.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	ln.Close()
	v, err := verify.New(verify.Config{Issuer: issuer, Audience: []string{"http://localhost:9090"}, Realm: "orders", ErrorBody: refusal})
	if err != nil {
		t.Fatal(err)
	}
	h := routes(v, false)
	b64 := base64.RawURLEncoding.EncodeToString
	wellFormed := b64([]byte(`{"alg":"RS256","typ":"at+jwt","kid":"k1"}`)) + "." + b64([]byte(`{}`)) + "." + b64([]byte("signature"))

	tests := []struct {
		name, method, path, token string
		status                    int
		code                      string
		allow                     string
	}{
		{"no token", "GET", "/orders", "", 401, "unauthorized", ""},
		{"a token that is no JWT", "GET", "/orders", "not-a-jwt", 401, "invalid_token", ""},
		{"Tokensmith unreachable", "GET", "/orders", wellFormed, 503, "temporarily_unavailable", ""},
		{"no such path", "GET", "/nowhere", "", 404, "not_found", ""},
		{"a method the path does not take", "DELETE", "/orders", "", 405, "method_not_allowed", "GET, HEAD, POST"},
		{"an introspecting route without a client", "GET", "/me", "", 404, "not_found", ""},
		{"no token where binding is required", "GET", "/bound/orders", "", 401, "unauthorized", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Errorf("status: got %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", got)
			}
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow: got %q, want %q", got, tc.allow)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if body["error"] != tc.code || body["error_description"] == "" || len(body) != 2 {
				t.Errorf("body: got %q, want error %q and an error_description", w.Body, tc.code)
			}
		})
	}

	t.Run("tokens.make's envelope", func(t *testing.T) {
		t.Parallel()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/tokens-make/orders", nil))
		if got, want := strings.TrimSpace(w.Body.String()), `{"success":false,"error":{"code":"ApiInvalidTokenError","message":"Invalid Token"}}`; w.Code != 401 || got != want {
			t.Errorf("got %d %s, want 401 %s", w.Code, got, want)
		}
	})
}
