package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/testlog"
	"github.com/tokensmith/tokensmith/keys"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// binary is the tokensmith binary under test; resourceServerBinary the example resource
// server (examples/resource-server).
var binary, resourceServerBinary string

// readSources reads every source file of the module. go test caches a package's result keyed
// on the files the test opened; this package only execs "go build", so without this a change
// to the server would not invalidate a cached pass.
func readSources() {
	_ = filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil || (d.IsDir() && (d.Name() == "data" || strings.HasPrefix(d.Name(), "."))) && path != ".." {
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".mod") || strings.HasSuffix(path, ".sum")) {
			_, _ = os.ReadFile(path)
		}
		return nil
	})
}

// TestSourcesAreInputs makes every source file an input of this package's cached result (go
// test records only files opened while tests run).
func TestSourcesAreInputs(t *testing.T) { readSources() }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokensmith-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tokensmith")
	// The binary signs like this test binary was built to: go test -tags openssl tests the
	// OpenSSL signer end to end.
	// As the Dockerfile builds it (TestShippedBuildsLeaveOutMessagePack).
	args := []string{"build", "-o", binary, "-tags", "nomsgpack"}
	if keys.SignerName == "openssl" {
		args[len(args)-1] = "openssl,nomsgpack"
	}
	build := exec.Command("go", append(args, "github.com/tokensmith/tokensmith")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building tokensmith:", err)
		os.Exit(1)
	}
	resourceServerBinary = filepath.Join(dir, "resource-server")
	build = exec.Command("go", "build", "-o", resourceServerBinary, "github.com/tokensmith/tokensmith/examples/resource-server")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the example resource server:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *testlog.Buffer
	url, adminURL  string
	dir            string
	done           chan error
	// client trusts the server's certificate when it serves HTTPS.
	client *http.Client
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs "tokensmith serve" in dir with the issuer set to the URL it listens on, and waits
// until /readyz answers 200.
func start(t *testing.T, dir string, env ...string) *proc {
	t.Helper()
	return launch(t, dir, launchOptions{env: env, issuer: true})
}

// launchOptions vary launch.
type launchOptions struct {
	env []string
	// issuer sets TOKENSMITH_ISSUER to the public URL; else the server derives it.
	issuer bool
	// https: the listeners serve TLS; roots returns the CAs to trust once the server has
	// started (the dev certificate is written by the server itself).
	https bool
	roots func() *x509.CertPool
}

// launch runs "tokensmith serve" in dir on free loopback ports and waits until /readyz
// answers 200.
func launch(t *testing.T, dir string, o launchOptions) *proc {
	t.Helper()
	pub, adm := freePort(t), freePort(t)
	scheme := "http"
	if o.https {
		scheme = "https"
	}
	p := &proc{stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}, url: scheme + "://" + pub, adminURL: scheme + "://" + adm, dir: dir,
		done: make(chan error, 1), client: http.DefaultClient}
	p.cmd = exec.Command(binary, "serve")
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "TOKENSMITH_LISTEN="+pub, "TOKENSMITH_ADMIN_LISTEN="+adm)
	if o.issuer {
		p.cmd.Env = append(p.cmd.Env, "TOKENSMITH_ISSUER="+p.url)
	}
	p.cmd.Env = append(p.cmd.Env, o.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if o.https && p.client == http.DefaultClient {
			if roots := o.roots(); roots != nil {
				p.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
			}
		}
		if resp, err := p.client.Get(p.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("server exited early: %v\nstderr:\n%s", err, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("server not ready in time\nstderr:\n%s", p.stderr.String())
	return nil
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("server exited with %v after SIGTERM\nstderr:\n%s", err, p.stderr.String())
		}
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("server did not stop within 15s of SIGTERM")
	}
}

// cli runs a management command against p's admin API from p's directory, like an operator.
func (p *proc) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	return p.cliEnv(t, stdin, nil, args...)
}

// cliEnv is cli with extra environment variables.
func (p *proc) cliEnv(t *testing.T, stdin string, env []string, args ...string) string {
	t.Helper()
	out, errOut, status := p.run(stdin, append([]string{"TOKENSMITH_ADMIN_URL=" + p.adminURL}, env...), args...)
	if status != 0 {
		t.Fatalf("tokensmith %s: exit %d\n%s%s", strings.Join(args, " "), status, out, errOut)
	}
	return out
}

// run runs the CLI from p's directory with env added, and returns what it printed and its
// exit status.
func (p *proc) run(stdin string, env []string, args ...string) (stdout, stderr string, status int) {
	cmd := exec.Command(binary, args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		status = ee.ExitCode()
	case err != nil:
		status = -1
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), status
}

func kid(t *testing.T, p *proc) string {
	t.Helper()
	resp, err := http.Get(p.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %v %+v", err, set)
	}
	return set.Keys[0].Kid
}

var curlLine = regexp.MustCompile(`(?m)^\s*(curl -s (?:--cacert \S+ )?-u '([^:']+):([^']+)' .*)$`)

