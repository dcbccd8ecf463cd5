package main

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// scenario is one kind of request the benchmark sends, over and over, from every worker.
type scenario struct {
	name  string // short, for -scenarios and the JSON rows
	title string // for the table
	// prepare creates what the scenario needs on s (clients, users, tokens) and returns a
	// constructor of per-worker request loops.
	prepare func(s *server, f *fixture) (newWorker, error)
}

// newWorker returns worker i's step: one request, checked. Setup that is per worker (a login
// to refresh from) happens here, outside the measured window.
type newWorker func(i int, c *http.Client) (step, error)

// step sends one request and checks its answer.
type step func() error

// scenarios run in this order. The password and refresh scenarios come last: each of their
// requests stores a refresh token (with its successor, for the grace window), which the
// embedded store keeps in memory for the refresh lifetime, so the resident set they leave
// would be counted in every scenario after them.
var scenarios = []scenario{
	{"fresh", "fresh client_credentials", prepareClientCredentials("fresh", nil)},
	{"reused", "reused client_credentials", prepareClientCredentials("reused", map[string]any{"reuse": true})},
	// Fresh issuance by a client whose access_token_signing_alg is each other algorithm: the
	// "fresh" scenario is RS256, the default.
	{"fresh-ps256", "fresh client_credentials, PS256", prepareClientCredentials("fresh-ps256", map[string]any{"access_token_signing_alg": "PS256"})},
	{"fresh-es256", "fresh client_credentials, ES256", prepareClientCredentials("fresh-es256", map[string]any{"access_token_signing_alg": "ES256"})},
	{"fresh-eddsa", "fresh client_credentials, EdDSA", prepareClientCredentials("fresh-eddsa", map[string]any{"access_token_signing_alg": "EdDSA"})},
	{"federated", "fresh client_credentials, workload token (ES256)", prepareFederated},
	{"private-key-jwt", "fresh client_credentials, private_key_jwt (ES256 assertion)", preparePrivateKeyJWT},
	{"dpop", "fresh client_credentials with a DPoP proof (ES256)", prepareDPoP},
	// Over a TLS server that asks for client certificates (tlsScenario): the secret path, then
	// the two certificate methods and a certificate-bound token.
	{"fresh-tls", "fresh client_credentials over TLS (secret)", prepareFreshTLS},
	{"mtls", "fresh client_credentials, tls_client_auth (CA-issued certificate)", prepareMTLS(false)},
	{"mtls-self-signed", "fresh client_credentials, self_signed_tls_client_auth", prepareMTLSSelfSigned},
	{"mtls-bound", "fresh client_credentials, tls_client_auth, certificate-bound token", prepareMTLS(true)},
	{"limited", "daily-limited client_credentials", prepareClientCredentials("limited", map[string]any{"daily_limit": 2_000_000_000})},
	{"jwks", "JWKS", prepareJWKS},
	{"introspect", "introspection (access token)", prepareIntrospect},
	{"revoke", "revocation (access token)", prepareRevoke},
	{"exchange", "token exchange (personal token)", prepareExchange},
	{"password", "password grant (bcrypt)", preparePassword},
	{"refresh", "refresh_token rotation", prepareRefresh},
}

// algorithmScenario is the signing algorithm a fresh-issuance scenario is about, or "".
func algorithmScenario(name string) string {
	switch name {
	case "fresh":
		return "RS256"
	case "fresh-ps256":
		return "PS256"
	case "fresh-es256":
		return "ES256"
	case "fresh-eddsa":
		return "EdDSA"
	}
	return ""
}

// benchAlgorithms is keys.algorithms of the servers that run the per-algorithm scenarios:
// RS256 first, so the other scenarios' clients keep the default.
const benchAlgorithms = "RS256,PS256,ES256,EdDSA"

func scenarioByName(name string) (scenario, bool) {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc, true
		}
	}
	return scenario{}, false
}

// fixture holds what several scenarios share on one server: the user behind the password,
// refresh and exchange scenarios, and the client certificate each certificate scenario
// presents.
type fixture struct {
	userID string
	certs  map[string]*tls.Certificate
}

const (
	benchUsername = "bench-user"
	benchPassword = "bench-password-not-a-secret"
	benchScope    = "orders:read"
)

