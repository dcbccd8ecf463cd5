package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/tokensmith/tokensmith/dpop"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	rsverify "github.com/tokensmith/tokensmith/verify"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func newProofKey(t *testing.T) *dpop.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jktOf reads cnf.jkt from a token (its signature is checked by verify elsewhere).
func jktOf(t *testing.T, tok string) string {
	t.Helper()
	parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := parsed.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return c.Cnf.JKT
}

// TestDPoPEndToEnd: golang.org/x/oauth2 with package dpop's Transport underneath gets a DPoP
// token bound to its key, a resource server built with verify/ accepts it with a proof and
// refuses it as a bearer token, introspection says so, and the reuse pool hands a bound token
// out again only to a proof by the same key.
func TestDPoPEndToEnd(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{Scopes: &[]string{"orders:read"}, Reuse: ptr(true)})
	key := newProofKey(t)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: key.Transport(nil)})
	cfg := clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: ts.URL + "/oauth2/token", Scopes: []string{"orders:read"}}
	tok, err := cfg.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != protocol.TokenTypeDPoP || jktOf(t, tok.AccessToken) != key.Thumbprint() {
		t.Fatalf("token_type %q cnf.jkt %q, want DPoP bound to %s", tok.TokenType, jktOf(t, tok.AccessToken), key.Thumbprint())
	}
	if c := verify(t, ts, tok.AccessToken); c.ClientID != id {
		t.Fatalf("claims %+v", c)
	}

	// A resource server on verify/, finding the keys through discovery.
	v, err := rsverify.New(rsverify.Config{Issuer: ts.URL, Audience: []string{"https://api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(v.Middleware(rsverify.Scopes("orders:read"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := rsverify.FromContext(r.Context())
		_, _ = io.WriteString(w, c.Confirmation.JKT)
	})))
	defer api.Close()
	holder := &http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(tok), Base: key.Transport(nil)}}
	resp, err := holder.Get(api.URL + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != key.Thumbprint() {
		t.Fatalf("the holder of the key: %d %s", resp.StatusCode, body)
	}
	// A thief with the token and no key.
	req, _ := http.NewRequest("GET", api.URL+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "DPoP ") {
		t.Fatalf("the token without its key: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// A thief with the token and a key of its own.
	thief := &http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(tok), Base: newProofKey(t).Transport(nil)}}
	if resp, err = thief.Get(api.URL + "/orders"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("the token with another key: %d", resp.StatusCode)
	}

	// Introspection tells a resource server that cannot verify locally.
	in := ts.introspect(t, id, sec, tok.AccessToken)
	cnf, _ := in.Body["cnf"].(map[string]any)
	if in.str("token_type") != protocol.TokenTypeDPoP || cnf["jkt"] != key.Thumbprint() {
		t.Fatalf("introspection %s", in.RawBody)
	}

	// The client reuses tokens, pooled by key: another proof by the same key gets the same
	// token (still DPoP), a proof by another key a token of its own, and a bearer request
	// never a bound one.
	again, err := cfg.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.AccessToken != tok.AccessToken || again.TokenType != protocol.TokenTypeDPoP {
		t.Fatalf("the same key again: reused %v, token_type %q", again.AccessToken == tok.AccessToken, again.TokenType)
	}
	other := newProofKey(t)
	mine, err := cfg.Token(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: other.Transport(nil)}))
	if err != nil {
		t.Fatal(err)
	}
	if mine.AccessToken == tok.AccessToken || jktOf(t, mine.AccessToken) != other.Thumbprint() || mine.TokenType != protocol.TokenTypeDPoP {
		t.Fatalf("another key: got the first key's token %v, cnf.jkt %q", mine.AccessToken == tok.AccessToken, jktOf(t, mine.AccessToken))
	}
	bearer := ts.form(t, id, sec, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}})
	if bearer.Status != 200 || bearer.str("token_type") != "Bearer" || jktOf(t, bearer.str("access_token")) != "" {
		t.Fatalf("reuse handed a bound token to a bearer request: %s", bearer.RawBody)
	}
	// The discovery document lists the proof algorithms.
	var md map[string]any
	resp, err = http.Get(ts.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if algs, _ := json.Marshal(md["dpop_signing_alg_values_supported"]); string(algs) != `["RS256","PS256","ES256","EdDSA"]` {
		t.Fatalf("dpop_signing_alg_values_supported %s", algs)
	}
}

