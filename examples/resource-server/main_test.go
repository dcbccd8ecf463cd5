package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/tlscert"
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
		{"-tls-cert", "API_TLS_CERT", "(none)"},
		{"-tls-key", "API_TLS_KEY", "(none)"},
		{"-tls-client-ca", "API_TLS_CLIENT_CA", "(none)"},
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
		{"HTTPS from the environment", nil, []string{"API_TLS_CERT=api.pem", "API_TLS_KEY=api.key", "API_TLS_CLIENT_CA=clients.pem"},
			settings{listen: "127.0.0.1:9090", issuer: "http://localhost:8080", audience: "http://localhost:9090", introspectionCache: time.Second,
				tlsCert: "api.pem", tlsKey: "api.key", tlsClientCA: "clients.pem"}, ""},
		{"HTTPS flags over the environment", []string{"-tls-cert", "other.pem", "-tls-key", "other.key"}, []string{"API_TLS_CERT=api.pem", "API_TLS_KEY=api.key"},
			settings{listen: "127.0.0.1:9090", issuer: "http://localhost:8080", audience: "http://localhost:9090", introspectionCache: time.Second,
				tlsCert: "other.pem", tlsKey: "other.key"}, ""},
		{"a certificate without its key", []string{"-tls-cert", "api.pem"}, nil, settings{}, "-tls-cert (API_TLS_CERT) and -tls-key (API_TLS_KEY) go together"},
		{"a key without its certificate", nil, []string{"API_TLS_KEY=api.key"}, settings{}, "-tls-cert (API_TLS_CERT) and -tls-key (API_TLS_KEY) go together"},
		{"client CAs over plain HTTP", []string{"-tls-client-ca", "clients.pem"}, nil, settings{}, "-tls-client-ca (API_TLS_CLIENT_CA) needs HTTPS"},
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

// clientCA makes a CA for client certificates, writes it to dir/name and returns a
// certificate for client authentication that it signs.
func clientCA(t *testing.T, dir, name string) (file string, client tls.Certificate) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, key := newKey(), newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	file = filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "shop"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return file, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestServerTLS: -tls-cert and -tls-key serve HTTPS with Tokensmith's own protocol floor and
// suites; -tls-client-ca asks for a client certificate without requiring one, refuses one
// from another CA, and hands the one it accepts to verify/ (r.TLS.PeerCertificates). A file
// that cannot be used is named, with its setting, at start.
func TestServerTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, _, err := tlscert.EnsureDev(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile, fromCA := clientCA(t, dir, "clients.pem")
	_, fromElsewhere := clientCA(t, dir, "elsewhere.pem")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	t.Run("plain HTTP", func(t *testing.T) {
		t.Parallel()
		if cfg, err := serverTLS(&settings{}, slog.Default()); cfg != nil || err != nil {
			t.Errorf("got %v, %v: want no TLS", cfg, err)
		}
	})
	for _, tc := range []struct {
		name                string
		cert, key, clientCA string
		wantErr             []string
		clientAuth          tls.ClientAuthType
	}{
		{"HTTPS", certFile, keyFile, "", nil, tls.NoClientCert},
		{"HTTPS with client certificates", certFile, keyFile, caFile, nil, tls.VerifyClientCertIfGiven},
		{"a missing certificate", missing, keyFile, "", []string{"API_TLS_CERT", missing}, 0},
		{"a key file without a key", certFile, notPEM, "", []string{"API_TLS_KEY", notPEM}, 0},
		{"a missing client CA file", certFile, keyFile, missing, []string{"API_TLS_CLIENT_CA", missing}, 0},
		{"a client CA file without a certificate", certFile, keyFile, notPEM, []string{"API_TLS_CLIENT_CA", notPEM, "holds no PEM certificate"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := serverTLS(&settings{tlsCert: tc.cert, tlsKey: tc.key, tlsClientCA: tc.clientCA}, slog.Default())
			if tc.wantErr != nil {
				for _, want := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("error: got %v, want one naming %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MinVersion != tls.VersionTLS12 || !slices.Equal(cfg.CipherSuites, tlscert.CipherSuites) || cfg.ClientAuth != tc.clientAuth {
				t.Errorf("got min version %x, suites %x, client auth %v: want TLS 1.2, Tokensmith's suites, %v",
					cfg.MinVersion, cfg.CipherSuites, cfg.ClientAuth, tc.clientAuth)
			}
		})
	}

	t.Run("client certificates requested", func(t *testing.T) {
		t.Parallel()
		cfg, err := serverTLS(&settings{tlsCert: certFile, tlsKey: keyFile, tlsClientCA: caFile}, slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		// Served as run serves it (httptest's TLS server would put its own certificate first).
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{TLSConfig: cfg, ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var names []string
			for _, c := range r.TLS.PeerCertificates {
				names = append(names, c.Subject.CommonName)
			}
			_, _ = w.Write([]byte(strings.Join(names, ",")))
		})}
		go func() { _ = srv.ServeTLS(ln, "", "") }()
		t.Cleanup(func() { _ = srv.Close() })
		url := "https://" + ln.Addr().String()
		pemBytes, err := os.ReadFile(certFile)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemBytes) {
			t.Fatal("no certificate in", certFile)
		}
		for _, tc := range []struct {
			name string
			cert *tls.Certificate
			// seen is the certificate the handler saw; refused: the handshake failed.
			seen    string
			refused bool
		}{
			{"none", nil, "", false},
			{"one from the client CA", &fromCA, "shop", false},
			{"one from another CA", &fromElsewhere, "", true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				conf := &tls.Config{RootCAs: roots}
				if tc.cert != nil {
					// Presented whatever CAs the server names: from Certificates, Go would send
					// nothing rather than a certificate of a CA the server did not ask for.
					conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.cert, nil }
				}
				tr := &http.Transport{TLSClientConfig: conf}
				defer tr.CloseIdleConnections()
				resp, err := (&http.Client{Transport: tr}).Get(url)
				if tc.refused {
					if err == nil {
						resp.Body.Close()
						t.Fatalf("a certificate from another CA was accepted")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if string(body) != tc.seen {
					t.Errorf("the handler saw %q, want %q", body, tc.seen)
				}
			})
		}
	})
}