func TestFirstStartCLIAndRestart(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)

	// What a newcomer sees: a demo client and a curl line that works as printed.
	p.stdout.Has(p.url + "/oauth2/token")
	m := curlLine.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no curl line on first start; stdout:\n%s", p.stdout.String())
	}
	demoID, demoSecret := m[2], m[3]
	line := strings.Replace(m[1], "http://127.0.0.1:8080", p.url, 1)
	out, err := exec.Command("sh", "-c", line).Output()
	if err != nil {
		t.Fatalf("%s: %v (is curl installed?)", line, err)
	}
	var tok map[string]any
	if err := json.Unmarshal(out, &tok); err != nil || tok["access_token"] == nil || tok["expires_in"] != float64(10800) {
		t.Fatalf("curl line answered %s", out)
	}
	for _, f := range []string{"admin-token", "tokensmith.db"} {
		st, err := os.Stat(filepath.Join(dir, "data", f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("data/%s: %v mode %v, want 0600", f, err, st.Mode().Perm())
		}
	}

	// The CLI, from the same directory, finds the admin token by itself.
	var created struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	raw := p.cli(t, "", "client", "create", "--json", "--name", "billing", "--grant", "password,refresh_token", "--scope", "read", "--scope", "write")
	if err := json.Unmarshal([]byte(raw), &created); err != nil || created.ClientSecret == "" {
		t.Fatalf("client create --json: %v\n%s", err, raw)
	}
	if out := p.cli(t, "", "client", "list"); !strings.Contains(out, created.ClientID) || !strings.Contains(out, demoID) || strings.Contains(out, created.ClientSecret) {
		t.Fatalf("client list:\n%s", out)
	}
	if out := p.cli(t, "", "client", "show", created.ClientID); !strings.Contains(out, "read write") || strings.Contains(out, created.ClientSecret) {
		t.Fatalf("client show:\n%s", out)
	}
	p.cli(t, "", "client", "update", created.ClientID, "--refresh-grace", "0s")
	if out := p.cli(t, "s3cret-password\n", "user", "create", "--username", "erin", "--password-stdin"); !strings.Contains(out, "erin") {
		t.Fatalf("user create: %s", out)
	}
	// Both the CLI and the server say which signer they were built with, and so does the log.
	if out := p.cli(t, "", "version"); !strings.Contains(out, "tokensmith") || strings.Count(out, "signer="+keys.SignerName+" (") != 2 {
		t.Fatalf("version, want the CLI's and the server's signer=%s:\n%s", keys.SignerName, out)
	}
	if logs := p.stderr.String(); !strings.Contains(logs, "signer="+keys.SignerName+" ") {
		t.Fatalf("start-up log does not name signer=%s:\n%s", keys.SignerName, logs)
	}

	ctx := context.Background()
	cfg := oauth2.Config{ClientID: created.ClientID, ClientSecret: created.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: p.url + "/oauth2/token"}}
	pair, err := cfg.PasswordCredentialsToken(ctx, "erin", "s3cret-password")
	if err != nil {
		t.Fatal(err)
	}
	kidBefore := kid(t, p)
	p.stop(t)
	if strings.Contains(p.stdout.String()+p.stderr.String(), pair.RefreshToken) {
		t.Fatal("a refresh token reached the output")
	}

	// Restart on the same file store: no new demo client, same key, and everything issued
	// before keeps working.
	p2 := start(t, dir)
	if strings.Contains(p2.stdout.String(), "first start") {
		t.Fatalf("second start printed the welcome again:\n%s", p2.stdout.String())
	}
	if k := kid(t, p2); k != kidBefore {
		t.Fatalf("signing key changed across restart: %s -> %s", kidBefore, k)
	}
	cfg.Endpoint.TokenURL = p2.url + "/oauth2/token"
	pair.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(ctx, pair).Token()
	if err != nil || fresh.RefreshToken == pair.RefreshToken {
		t.Fatalf("refresh token issued before the restart: %v", err)
	}
	if _, err := cfg.PasswordCredentialsToken(ctx, "erin", "s3cret-password"); err != nil {
		t.Fatalf("user after restart: %v", err)
	}
	cc := clientcredentials.Config{ClientID: demoID, ClientSecret: demoSecret, TokenURL: p2.url + "/oauth2/token"}
	if _, err := cc.Token(ctx); err != nil {
		t.Fatalf("demo client after restart: %v", err)
	}
	p2.stop(t)

	logs := p.stderr.String() + p2.stderr.String()
	adminToken, _ := os.ReadFile(filepath.Join(dir, "data", "admin-token"))
	for name, s := range map[string]string{"client secret": created.ClientSecret, "demo secret": demoSecret,
		"password": "s3cret-password", "refresh token": fresh.RefreshToken, "access token": fresh.AccessToken,
		"admin token": strings.TrimSpace(string(adminToken))} {
		if strings.Contains(logs, s) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
	if !strings.Contains(logs, "path=/oauth2/token") {
		t.Errorf("no access log lines for the token endpoint:\n%s", logs)
	}
}

func TestInvalidConfigurationStopsWithOneLinePerField(t *testing.T) {
	cmd := exec.Command(binary, "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "TOKENSMITH_ISSUER=not-a-url", "TOKENSMITH_STORAGE=postgres://db")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0]+lines[1], "issuer:") || !strings.Contains(lines[0]+lines[1], "storage:") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}

func TestCLIErrorsAreClear(t *testing.T) {
	p := start(t, t.TempDir(), "TOKENSMITH_STORAGE=memory:")
	cmd := exec.Command(binary, "client", "show", "missing")
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "TOKENSMITH_ADMIN_URL="+p.adminURL)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not_found") {
		t.Fatalf("client show missing: %v %s", err, out)
	}
	cmd = exec.Command(binary, "client", "list")
	cmd.Dir = t.TempDir() // no admin token here
	cmd.Env = append(os.Environ(), "TOKENSMITH_ADMIN_URL="+p.adminURL, "TOKENSMITH_ADMIN_TOKEN=")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "admin token") {
		t.Fatalf("without an admin token: %v %s", err, out)
	}
}

// devCertRoots reads the server's development certificate as a pool of roots, each time it
// is called: nil until the server has written it.
func devCertRoots(certFile string) func() *x509.CertPool {
	return func() *x509.CertPool {
		b, err := os.ReadFile(certFile)
		if err != nil {
			return nil
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b)
		return pool
	}
}
