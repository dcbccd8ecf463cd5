package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// platform is an outside token issuer on loopback (a cluster's service-account issuer, a SPIFFE
// trust domain, a CI system): OpenID discovery and a JWKS, keys that can be swapped, and an
// off switch. Its tokens are signed with go-jose; the server verifies them with golang-jwt.
type platform struct {
	URL  string
	down atomic.Bool
	// fetches counts JWKS fetches.
	fetches atomic.Int64

	mu   sync.Mutex
	keys map[string]platformKey
}

type platformKey struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func newPlatform(t *testing.T) *platform {
	t.Helper()
	p := &platform{keys: map[string]platformKey{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.URL, "jwks_uri": p.URL + "/openid/v1/jwks"})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.fetches.Add(1)
		p.mu.Lock()
		var set jose.JSONWebKeySet
		for kid, k := range p.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: kid, Algorithm: string(k.alg), Use: "sig"})
		}
		p.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// addKey makes a new key of alg under kid and publishes it.
func (p *platform) addKey(t *testing.T, kid string, alg jose.SignatureAlgorithm) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	if alg == jose.ES256 {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.keys[kid] = platformKey{alg: alg, key: k}
	p.mu.Unlock()
	return k
}

// token signs claims with the published key kid; iss defaults to the platform.
func (p *platform) token(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	p.mu.Lock()
	k := p.keys[kid]
	p.mu.Unlock()
	return signWith(t, k.alg, k.key, kid, p.withIss(claims))
}

func (p *platform) withIss(claims map[string]any) map[string]any {
	if _, ok := claims["iss"]; !ok {
		claims["iss"] = p.URL
	}
	return claims
}

func signWith(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// assertionForm is a token request authenticated by a client assertion.
func assertionForm(clientID, assertion string) url.Values {
	v := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {protocol.AssertionTypeJWTBearer},
		"client_assertion": {assertion}}
	if clientID != "" {
		v.Set("client_id", clientID)
	}
	return v
}

// workloadClient is golang.org/x/oauth2's client_credentials flow with the workload's token as
// the client assertion and no client_id unless one is given.
func workloadClient(ts *testServer, clientID, assertion string) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: clientID, TokenURL: ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{"client_assertion_type": {protocol.AssertionTypeJWTBearer}, "client_assertion": {assertion}}}
}

