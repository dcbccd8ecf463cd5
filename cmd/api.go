package cmd

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/tlscert"
)

// adminClient calls the admin API with the admin bearer token.
type adminClient struct {
	base string
	// from and tokenFrom say where the URL and the token came from, so an error can say what
	// to change.
	from, tokenFrom string
	// plainBase and plainFrom are the http URL base was guessed up from (devCertGuess), to fall
	// back to once when the server answers in plain HTTP; empty otherwise.
	plainBase, plainFrom string
	token                string
	http                 *http.Client
}

// Where a URL built by defaultAdminURL came from, when nobody gave one.
const (
	fromListen  = "TOKENSMITH_ADMIN_LISTEN"
	fromDefault = "the default"
)

// plainHTTPAnswer is how Go's HTTP client reports an https request answered in plain HTTP.
const plainHTTPAnswer = "server gave HTTP response to HTTPS client"

// dataDir is the server's data directory as the CLI sees it: TOKENSMITH_DATA_DIR, else the
// directory serve uses by default.
func dataDir() string {
	if d := os.Getenv("TOKENSMITH_DATA_DIR"); d != "" {
		return d
	}
	return config.Default().DataDir
}

// adminTokenFile is where serve writes a generated admin token.
func adminTokenFile(dataDir string) string { return filepath.Join(dataDir, "admin-token") }

// defaultAdminURL finds the admin API the way serve places it: TOKENSMITH_ADMIN_URL, else
// TOKENSMITH_ADMIN_LISTEN (https when TOKENSMITH_ADMIN_TLS_CERT or TOKENSMITH_DEV_TLS is
// set), else serve's default admin listener. It also names where the answer came from.
func defaultAdminURL(getenv func(string) string) (url, from string) {
	if u := getenv("TOKENSMITH_ADMIN_URL"); u != "" {
		return u, "TOKENSMITH_ADMIN_URL"
	}
	scheme := "http"
	if dev, _ := strconv.ParseBool(getenv("TOKENSMITH_DEV_TLS")); dev || getenv("TOKENSMITH_ADMIN_TLS_CERT") != "" {
		scheme = "https"
	}
	listen, from := config.Default().AdminListen, fromDefault
	if l := getenv("TOKENSMITH_ADMIN_LISTEN"); l != "" {
		if _, port, err := net.SplitHostPort(l); err == nil && port != "" {
			listen, from = l, fromListen
		}
	}
	host, port, _ := net.SplitHostPort(listen)
	// A listener on every address is reached on loopback.
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.Equal(net.IPv4zero):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return scheme + "://" + net.JoinHostPort(host, port), from
}

// devCertGuess reports whether an admin URL nobody gave (built from TOKENSMITH_ADMIN_LISTEN or
// the default, over http because TOKENSMITH_DEV_TLS is not set either way) should be tried over
// https: the data directory holds the dev certificate, which serve writes there only with
// dev_tls on, so the server run from here most likely serves both listeners with it. That may
// be a leftover of an earlier run, so the http URL stays the fallback. It returns the
// certificate's path.
func devCertGuess(url, from string, getenv func(string) string) (cert string, ok bool) {
	if (from != fromListen && from != fromDefault) || !strings.HasPrefix(url, "http://") || getenv("TOKENSMITH_DEV_TLS") != "" {
		return "", false
	}
	cert = filepath.Join(dataDir(), tlscert.DevCertFile)
	if _, err := os.Stat(cert); err != nil {
		return "", false
	}
	return cert, true
}

func (g *globals) client() (*adminClient, error) {
	tok, tokenFrom := os.Getenv("TOKENSMITH_ADMIN_TOKEN"), "TOKENSMITH_ADMIN_TOKEN"
	if tok == "" {
		path := adminTokenFile(dataDir())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &cliError{"no_admin_token", fmt.Sprintf(
				"no admin token: set TOKENSMITH_ADMIN_TOKEN or run from the directory holding %s (%v)", path, err)}
		}
		tok, tokenFrom = strings.TrimSpace(string(b)), path
	}
	roots, err := g.roots()
	if err != nil {
		return nil, err
	}
	a := &adminClient{
		base: strings.TrimRight(g.adminURL, "/"), from: g.adminURLFrom, token: tok, tokenFrom: tokenFrom,
		http: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: roots},
		}},
	}
	if cert, ok := devCertGuess(a.base, a.from, os.Getenv); ok {
		a.plainBase, a.plainFrom = a.base, a.from
		a.base = "https://" + strings.TrimPrefix(a.base, "http://")
		a.from += ", https for the dev certificate " + cert
	}
	return a, nil
}