// TestDPoPRefusals: every proof the token endpoint must refuse gets 400 invalid_dpop_proof
// and no token; a replayed proof is refused the second time.
func TestDPoPRefusals(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{Scopes: &[]string{"orders:read"}})
	key := newProofKey(t)
	proof := func(method, u string) string {
		p, err := key.Proof(method, u, "")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenURL := ts.URL + "/oauth2/token"
	used := proof("POST", tokenURL)
	cc := url.Values{"grant_type": {"client_credentials"}}.Encode()
	send := func(auth, body string, proofs ...string) reply {
		req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		for _, p := range proofs {
			req.Header.Add(dpop.Header, p)
		}
		return send(t, req)
	}
	if r := send(basic(id, sec), cc, used); r.Status != 200 || r.str("token_type") != "DPoP" {
		t.Fatalf("a fresh proof: %d %s", r.Status, r.RawBody)
	}
	for _, tc := range []struct {
		name   string
		auth   string
		body   string
		proofs []string
		code   string
		says   string
	}{
		{"the same proof again", basic(id, sec), cc, []string{used}, protocol.InvalidDPoPProof, "used before"},
		{"a proof for another endpoint", basic(id, sec), cc, []string{proof("POST", ts.URL+"/oauth2/revoke")}, protocol.InvalidDPoPProof, "htu"},
		{"a proof for another host", basic(id, sec), cc, []string{proof("POST", "https://other.example.com/oauth2/token")}, protocol.InvalidDPoPProof, "htu"},
		{"a proof for GET", basic(id, sec), cc, []string{proof("GET", tokenURL)}, protocol.InvalidDPoPProof, "htm"},
		{"two proofs", basic(id, sec), cc, []string{proof("POST", tokenURL), proof("POST", tokenURL)}, protocol.InvalidDPoPProof, "more than one"},
		{"not a proof", basic(id, sec), cc, []string{"e30.e30.e30"}, protocol.InvalidDPoPProof, "DPoP proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := send(tc.auth, tc.body, tc.proofs...)
			if r.Status != 400 || r.str("error") != tc.code || !strings.Contains(r.str("error_description"), tc.says) || r.str("access_token") != "" {
				t.Fatalf("%d %s, want 400 %s saying %q", r.Status, r.RawBody, tc.code, tc.says)
			}
		})
	}
}

// TestDPoPBoundClient: a client registered with dpop_bound_access_tokens gets no token without
// a proof.
func TestDPoPBoundClient(t *testing.T) {
	ts := newTestServer(t)
	created := ts.admin(t, "POST", "/admin/clients", `{"dpop_bound_access_tokens":true}`)
	id, sec := created.str("client_id"), created.str("client_secret")
	if created.Status != 201 || created.Body["dpop_bound_access_tokens"] != true {
		t.Fatalf("create: %d %s", created.Status, created.RawBody)
	}
	bare := ts.form(t, id, sec, url.Values{"grant_type": {"client_credentials"}})
	if bare.Status != 400 || bare.str("error") != protocol.InvalidRequest || !strings.Contains(bare.str("error_description"), "DPoP proof") {
		t.Fatalf("without a proof: %d %s", bare.Status, bare.RawBody)
	}
	p, err := newProofKey(t).Proof("POST", ts.URL+"/oauth2/token", "")
	if err != nil {
		t.Fatal(err)
	}
	bound := ts.post(t, "application/x-www-form-urlencoded", "grant_type=client_credentials", map[string]string{"Authorization": basic(id, sec), dpop.Header: p})
	if bound.Status != 200 || bound.str("token_type") != protocol.TokenTypeDPoP {
		t.Fatalf("with a proof: %d %s", bound.Status, bound.RawBody)
	}
}

// countingTransport counts the requests that reach the server.
type countingTransport struct {
	n    int
	base http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n++
	return c.base.RoundTrip(r)
}