// TestFederatedWorkloadIdentity: the three shapes of platform token (a Kubernetes projected
// service-account token, a SPIFFE JWT-SVID, a GitHub Actions OIDC token) are exchanged for the
// token of the client that lists their identity, through golang.org/x/oauth2, with or without
// client_id; the same token works many times, at the revocation and introspection endpoints
// too, and the audit trail names the workload. Every refusal is 401 invalid_client naming its
// check, without echoing the token, and a token.refused event with the reason.
func TestFederatedWorkloadIdentity(t *testing.T) {
	ts := newTestServer(t)
	k8s, spiffe, gh := newPlatform(t), newPlatform(t), newPlatform(t)
	k8s.addKey(t, "k8s-1", jose.RS256)
	spiffe.addKey(t, "svid-1", jose.ES256)
	ghKey := gh.addKey(t, "gh-1", jose.RS256)
	for _, body := range []string{
		`{"issuer":"` + k8s.URL + `","audiences":["tokensmith"],"name":"prod cluster"}`,
		`{"issuer":"` + spiffe.URL + `","jwks_uri":"` + spiffe.URL + `/openid/v1/jwks","audiences":["spiffe://example.org/tokensmith"]}`,
		`{"issuer":"` + gh.URL + `"}`,
	} {
		if r := ts.admin(t, "POST", "/admin/trusted-issuers", body); r.Status != http.StatusCreated {
			t.Fatalf("trusted issuer: %d %s", r.Status, r.RawBody)
		}
	}
	fed := func(id, iss, sub string) {
		t.Helper()
		r := ts.admin(t, "POST", "/admin/clients", `{"client_id":"`+id+`","federated_identities":[{"issuer":"`+iss+`","subject":"`+sub+`"}]}`)
		if r.Status != http.StatusCreated || r.str("client_secret") != "" || r.str("token_endpoint_auth_method") != protocol.AuthPrivateKeyJWT {
			t.Fatalf("client %s: %d %s", id, r.Status, r.RawBody)
		}
	}
	fed("billing", k8s.URL, "system:serviceaccount:prod:billing")
	fed("payments", spiffe.URL, "spiffe://example.org/ns/payments/sa/api")
	fed("deployer", gh.URL, "repo:acme/app:*")
	fed("twin-a", k8s.URL, "system:serviceaccount:prod:twin")
	fed("twin-b", k8s.URL, "system:serviceaccount:prod:twin")

	now := ts.Clock.Now()
	k8sClaims := func(over map[string]any) map[string]any {
		c := map[string]any{"sub": "system:serviceaccount:prod:billing", "aud": []string{"tokensmith"},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"kubernetes.io": map[string]any{"namespace": "prod", "serviceaccount": map[string]any{"name": "billing", "uid": "7c3b…"},
				"pod": map[string]any{"name": "billing-5d9c", "uid": "a1b2"}}}
		for k, v := range over {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	svid := spiffe.token(t, "svid-1", map[string]any{"sub": "spiffe://example.org/ns/payments/sa/api", "aud": "spiffe://example.org/tokensmith",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
	ghClaims := func(sub string) map[string]any {
		return map[string]any{"sub": sub, "aud": ts.URL, "repository": "acme/app", "ref": "refs/heads/main",
			"jti": "same-jti", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	}
	k8sTok := k8s.token(t, "k8s-1", k8sClaims(nil))
	ghTok := gh.token(t, "gh-1", ghClaims("repo:acme/app:ref:refs/heads/main"))

	for _, tc := range []struct {
		name, clientID, assertion, want string
	}{
		{"kubernetes without client_id", "", k8sTok, "billing"},
		{"kubernetes with client_id", "billing", k8sTok, "billing"},
		{"kubernetes again (not one-time)", "", k8sTok, "billing"},
		{"spiffe", "", svid, "payments"},
		{"github through a pattern", "", ghTok, "deployer"},
		{"github again, same jti", "", ghTok, "deployer"},
		{"twins named by client_id", "twin-b", k8s.token(t, "k8s-1", k8sClaims(map[string]any{"sub": "system:serviceaccount:prod:twin"})), "twin-b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := workloadClient(ts, tc.clientID, tc.assertion).Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if c := verify(t, ts, tok.AccessToken); c.Subject != tc.want || c.ClientID != tc.want {
				t.Fatalf("claims %+v, want the client %s", c, tc.want)
			}
		})
	}
	tok, err := workloadClient(ts, "", k8sTok).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{{"/oauth2/introspect", `"active":true`}, {"/oauth2/revoke", ""}} {
		v := assertionForm("", k8sTok)
		v.Del("grant_type")
		v.Set("token", tok.AccessToken)
		r := ts.postTo(t, tc.path, v.Encode())
		if r.Status != http.StatusOK || !strings.Contains(r.RawBody, tc.want) {
			t.Fatalf("%s: %d %s", tc.path, r.Status, r.RawBody)
		}
	}

	// Refusals.
	stranger := newPlatform(t)
	stranger.addKey(t, "k8s-1", jose.RS256)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubDER, err := x509.MarshalPKIXPublicKey(ghKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	ghHS256 := signWith(t, jose.HS256, pubDER, "gh-1", gh.withIss(ghClaims("repo:acme/app:ref:refs/heads/main")))
	none := func(claims map[string]any) string {
		h, _ := json.Marshal(map[string]string{"alg": "none", "kid": "gh-1"})
		c, _ := json.Marshal(claims)
		return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
	}
	for _, tc := range []struct {
		name, clientID, assertion, want string
	}{
		{"issuer not trusted", "", stranger.token(t, "k8s-1", k8sClaims(nil)), "is not one"},
		{"wrong iss for the key", "", signWith(t, jose.RS256, otherKey, "k8s-1", k8s.withIss(k8sClaims(nil))), "signature does not verify"},
		{"subject not listed", "", k8s.token(t, "k8s-1", k8sClaims(map[string]any{"sub": "system:serviceaccount:prod:other"})), "no client lists"},
		{"subject of another client", "payments", k8sTok, "is not one of the client's federated_identities"},
		{"github prefix trap", "", gh.token(t, "gh-1", ghClaims("repo:acme/app-evil:ref:refs/heads/main")), "no client lists"},
		{"wrong aud", "", k8s.token(t, "k8s-1", k8sClaims(map[string]any{"aud": "https://other.example"})), "aud must name one of"},
		{"default aud is the server", "", gh.token(t, "gh-1", map[string]any{"sub": "repo:acme/app:ref:refs/heads/main", "aud": "tokensmith", "exp": now.Add(time.Minute).Unix()}), "aud must name one of"},
		{"expired", "", k8s.token(t, "k8s-1", k8sClaims(map[string]any{"exp": now.Add(-time.Minute).Unix()})), "expired"},
		{"exp missing", "", k8s.token(t, "k8s-1", k8sClaims(map[string]any{"exp": nil})), "exp is missing"},
		{"exp too far ahead", "", k8s.token(t, "k8s-1", k8sClaims(map[string]any{"exp": now.Add(48 * time.Hour).Unix()})), "more than 24h0m0s ahead"},
		{"not valid yet", "", k8s.token(t, "k8s-1", k8sClaims(map[string]any{"nbf": now.Add(time.Hour).Unix()})), "nbf"},
		{"unknown kid", "", signWith(t, jose.RS256, otherKey, "k8s-9", k8s.withIss(k8sClaims(nil))), `no key of the issuer`},
		{"no kid", "", signWith(t, jose.RS256, otherKey, "", k8s.withIss(k8sClaims(nil))), "names no key"},
		{"alg none", "", none(gh.withIss(ghClaims("repo:acme/app:ref:refs/heads/main"))), "alg"},
		{"HS256 keyed with the public key", "", ghHS256, "alg"},
		{"alg not the key's", "", signWith(t, jose.PS256, ghKey, "gh-1", gh.withIss(ghClaims("repo:acme/app:ref:refs/heads/main"))), "is for RS256"},
		{"two clients, no client_id", "", k8s.token(t, "k8s-1", k8sClaims(map[string]any{"sub": "system:serviceaccount:prod:twin"})), "2 clients list"},
		{"sub too long", "", k8s.token(t, "k8s-1", k8sClaims(map[string]any{"sub": strings.Repeat("a", 513)})), "sub must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.postTo(t, "/oauth2/token", assertionForm(tc.clientID, tc.assertion).Encode())
			if r.Status != http.StatusUnauthorized || r.str("error") != protocol.InvalidClient || !strings.Contains(r.str("error_description"), tc.want) {
				t.Fatalf("%d %s, want 401 invalid_client naming %q", r.Status, r.RawBody, tc.want)
			}
			if strings.Contains(r.RawBody, tc.assertion) {
				t.Fatal("the answer echoes the token")
			}
		})
	}

	// The issuer's JWKS down: the cached key keeps working, a new kid is refused saying why.
	k8s.addKey(t, "k8s-2", jose.RS256)
	k8s.down.Store(true)
	if _, err := workloadClient(ts, "", k8sTok).Token(context.Background()); err != nil {
		t.Fatalf("a cached key while the JWKS is down: %v", err)
	}
	ts.Clock.Advance(time.Minute) // past the refetch interval
	r := ts.postTo(t, "/oauth2/token", assertionForm("", k8s.token(t, "k8s-2", k8sClaims(map[string]any{"exp": ts.Clock.Now().Add(time.Hour).Unix()}))).Encode())
	if r.Status != http.StatusUnauthorized || !strings.Contains(r.str("error_description"), "cannot be fetched") {
		t.Fatalf("an uncached kid while the JWKS is down: %d %s", r.Status, r.RawBody)
	}
	k8s.down.Store(false)

	// Deleting the trusted issuer ends its workloads' access at once.
	list := ts.admin(t, "GET", "/admin/trusted-issuers", "")
	var issuers []struct{ ID, Issuer string }
	if err := json.Unmarshal([]byte(list.RawBody), &issuers); err != nil {
		t.Fatalf("%v: %s", err, list.RawBody)
	}
	for _, ti := range issuers {
		if ti.Issuer == gh.URL {
			if d := ts.admin(t, "DELETE", "/admin/trusted-issuers/"+ti.ID, ""); d.Status != http.StatusNoContent {
				t.Fatalf("delete: %d %s", d.Status, d.RawBody)
			}
		}
	}
	r = ts.postTo(t, "/oauth2/token", assertionForm("", ghTok).Encode())
	if r.Status != http.StatusUnauthorized || !strings.Contains(r.str("error_description"), "trusted issuer") {
		t.Fatalf("a deleted issuer's token: %d %s", r.Status, r.RawBody)
	}

	// The audit trail: issued events name the workload, refusals their reason.
	_, events := ts.auditTrail(t)
	var issued, refused int
	for _, e := range events {
		switch {
		case e.Kind == audit.TokenIssued && e.ClientID == "deployer":
			issued++
			if e.ExternalIssuer != gh.URL || e.ExternalSubject != "repo:acme/app:ref:refs/heads/main" {
				t.Errorf("token.issued %+v lacks the workload", e)
			}
		case e.Kind == audit.TokenRefused && strings.HasPrefix(e.Reason, "client assertion: "):
			refused++
		}
	}
	if issued == 0 || refused < 18 {
		t.Errorf("audit: %d issued to deployer, %d refusals; want some and at least 18", issued, refused)
	}
}

// TestFederatedIssuerDeletedOnEveryReplica: two replicas share Redis and cache clients and
// trusted issuers for an hour; a trusted issuer deleted on one stops working on the other
// through the change feed, not when its cache expires.
func TestFederatedIssuerDeletedOnEveryReplica(t *testing.T) {
	srv := redistest.Start(t)
	open := func() *testServer {
		s, err := redis.Open(context.Background(), srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		return newTestServer(t, withStore(s), withClientCache(time.Hour), withReplicas(2))
	}
	a, b := open(), open()
	k8s := newPlatform(t)
	k8s.addKey(t, "k1", jose.ES256)
	ti := a.admin(t, "POST", "/admin/trusted-issuers", `{"issuer":"`+k8s.URL+`","audiences":["tokensmith"]}`)
	if ti.Status != http.StatusCreated {
		t.Fatalf("%d %s", ti.Status, ti.RawBody)
	}
	if r := a.admin(t, "POST", "/admin/clients", `{"client_id":"w","federated_identities":[{"issuer":"`+k8s.URL+`","subject":"system:serviceaccount:ns:w"}]}`); r.Status != http.StatusCreated {
		t.Fatalf("%d %s", r.Status, r.RawBody)
	}
	tok := k8s.token(t, "k1", map[string]any{"sub": "system:serviceaccount:ns:w", "aud": "tokensmith", "exp": time.Now().Add(time.Hour).Unix()})
	for _, ts := range []*testServer{a, b, b} {
		if r := ts.postTo(t, "/oauth2/token", assertionForm("", tok).Encode()); r.Status != http.StatusOK {
			t.Fatalf("before the delete: %d %s", r.Status, r.RawBody)
		}
	}
	if d := a.admin(t, "DELETE", "/admin/trusted-issuers/"+ti.str("id"), ""); d.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", d.Status, d.RawBody)
	}
	// The feed is asynchronous: wait for it, far less than the hour the cache would keep the issuer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := b.postTo(t, "/oauth2/token", assertionForm("", tok).Encode())
		if r.Status == http.StatusUnauthorized && strings.Contains(r.str("error_description"), "trusted issuer") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other replica still answers %d %s", r.Status, r.RawBody)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := a.postTo(t, "/oauth2/token", assertionForm("", tok).Encode()); r.Status != http.StatusUnauthorized {
		t.Fatalf("the deleting replica: %d %s", r.Status, r.RawBody)
	}
}

// TestFederatedClientPoolAndQuota: a client that workloads authenticate as gets the reuse pool
// and the quotas of any other client: the same token again while it has life left, and a
// refusal past its daily limit, whether the workload named the client or not.
func TestFederatedClientPoolAndQuota(t *testing.T) {
	ts := newTestServer(t)
	k8s := newPlatform(t)
	k8s.addKey(t, "k1", jose.ES256)
	if r := ts.admin(t, "POST", "/admin/trusted-issuers", `{"issuer":"`+k8s.URL+`","audiences":["tokensmith"]}`); r.Status != http.StatusCreated {
		t.Fatalf("%d %s", r.Status, r.RawBody)
	}
	for _, body := range []string{
		`{"client_id":"pooled","reuse":true,"federated_identities":[{"issuer":"` + k8s.URL + `","subject":"system:serviceaccount:ns:pooled"}]}`,
		`{"client_id":"limited","daily_limit":1,"federated_identities":[{"issuer":"` + k8s.URL + `","subject":"system:serviceaccount:ns:limited"}]}`,
	} {
		if r := ts.admin(t, "POST", "/admin/clients", body); r.Status != http.StatusCreated {
			t.Fatalf("%d %s", r.Status, r.RawBody)
		}
	}
	token := func(sa string) string {
		return k8s.token(t, "k1", map[string]any{"sub": "system:serviceaccount:ns:" + sa, "aud": "tokensmith", "exp": ts.Clock.Now().Add(time.Hour).Unix()})
	}
	first := ts.postTo(t, "/oauth2/token", assertionForm("", token("pooled")).Encode())
	second := ts.postTo(t, "/oauth2/token", assertionForm("pooled", token("pooled")).Encode())
	if first.Status != http.StatusOK || second.Status != http.StatusOK || first.str("access_token") != second.str("access_token") {
		t.Fatalf("reuse: %d %s / %d %s, want the same token twice", first.Status, first.RawBody, second.Status, second.RawBody)
	}
	if r := ts.postTo(t, "/oauth2/token", assertionForm("", token("limited")).Encode()); r.Status != http.StatusOK {
		t.Fatalf("first token of the day: %d %s", r.Status, r.RawBody)
	}
	if r := ts.postTo(t, "/oauth2/token", assertionForm("limited", token("limited")).Encode()); r.Status != http.StatusTooManyRequests {
		t.Fatalf("past the daily limit: %d %s, want 429", r.Status, r.RawBody)
	}
}
