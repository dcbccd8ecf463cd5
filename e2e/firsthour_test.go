package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/internal/testlog"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestStartFailsAtOnce: whatever keeps the server from serving stops it within 2 s, with a
// non-zero status and one line on standard error that names the cause.
func TestStartFailsAtOnce(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	garbage := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inUse := t.TempDir()
	start(t, inUse, "TOKENSMITH_LOG_LEVEL=warn")

	for _, tc := range []struct {
		name   string
		dir    string
		env    []string
		status int
		want   []string
	}{
		{"public port taken", "", []string{"TOKENSMITH_LISTEN=" + busy}, 1,
			[]string{"cannot listen on " + busy, "TOKENSMITH_LISTEN", "address already in use"}},
		{"admin port taken", "", []string{"TOKENSMITH_ADMIN_LISTEN=" + busy}, 1,
			[]string{"cannot listen on " + busy, "TOKENSMITH_ADMIN_LISTEN", "address already in use"}},
		{"bad certificate", "", []string{"TOKENSMITH_TLS_CERT=" + garbage, "TOKENSMITH_TLS_KEY=" + garbage}, 1,
			[]string{"tls_cert", "TOKENSMITH_TLS_CERT", "PEM"}},
		{"store unreachable", "", []string{"TOKENSMITH_STORAGE=redis://" + freePort(t)}, 1,
			[]string{"TOKENSMITH_STORAGE", "unreachable", "connection refused"}},
		{"file store used by another process", inUse, nil, 1,
			[]string{"TOKENSMITH_STORAGE", "another tokensmith process"}},
		{"guessable admin token", "", []string{"TOKENSMITH_ADMIN_TOKEN=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, 2,
			[]string{"admin_token", "entropy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			if dir == "" {
				dir = t.TempDir()
			}
			cmd := exec.Command(binary, "serve")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "TOKENSMITH_LISTEN="+freePort(t), "TOKENSMITH_ADMIN_LISTEN="+freePort(t))
			cmd.Env = append(cmd.Env, tc.env...)
			var stdout, stderr testlog.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			began := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != tc.status {
					t.Fatalf("exit %v, want status %d\nstderr:\n%s", err, tc.status, stderr.String())
				}
				t.Logf("exited with status %d after %s: %s", ee.ExitCode(), time.Since(began).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
			case <-time.After(2 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("still running 2s after start\nstderr:\n%s", stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d lines on stderr, want one:\n%s", len(lines), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("%q does not name %q", lines[0], w)
				}
			}
			if stdout.String() != "" {
				t.Errorf("a failed start printed %q", stdout.String())
			}
		})
	}

	// A start that failed on a taken port left no half-made state: the next start in the same
	// directory is still the first, with its demo client.
	dir := t.TempDir()
	cmd := exec.Command(binary, "serve")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TOKENSMITH_LISTEN="+busy, "TOKENSMITH_ADMIN_LISTEN="+freePort(t))
	if err := cmd.Run(); err == nil {
		t.Fatal("started on a taken port")
	}
	if p := start(t, dir); !p.stdout.Has("first start") {
		t.Fatalf("the start after a failed one printed no welcome:\n%s", p.stdout.String())
	}
}