// admin calls the server's admin API with a JSON body and decodes the JSON answer into out.
func (s *server) admin(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.adminURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type clientCreds struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

func (s *server) createClient(name string, grants []string, extra map[string]any) (clientCreds, error) {
	in := map[string]any{"name": "bench " + name, "grant_types": grants, "scopes": []string{benchScope}}
	for k, v := range extra {
		in[k] = v
	}
	var c clientCreds
	err := s.admin("POST", "/admin/clients", in, &c)
	return c, err
}

func (f *fixture) user(s *server) (string, error) {
	if f.userID != "" {
		return f.userID, nil
	}
	var u struct {
		ID string `json:"id"`
	}
	err := s.admin("POST", "/admin/users", map[string]any{"username": benchUsername, "password": benchPassword, "scopes": []string{benchScope}}, &u)
	f.userID = u.ID
	return u.ID, err
}

// post is a prepared form POST with HTTP Basic client authentication.
type post struct {
	url, auth string
	body      []byte
}

func newPost(url string, c clientCreds, form url.Values) post {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(url2(c.ID)+":"+url2(c.Secret)))
	return post{url: url, auth: auth, body: []byte(form.Encode())}
}

func url2(s string) string { return url.QueryEscape(s) }

// do sends p and returns the status and body.
func (p post) do(c *http.Client) (int, []byte, error) {
	req, err := http.NewRequest("POST", p.url, bytes.NewReader(p.body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.auth != "" {
		req.Header.Set("Authorization", p.auth)
	}
	return roundTrip(c, req)
}

func roundTrip(c *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, body, err
}

// field returns the string value of "key" in a flat JSON answer. Token endpoint answers hold
// no escaped strings, so a scan is exact and keeps the load generator cheap: it shares the
// cores with the server it measures.
func field(body []byte, key string) string {
	k := `"` + key + `":"`
	i := bytes.Index(body, []byte(k))
	if i < 0 {
		return ""
	}
	rest := body[i+len(k):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// checkToken checks a token endpoint answer: 200, a JWT access token, token_type Bearer.
func checkToken(status int, body []byte) error {
	if status != http.StatusOK {
		return fmt.Errorf("status %d: %s", status, truncate(body))
	}
	at := field(body, "access_token")
	if tt := field(body, "token_type"); strings.Count(at, ".") != 2 || (tt != "Bearer" && tt != "DPoP") {
		return fmt.Errorf("not a token answer: %s", truncate(body))
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

func prepareClientCredentials(name string, extra map[string]any) func(*server, *fixture) (newWorker, error) {
	return func(s *server, _ *fixture) (newWorker, error) {
		c, err := s.createClient(name, []string{"client_credentials"}, extra)
		if err != nil {
			return nil, err
		}
		p := newPost(s.url+"/oauth2/token", c, url.Values{"grant_type": {"client_credentials"}})
		if alg, ok := extra["access_token_signing_alg"].(string); ok {
			// Once, outside the measured window: the tokens are of that algorithm.
			status, body, err := p.do(http.DefaultClient)
			if err != nil {
				return nil, err
			}
			if err := checkToken(status, body); err != nil {
				return nil, err
			}
			h, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(field(body, "access_token"), ".", 2)[0])
			if !bytes.Contains(h, []byte(`"alg":"`+alg+`"`)) {
				return nil, fmt.Errorf("a %s client's token has the header %s", alg, h)
			}
		}
		reuse := extra["reuse"] == true
		var pooled string
		if reuse {
			// The first request fills the pool; every later one must get that same token.
			status, body, err := p.do(http.DefaultClient)
			if err != nil {
				return nil, err
			}
			if err := checkToken(status, body); err != nil {
				return nil, err
			}
			pooled = field(body, "access_token")
		}
		return func(_ int, hc *http.Client) (step, error) {
			return func() error {
				status, body, err := p.do(hc)
				if err != nil {
					return err
				}
				if err := checkToken(status, body); err != nil {
					return err
				}
				if reuse && field(body, "access_token") != pooled {
					return errors.New("reuse answered a token other than the pooled one")
				}
				return nil
			}, nil
		}, nil
	}
}

// loginPost is the benchmark user's password login through a new client named name.
func loginPost(s *server, f *fixture, name string) (post, error) {
	if _, err := f.user(s); err != nil {
		return post{}, err
	}
	c, err := s.createClient(name, []string{"password", "refresh_token"}, nil)
	if err != nil {
		return post{}, err
	}
	return newPost(s.url+"/oauth2/token", c, url.Values{"grant_type": {"password"}, "username": {benchUsername}, "password": {benchPassword}}), nil
}

func preparePassword(s *server, f *fixture) (newWorker, error) {
	p, err := loginPost(s, f, "password")
	if err != nil {
		return nil, err
	}
	return func(_ int, hc *http.Client) (step, error) {
		return func() error {
			status, body, err := p.do(hc)
			if err != nil {
				return err
			}
			if err := checkToken(status, body); err != nil {
				return err
			}
			if field(body, "refresh_token") == "" {
				return errors.New("password answer without refresh_token")
			}
			return nil
		}, nil
	}, nil
}

// prepareRefresh logs each worker in once; the worker then refreshes its own login over and
// over, always with the refresh token it was given last (rotation).
func prepareRefresh(s *server, f *fixture) (newWorker, error) {
	login, err := loginPost(s, f, "refresh")
	if err != nil {
		return nil, err
	}
	auth := login.auth
	return func(_ int, hc *http.Client) (step, error) {
		status, body, err := login.do(hc)
		if err != nil {
			return nil, err
		}
		if err := checkToken(status, body); err != nil {
			return nil, err
		}
		rt := field(body, "refresh_token")
		return func() error {
			p := post{url: login.url, auth: auth, body: []byte("grant_type=refresh_token&refresh_token=" + url.QueryEscape(rt))}
			status, body, err := p.do(hc)
			if err != nil {
				return err
			}
			if err := checkToken(status, body); err != nil {
				return err
			}
			next := field(body, "refresh_token")
			if next == "" || next == rt {
				return errors.New("refresh answer without a new refresh_token")
			}
			rt = next
			return nil
		}, nil
	}, nil
}

func prepareJWKS(s *server, _ *fixture) (newWorker, error) {
	return func(_ int, hc *http.Client) (step, error) {
		return func() error {
			req, err := http.NewRequest("GET", s.url+"/.well-known/jwks.json", nil)
			if err != nil {
				return err
			}
			status, body, err := roundTrip(hc, req)
			if err != nil {
				return err
			}
			if status != http.StatusOK || !bytes.Contains(body, []byte(`"kty":"RSA"`)) {
				return fmt.Errorf("JWKS: %d %s", status, truncate(body))
			}
			return nil
		}, nil
	}, nil
}

// prepareIntrospect introspects one live access token of the introspecting client: an RS256
// verification and one store call (deny-list) per request.
func prepareIntrospect(s *server, _ *fixture) (newWorker, error) {
	c, err := s.createClient("introspect", []string{"client_credentials"}, nil)
	if err != nil {
		return nil, err
	}
	status, body, err := newPost(s.url+"/oauth2/token", c, url.Values{"grant_type": {"client_credentials"}}).do(http.DefaultClient)
	if err != nil {
		return nil, err
	}
	if err := checkToken(status, body); err != nil {
		return nil, err
	}
	p := newPost(s.url+"/oauth2/introspect", c, url.Values{"token": {field(body, "access_token")}})
	return func(_ int, hc *http.Client) (step, error) {
		return func() error {
			status, body, err := p.do(hc)
			if err != nil {
				return err
			}
			if status != http.StatusOK || !bytes.Contains(body, []byte(`"active":true`)) || field(body, "client_id") != c.ID {
				return fmt.Errorf("introspection: %d %s", status, truncate(body))
			}
			return nil
		}, nil
	}, nil
}

// prepareRevoke revokes (RFC 7009) an access token of the revoking client per request: each
// worker its own token, again and again, one store write each time.
func prepareRevoke(s *server, _ *fixture) (newWorker, error) {
	c, err := s.createClient("revoke", []string{"client_credentials"}, nil)
	if err != nil {
		return nil, err
	}
	return func(_ int, hc *http.Client) (step, error) {
		status, body, err := newPost(s.url+"/oauth2/token", c, url.Values{"grant_type": {"client_credentials"}}).do(hc)
		if err != nil {
			return nil, err
		}
		if err := checkToken(status, body); err != nil {
			return nil, err
		}
		p := newPost(s.url+"/oauth2/revoke", c, url.Values{"token": {field(body, "access_token")}})
		return func() error {
			status, body, err := p.do(hc)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("revocation: %d %s", status, truncate(body))
			}
			return nil
		}, nil
	}, nil
}

// prepareExchange exchanges one personal token (RFC 8693) for a new access token per request.
func prepareExchange(s *server, f *fixture) (newWorker, error) {
	uid, err := f.user(s)
	if err != nil {
		return nil, err
	}
	var pat struct {
		Token string `json:"token"`
	}
	if err := s.admin("POST", "/admin/users/"+url.PathEscape(uid)+"/tokens", map[string]any{"name": "bench", "scopes": []string{benchScope}}, &pat); err != nil {
		return nil, err
	}
	c, err := s.createClient("exchange", []string{"urn:ietf:params:oauth:grant-type:token-exchange"}, nil)
	if err != nil {
		return nil, err
	}
	p := newPost(s.url+"/oauth2/token", c, url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {pat.Token},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
	})
	return func(_ int, hc *http.Client) (step, error) {
		return func() error {
			status, body, err := p.do(hc)
			if err != nil {
				return err
			}
			if err := checkToken(status, body); err != nil {
				return err
			}
			if field(body, "issued_token_type") != "urn:ietf:params:oauth:token-type:access_token" {
				return errors.New("exchange answer without issued_token_type")
			}
			return nil
		}, nil
	}, nil
}