// TestDPoPNonce: a client that must use server nonces is answered use_dpop_nonce with a nonce
// in DPoP-Nonce; the dpop transport retries once with it, and keeps the nonce every answer
// carries, so the next request needs no retry. A made-up nonce is refused.
func TestDPoPNonce(t *testing.T) {
	ts := newTestServer(t)
	created := ts.admin(t, "POST", "/admin/clients", `{"dpop_nonce_required":true}`)
	id, sec := created.str("client_id"), created.str("client_secret")
	if created.Status != 201 || created.Body["dpop_nonce_required"] != true {
		t.Fatalf("create: %d %s", created.Status, created.RawBody)
	}
	key := newProofKey(t)
	tokenURL := ts.URL + "/oauth2/token"
	p, _ := key.Proof("POST", tokenURL, "")
	first := ts.post(t, "application/x-www-form-urlencoded", "grant_type=client_credentials", map[string]string{"Authorization": basic(id, sec), dpop.Header: p})
	nonce := first.Header.Get(dpop.NonceHeader)
	if first.Status != 400 || first.str("error") != protocol.UseDPoPNonce || nonce == "" || first.str("access_token") != "" {
		t.Fatalf("a proof without a nonce: %d %s (DPoP-Nonce %q)", first.Status, first.RawBody, nonce)
	}

	counted := &countingTransport{base: http.DefaultTransport}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: key.Transport(counted)})
	cfg := clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: tokenURL}
	tok, err := cfg.Token(ctx)
	if err != nil || tok.TokenType != protocol.TokenTypeDPoP || counted.n != 2 {
		t.Fatalf("through the transport: %v %v after %d requests, want a DPoP token after 2", err, tok, counted.n)
	}
	if _, err := cfg.Token(ctx); err != nil || counted.n != 3 {
		t.Fatalf("the next token: %v after %d requests, want no retry", err, counted.n)
	}

	// A nonce the server never handed out. The Signer only sends nonces it was given, so this
	// proof is built as a client that makes one up would.
	forged := newProofKey(t)
	fake := forged.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		h := http.Header{}
		h.Set(dpop.NonceHeader, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody, Request: r}, nil
	}))
	req, _ := http.NewRequest("POST", tokenURL, nil)
	if _, err := fake.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	p, _ = forged.Proof("POST", tokenURL, "")
	r := ts.post(t, "application/x-www-form-urlencoded", "grant_type=client_credentials", map[string]string{"Authorization": basic(id, sec), dpop.Header: p})
	if r.Status != 400 || r.str("error") != protocol.UseDPoPNonce || !strings.Contains(r.str("error_description"), "no longer valid") {
		t.Fatalf("a made-up nonce: %d %s", r.Status, r.RawBody)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestDPoPPublicClient: a public client's login with a proof binds its refresh token to the
// key: anyone can present the token with the client's id, so without a proof by that key the
// refresh is refused, and burns nothing; with one it rotates, and the family stays bound.
func TestDPoPPublicClient(t *testing.T) {
	ts := newTestServer(t)
	public, _ := ts.client(t, registry.ClientInput{TokenEndpointAuthMethod: ptr(protocol.AuthNone)})
	ts.user(t, "alice", "correct horse battery")
	key, thief := newProofKey(t), newProofKey(t)
	tokenURL := ts.URL + "/oauth2/token"
	send := func(s *dpop.Signer, v url.Values) reply {
		h := map[string]string{}
		if s != nil {
			p, err := s.Proof("POST", tokenURL, "")
			if err != nil {
				t.Fatal(err)
			}
			h[dpop.Header] = p
		}
		return ts.post(t, "application/x-www-form-urlencoded", v.Encode(), h)
	}
	login := send(key, url.Values{"grant_type": {"password"}, "client_id": {public}, "username": {"alice"}, "password": {"correct horse battery"}})
	if login.Status != 200 || login.str("token_type") != "DPoP" || jktOf(t, login.str("access_token")) != key.Thumbprint() || login.str("refresh_token") == "" {
		t.Fatalf("login: %d %s", login.Status, login.RawBody)
	}
	refresh := func(s *dpop.Signer, rt string, withID bool) reply {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if withID {
			v.Set("client_id", public)
		}
		return send(s, v)
	}
	for _, tc := range []struct {
		name   string
		signer *dpop.Signer
		withID bool
	}{{"no proof", nil, true}, {"another key's proof", thief, true}} {
		if r := refresh(tc.signer, login.str("refresh_token"), tc.withID); r.Status != 400 || r.str("error") != protocol.InvalidGrant ||
			!strings.Contains(r.str("error_description"), "bound to a DPoP key") {
			t.Fatalf("%s: %d %s", tc.name, r.Status, r.RawBody)
		}
	}
	next := refresh(key, login.str("refresh_token"), true)
	if next.Status != 200 || jktOf(t, next.str("access_token")) != key.Thumbprint() {
		t.Fatalf("the holder of the key: %d %s", next.Status, next.RawBody)
	}
	if r := refresh(thief, next.str("refresh_token"), true); r.Status != 400 || !strings.Contains(r.str("error_description"), "bound to a DPoP key") {
		t.Fatalf("the successor without the key: %d %s", r.Status, r.RawBody)
	}
	if r := refresh(key, next.str("refresh_token"), true); r.Status != 200 {
		t.Fatalf("the successor with the key: %d %s", r.Status, r.RawBody)
	}
}

// TestDPoPRefresh: a confidential client's refresh token is bound to the client; each access
// token is bound to the key of the proof that came with its request.
func TestDPoPRefresh(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password", "refresh_token"}})
	ts.user(t, "bob", "correct horse battery")
	first, second := newProofKey(t), newProofKey(t)
	tokenURL := ts.URL + "/oauth2/token"
	withProof := func(s *dpop.Signer, v url.Values) reply {
		p, err := s.Proof("POST", tokenURL, "")
		if err != nil {
			t.Fatal(err)
		}
		return ts.post(t, "application/x-www-form-urlencoded", v.Encode(), map[string]string{"Authorization": basic(id, sec), dpop.Header: p})
	}
	login := withProof(first, url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"correct horse battery"}})
	if login.Status != 200 || jktOf(t, login.str("access_token")) != first.Thumbprint() || login.str("refresh_token") == "" {
		t.Fatalf("login %s", login.RawBody)
	}
	next := withProof(second, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login.str("refresh_token")}})
	if next.Status != 200 || next.str("token_type") != "DPoP" || jktOf(t, next.str("access_token")) != second.Thumbprint() {
		t.Fatalf("refresh %s", next.RawBody)
	}
	plain := ts.form(t, id, sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.str("refresh_token")}})
	if plain.Status != 200 || plain.str("token_type") != "Bearer" || jktOf(t, plain.str("access_token")) != "" {
		t.Fatalf("refresh without a proof %s", plain.RawBody)
	}
}