// TestHTTPSWithDevCertificate drives the dev-TLS server the way a TLS-only client would: an
// HTTP/2-only transport that refuses plain http, under x/oauth2, trusting the printed file.
func TestHTTPSWithDevCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "data", "dev-cert.pem")
	roots := devCertRoots(certFile)
	p := launch(t, dir, launchOptions{env: []string{"TOKENSMITH_DEV_TLS=true"}, https: true, roots: roots})

	// How to trust it is printed, and the welcome's curl line works as printed.
	abs, _ := filepath.Abs(certFile)
	p.stdout.Has(p.url + "/oauth2/token")
	if !p.stdout.Has("curl --cacert " + abs + " " + p.url) {
		t.Fatalf("no trust instructions for %s:\n%s", abs, p.stdout.String())
	}
	m := curlLine.FindStringSubmatch(p.stdout.String())
	if m == nil || !strings.Contains(m[1], "--cacert "+abs) || !strings.Contains(m[1], p.url+"/oauth2/token") {
		t.Fatalf("curl line: %v\n%s", m, p.stdout.String())
	}
	out, err := exec.Command("sh", "-c", m[1]).Output()
	if err != nil || !strings.Contains(string(out), "access_token") {
		t.Fatalf("%s: %v %s", m[1], err, out)
	}

	// A client that speaks only HTTP/2 over TLS, as strict clients refuse plain HTTP.
	// HTTP/2 alone, also for http:// URLs (prior knowledge), where the server speaks HTTP/1.1.
	var only2 http.Protocols
	only2.SetHTTP2(true)
	only2.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: &only2, TLSClientConfig: &tls.Config{RootCAs: roots()}}}
	if _, err := h2.Get(strings.Replace(p.url, "https://", "http://", 1) + "/healthz"); err == nil {
		t.Fatal("the HTTPS-only client reached a plain http URL")
	}
	var md map[string]any
	resp, err := h2.Get(p.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || md["issuer"] != p.url || md["token_endpoint"] != p.url+"/oauth2/token" {
		t.Fatalf("discovery over %s: %v, want HTTP/2 and issuer %s", resp.Proto, md, p.url)
	}
	cc := clientcredentials.Config{ClientID: m[2], ClientSecret: m[3], TokenURL: md["token_endpoint"].(string)}
	tok, err := cc.Token(context.WithValue(context.Background(), oauth2.HTTPClient, h2))
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok.AccessToken, claims); err != nil || claims["iss"] != p.url {
		t.Fatalf("iss = %v (%v), want %s", claims["iss"], err, p.url)
	}

	// The CLI beside the server finds the admin API from TOKENSMITH_ADMIN_LISTEN, over HTTPS,
	// and trusts the dev certificate in ./data by itself.
	admin := strings.TrimPrefix(p.adminURL, "https://")
	out2, errOut, status := p.run("", []string{"TOKENSMITH_ADMIN_LISTEN=" + admin, "TOKENSMITH_DEV_TLS=true", "TOKENSMITH_ADMIN_URL="}, "client", "list")
	if status != 0 || !strings.Contains(out2, m[2]) {
		t.Fatalf("client list over HTTPS: exit %d\n%s%s", status, out2, errOut)
	}
	// Told plain http, it says the listener speaks HTTPS.
	_, errOut, status = p.run("", []string{"TOKENSMITH_ADMIN_URL=http://" + admin}, "client", "list")
	if status != 1 || !strings.Contains(errOut, "serves HTTPS") || !strings.Contains(errOut, "TOKENSMITH_ADMIN_URL") {
		t.Fatalf("plain http to the TLS admin listener: exit %d %s", status, errOut)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key into dir (by rename,
// as renewal tools do) and returns its serial.
func writeCert(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	for name, block := range map[string]*pem.Block{"cert.pem": {Type: "CERTIFICATE", Bytes: der}, "key.pem": {Type: "PRIVATE KEY", Bytes: pkcs8}} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// TestCertificateReplacedOnDisk: a renewed certificate is served without a restart, on both
// listeners.
func TestCertificateReplacedOnDisk(t *testing.T) {
	certs := t.TempDir()
	first := writeCert(t, certs)
	cert, key := filepath.Join(certs, "cert.pem"), filepath.Join(certs, "key.pem")
	pool := x509.NewCertPool()
	pool.AddCert(first)
	p := launch(t, t.TempDir(), launchOptions{https: true, roots: func() *x509.CertPool { return pool },
		env: []string{"TOKENSMITH_TLS_CERT=" + cert, "TOKENSMITH_TLS_KEY=" + key, "TOKENSMITH_ADMIN_TLS_CERT=" + cert, "TOKENSMITH_ADMIN_TLS_KEY=" + key}})
	served := func(url string) *big.Int {
		t.Helper()
		c, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber
	}
	for _, u := range []string{p.url, p.adminURL} {
		if got := served(u); got.Cmp(first.SerialNumber) != 0 {
			t.Fatalf("%s serves serial %s, want %s", u, got, first.SerialNumber)
		}
	}

	second := writeCert(t, certs)
	replaced := time.Now()
	for _, u := range []string{p.url, p.adminURL} {
		for served(u).Cmp(second.SerialNumber) != 0 {
			if time.Since(replaced) > 10*time.Second {
				t.Fatalf("%s still serves the old certificate 10s after it was replaced\n%s", u, p.stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("new certificate served %s after the files were replaced", time.Since(replaced).Round(time.Millisecond))
	// Clients that trust the new certificate get tokens from the same, never restarted process.
	pool.AddCert(second)
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}).Get(p.url + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz after the renewal: %v", err)
	}
	resp.Body.Close()
	if !p.stderr.Has("TLS certificate reloaded") {
		t.Errorf("no log line for the reload:\n%s", p.stderr.String())
	}
}

// TestIssuerFollowsListen: with only TOKENSMITH_LISTEN set, discovery's issuer is the URL the
// server is reached at, as go-oidc and openid-client require.
func TestIssuerFollowsListen(t *testing.T) {
	p := launch(t, t.TempDir(), launchOptions{})
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		resp, err := http.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		var md map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&md)
		resp.Body.Close()
		// go-oidc: p.Issuer != issuer → "issuer did not match"; openid-client compares likewise.
		if md["issuer"] != p.url {
			t.Fatalf("%s issuer %v, want %s, the URL it was fetched from", path, md["issuer"], p.url)
		}
	}
	p.stdout.Has(p.url + "/oauth2/token")
	m := curlLine.FindStringSubmatch(p.stdout.String())
	if m == nil || !strings.Contains(m[1], p.url+"/oauth2/token") {
		t.Fatalf("the curl line does not use %s:\n%s", p.url, p.stdout.String())
	}
	if !p.stderr.Has("issuer derived from the public listener") {
		t.Errorf("the log does not say the issuer was derived:\n%s", p.stderr.String())
	}

	// An explicit issuer naming another port is warned about.
	q := launch(t, t.TempDir(), launchOptions{env: []string{"TOKENSMITH_ISSUER=http://localhost:1"}})
	if !q.stderr.Has("level=WARN") || !q.stderr.Has("names port 1") {
		t.Fatalf("no warning for an issuer on another port:\n%s", q.stderr.String())
	}
}

// TestFileStoreCountsOneReplica: a restart on the file store within the heartbeat timeout,
// after a clean stop or a crash, counts one replica.
func TestFileStoreCountsOneReplica(t *testing.T) {
	dir := t.TempDir()
	token := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "data", "admin-token"))
		return strings.TrimSpace(string(b))
	}
	replicas := func(p *proc) int {
		req, _ := http.NewRequest("GET", p.adminURL+"/admin/replicas", nil)
		req.Header.Set("Authorization", "Bearer "+token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var live []map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&live); err != nil {
			t.Fatal(err)
		}
		return len(live)
	}
	p := start(t, dir)
	for _, how := range []string{"clean stop", "crash"} {
		if how == "clean stop" {
			p.stop(t)
		} else {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
		p = start(t, dir)
		if n := replicas(p); n != 1 {
			t.Fatalf("after a %s and a restart: %d live replicas, want 1", how, n)
		}
		if !p.stderr.Has("live_replicas=1") {
			t.Fatalf("after a %s and a restart the log does not say live_replicas=1:\n%s", how, p.stderr.String())
		}
	}
}

// TestCLIExitStatuses runs the CLI as an operator would, beside a server, and checks each
// status and message.
func TestCLIExitStatuses(t *testing.T) {
	p := start(t, t.TempDir(), "TOKENSMITH_STORAGE=memory:")
	p.cli(t, "bob-password\n", "user", "create", "--username", "bob", "--password-stdin")
	cid := p.cli(t, "", "client", "create", "--json", "--grant", "password")
	var client struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(cid), &client); err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimPrefix(p.adminURL, "http://")
	viaListen := []string{"TOKENSMITH_ADMIN_URL=", "TOKENSMITH_ADMIN_LISTEN=" + admin}
	closed := freePort(t)

	for _, tc := range []struct {
		name   string
		env    []string
		stdin  string
		args   []string
		status int
		out    string // on standard output
		err    string // on standard error
	}{
		{"unknown subcommand", viaListen, "", []string{"client", "frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"update without fields", viaListen, "", []string{"client", "update", client.ID}, 2, "", "nothing to change"},
		{"admin API from TOKENSMITH_ADMIN_LISTEN", viaListen, "", []string{"client", "list"}, 0, client.ID, ""},
		{"user shown by username", viaListen, "", []string{"user", "show", "BOB"}, 0, "username: bob", ""},
		{"unknown user", viaListen, "", []string{"user", "show", "nobody"}, 1, "", `no user has the id or username "nobody"`},
		{"duplicate username in other case", viaListen, "x-password\n", []string{"user", "create", "--username", "Bob", "--password-stdin"}, 1, "", "compared case-insensitively"},
		{"password changed by username", viaListen, "new-bob-password\n", []string{"user", "set-password", "bob", "--password-stdin"}, 0, "password of user bob", ""},
		{"--json error from the server", viaListen, "", []string{"client", "show", "nope", "--json"}, 1, `"error": "not_found"`, ""},
		{"--json usage error", viaListen, "", []string{"client", "frobnicate", "--json"}, 2, `"error": "invalid_usage"`, ""},
		{"wrong admin token", append([]string{"TOKENSMITH_ADMIN_TOKEN=" + strings.Repeat("x", 40)}, viaListen...), "", []string{"client", "list"}, 1, "",
			"refused the admin token from TOKENSMITH_ADMIN_TOKEN"},
		{"nothing listening", []string{"TOKENSMITH_ADMIN_URL=http://" + closed}, "", []string{"client", "list"}, 1, "",
			"connection refused. Is `tokensmith serve` running? If it listens elsewhere, set the admin API's URL with --admin-url or TOKENSMITH_ADMIN_URL"},
		{"user deleted by username", viaListen, "", []string{"user", "delete", "bob"}, 0, "user bob", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, status := p.run(tc.stdin, tc.env, tc.args...)
			if status != tc.status || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s\nwant stdout with %q, stderr with %q", status, tc.status, out, errOut, tc.out, tc.err)
			}
		})
	}

	// The password changed above is the one that works now.
	cfg := oauth2.Config{ClientID: client.ID, ClientSecret: client.Secret, Endpoint: oauth2.Endpoint{TokenURL: p.url + "/oauth2/token"}}
	p.cli(t, "carol-password\n", "user", "create", "--username", "carol", "--password-stdin")
	p.cli(t, "new-carol-password\n", "user", "set-password", "carol", "--password-stdin")
	if _, err := cfg.PasswordCredentialsToken(context.Background(), "carol", "new-carol-password"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if _, err := cfg.PasswordCredentialsToken(context.Background(), "carol", "carol-password"); err == nil {
		t.Fatal("the old password still works")
	}
}