// roots are the system's CAs, plus --cacert and the dev certificate of the data directory
// when there is one, so the CLI run beside a dev-TLS server trusts it with no flags.
func (g *globals) roots() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if g.cacert != "" {
		b, err := os.ReadFile(g.cacert)
		if err != nil || !pool.AppendCertsFromPEM(b) {
			return nil, &cliError{"invalid_cacert", fmt.Sprintf("--cacert %s: no PEM certificate could be read (%v)", g.cacert, err)}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dataDir(), tlscert.DevCertFile)); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return pool, nil
}

// unreachable explains a failed connection and what to change: the flag and the variable.
func (a *adminClient) unreachable(err error) error {
	where := fmt.Sprintf("the admin API at %s (from %s)", a.base, a.from)
	fix := "set the admin API's URL with --admin-url or TOKENSMITH_ADMIN_URL"
	var ua x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var msg string
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("cannot reach %s: connection refused. Is `tokensmith serve` running? If it listens elsewhere, %s", where, fix)
	case errors.As(err, &ua), errors.As(err, &hostErr):
		msg = fmt.Sprintf("%s presents a certificate this machine does not trust (%v): pass the CA with --cacert or TOKENSMITH_ADMIN_CACERT", where, err)
	case strings.Contains(err.Error(), plainHTTPAnswer):
		msg = fmt.Sprintf("%s serves plain HTTP, not HTTPS: %s to an http:// URL", where, fix)
	default:
		msg = fmt.Sprintf("cannot reach %s: %v; %s", where, err, fix)
	}
	return &cliError{"unreachable", msg}
}

// do sends in (if not nil) as JSON and decodes the answer into out (if not nil). raw receives
// the answer body for --json output.
func (a *adminClient) do(method, path string, in, out any) ([]byte, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	resp, err := a.send(method, path, body)
	if err != nil && a.plainBase != "" && strings.Contains(err.Error(), plainHTTPAnswer) {
		// https was a guess and the server speaks plain HTTP: nothing was sent, so the request
		// goes again, to the URL the CLI would have used without the guess.
		a.base, a.from, a.plainBase = a.plainBase, a.plainFrom, ""
		resp, err = a.send(method, path, body)
	}
	var ce *cliError
	if errors.As(err, &ce) {
		return nil, err // the URL itself is wrong
	}
	if err != nil {
		return nil, a.unreachable(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		var pe protocol.Error
		if json.Unmarshal(raw, &pe) == nil && pe.Code != "" {
			if pe.Code == protocol.Unauthorized {
				pe.Description = fmt.Sprintf("the admin API at %s refused the admin token from %s: "+
					"set TOKENSMITH_ADMIN_TOKEN to the server's token, or run from the directory whose data/ the server uses", a.base, a.tokenFrom)
			}
			return raw, &pe
		}
		if resp.StatusCode == http.StatusBadRequest && bytes.Contains(raw, []byte("HTTP request to an HTTPS server")) {
			return raw, &cliError{"unreachable", fmt.Sprintf("the admin API at %s (from %s) serves HTTPS: use an https:// URL with --admin-url or TOKENSMITH_ADMIN_URL "+
				"(or give the CLI the server's TOKENSMITH_DEV_TLS or TOKENSMITH_ADMIN_TLS_CERT)", a.base, a.from)}
		}
		return raw, &cliError{"unexpected_answer", fmt.Sprintf("the admin API at %s (from %s) answered %s; is that a tokensmith admin listener?", a.base, a.from, resp.Status)}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("unexpected admin API answer: %w", err)
		}
	}
	return raw, nil
}

// send makes one request with the admin token, body (if not nil) as JSON.
func (a *adminClient) send(method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, &cliError{"invalid_usage", fmt.Sprintf("admin URL %q (from %s): %v", a.base, a.from, err)}
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return a.http.Do(req)
}

// printJSON re-indents an API answer for --json.
func (g *globals) printJSON(raw []byte) error {
	var buf bytes.Buffer
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := g.out.Write(buf.Bytes())
	return err
}
