package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/tokensmith/tokensmith/dpop"
)

const allAlgs = `algs="RS256 PS256 ES256 EdDSA"`

func newDPoPSigner(t testing.TB) *dpop.Signer {
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

// TestDPoP sends DPoP-bound and bearer tokens, with proofs right and wrong, through the
// middleware on a loopback server, and checks each answer: status, the challenge (a DPoP
// challenge with the accepted algorithms wherever DPoP was used or is needed) and the reason.
func TestDPoP(t *testing.T) {
	a := newAuthServer(t)
	ks := testKeys()
	a.publish("kid0", ks[0])
	v, clk := newVerifier(t, a, nil)
	now := clk.Now()
	key, other := newDPoPSigner(t), newDPoPSigner(t)
	bound := sign(t, jose.RS256, ks[0], "kid0", with(goodClaims(a, now), map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}), nil)
	bearer := sign(t, jose.RS256, ks[0], "kid0", goodClaims(a, now), nil)

	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {
		c, _ := FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(c.Confirmation)
	}
	mux.Handle("/orders", v.Middleware()(http.HandlerFunc(ok)))
	mux.Handle("/bound-only", v.Middleware(RequireBinding())(http.HandlerFunc(ok)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	proof := func(s *dpop.Signer, method, path, tok string) string {
		p, err := s.Proof(method, srv.URL+path, tok)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	replayed := proof(key, "GET", "/orders", bound)

	for _, tc := range []struct {
		name      string
		path      string
		auth      string
		proofs    []string
		status    int
		challenge string
		reason    error
	}{
		{name: "bound token with its proof", auth: "DPoP " + bound, proofs: []string{replayed}, status: 200},
		{name: "the same proof again", auth: "DPoP " + bound, proofs: []string{replayed}, status: 401,
			challenge: `DPoP realm="orders", error="invalid_dpop_proof", error_description="the DPoP proof was used before: sign a new one for every request", ` + allAlgs,
			reason:    ErrProof},
		{name: "bound token sent as Bearer", auth: "Bearer " + bound, status: 401,
			challenge: `DPoP realm="orders", error="invalid_token", error_description="the token is bound to a DPoP key: send it as Authorization: DPoP with a proof", ` + allAlgs,
			reason:    ErrBinding},
		{name: "bound token sent as Bearer with a proof", auth: "Bearer " + bound, proofs: []string{proof(key, "GET", "/orders", bound)}, status: 401, reason: ErrBinding},
		{name: "no proof", auth: "DPoP " + bound, status: 401,
			challenge: `DPoP realm="orders", error="invalid_dpop_proof", error_description="the request carries no DPoP proof", ` + allAlgs,
			reason:    ErrProof},
		{name: "two proofs", auth: "DPoP " + bound, proofs: []string{proof(key, "GET", "/orders", bound), proof(key, "GET", "/orders", bound)},
			status: 401, reason: ErrProof},
		{name: "proof by another key", auth: "DPoP " + bound, proofs: []string{proof(other, "GET", "/orders", bound)}, status: 401,
			challenge: `DPoP realm="orders", error="invalid_dpop_proof", error_description="the DPoP proof is signed by another key than the one the token is bound to", ` + allAlgs,
			reason:    ErrProof},
		{name: "proof for another method", auth: "DPoP " + bound, proofs: []string{proof(key, "POST", "/orders", bound)}, status: 401, reason: ErrProof},
		{name: "proof for another path", auth: "DPoP " + bound, proofs: []string{proof(key, "GET", "/refunds", bound)}, status: 401, reason: ErrProof},
		{name: "proof for another token", auth: "DPoP " + bound, proofs: []string{proof(key, "GET", "/orders", bearer)}, status: 401,
			challenge: `DPoP realm="orders", error="invalid_dpop_proof", error_description="DPoP proof: ath is not the hash of the access token sent", ` + allAlgs,
			reason:    ErrProof},
		{name: "proof without ath", auth: "DPoP " + bound, proofs: []string{proof(key, "GET", "/orders", "")}, status: 401, reason: ErrProof},
		{name: "not a proof", auth: "DPoP " + bound, proofs: []string{bearer}, status: 401, reason: ErrProof},
		{name: "unbound token sent as DPoP", auth: "DPoP " + bearer, proofs: []string{proof(key, "GET", "/orders", bearer)}, status: 401,
			challenge: `DPoP realm="orders", error="invalid_token", error_description="the token is not bound to a DPoP key: send it as Bearer", ` + allAlgs,
			reason:    ErrBinding},
		{name: "a forged token with a good proof", auth: "DPoP " + bound[:len(bound)-4] + "AAAA", proofs: []string{proof(key, "GET", "/orders", bound[:len(bound)-4]+"AAAA")},
			status: 401, challenge: `DPoP realm="orders", error="invalid_token", error_description="the token signature is invalid", ` + allAlgs, reason: ErrSignature},
		{name: "bearer token on a plain route", auth: "Bearer " + bearer, status: 200},

		{name: "binding required: bound token", path: "/bound-only", auth: "DPoP " + bound, proofs: []string{proof(key, "GET", "/bound-only", bound)}, status: 200},
		{name: "binding required: bearer token", path: "/bound-only", auth: "Bearer " + bearer, status: 401,
			challenge: `DPoP realm="orders", error="invalid_token", error_description="this API accepts only sender-constrained tokens (DPoP or a client certificate)", ` + allAlgs,
			reason:    ErrBinding},
		{name: "binding required: no token", path: "/bound-only", status: 401, challenge: `DPoP realm="orders", ` + allAlgs, reason: ErrNoToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/orders"
			}
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			for _, p := range tc.proofs {
				req.Header.Add(dpop.Header, p)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.challenge != "" && resp.Header.Get("WWW-Authenticate") != tc.challenge {
				t.Fatalf("challenge\n %s\nwant\n %s", resp.Header.Get("WWW-Authenticate"), tc.challenge)
			}
			if tc.status == 200 {
				var c Confirmation
				if json.Unmarshal(body, &c) != nil || (strings.HasPrefix(tc.auth, "DPoP") && c.JKT != key.Thumbprint()) {
					t.Fatalf("claims' confirmation %s", body)
				}
				return
			}
			req, _ = http.NewRequest("GET", srv.URL+path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			for _, p := range tc.proofs {
				req.Header.Add(dpop.Header, p)
			}
			if _, err := v.Route(routeOpts(path)...).Authenticate(req); !errors.Is(err, tc.reason) {
				t.Fatalf("reason %v, want %v", err, tc.reason)
			}
		})
	}

	t.Run("the dpop client transport", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL+"/bound-only?page=2", nil)
		req.Header.Set("Authorization", "DPoP "+bound)
		resp, err := (&http.Client{Transport: key.Transport(nil)}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func routeOpts(path string) []Option {
	if path == "/bound-only" {
		return []Option{RequireBinding()}
	}
	return nil
}

// TestDPoPExternalURL: behind a proxy the proof names the URL the caller used, which the API
// is told; the address the request reached is not accepted in its place.
func TestDPoPExternalURL(t *testing.T) {
	a := newAuthServer(t)
	ks := testKeys()
	a.publish("kid0", ks[0])
	const external = "https://api.example.test/v1"
	v, clk := newVerifier(t, a, func(c *Config) { c.DPoP.ExternalURL = external })
	key := newDPoPSigner(t)
	tok := sign(t, jose.RS256, ks[0], "kid0", with(goodClaims(a, clk.Now()), map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}), nil)
	for _, tc := range []struct {
		url string
		ok  bool
	}{{external + "/orders", true}, {"http://127.0.0.1:8080/orders", false}, {"https://api.example.test/orders", false}} {
		p, _ := key.Proof("GET", tc.url, tok)
		req := httptest.NewRequest("GET", "http://127.0.0.1:8080/orders", nil)
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set(dpop.Header, p)
		_, err := v.Route().Authenticate(req)
		if (err == nil) != tc.ok {
			t.Fatalf("proof for %s: %v", tc.url, err)
		}
	}
	if _, err := New(Config{Issuer: a.URL, Audience: []string{testAudience}, DPoP: DPoPConfig{ExternalURL: "api.example.test", Algorithms: []string{"HS256"}}}); err == nil ||
		!strings.Contains(err.Error(), "DPoP.ExternalURL") || !strings.Contains(err.Error(), "DPoP.Algorithms") {
		t.Fatalf("config refused with %v", err)
	}
}

// TestDPoPIntrospected: a route that asks the authorization server takes cnf and the DPoP
// token_type from its answer.
func TestDPoPIntrospected(t *testing.T) {
	a := newAuthServer(t)
	v, clk := newVerifier(t, a, func(c *Config) {
		c.Introspection = IntrospectionConfig{ClientID: resourceID, ClientSecret: resourceSecret}
	})
	key := newDPoPSigner(t)
	a.answer("opaque-bound", map[string]any{"active": true, "token_type": "DPoP", "iss": a.URL, "aud": testAudience,
		"sub": "client-1", "client_id": "client-1", "exp": clk.Now().Add(time.Hour).Unix(), "cnf": map[string]string{"jkt": key.Thumbprint()}})
	rt := v.Route(IntrospectOnly())
	req := httptest.NewRequest("GET", "http://api.test/orders", nil)
	req.Header.Set("Authorization", "Bearer opaque-bound")
	if _, err := rt.Authenticate(req); !errors.Is(err, ErrBinding) {
		t.Fatalf("bound token as Bearer: %v", err)
	}
	p, _ := key.Proof("GET", "http://api.test/orders", "opaque-bound")
	req.Header.Set("Authorization", "DPoP opaque-bound")
	req.Header.Set(dpop.Header, p)
	c, err := rt.Authenticate(req)
	if err != nil || c.Confirmation.JKT != key.Thumbprint() {
		t.Fatalf("bound token with its proof: %v %+v", err, c)
	}
}

// TestCertificateBound: a token with cnf x5t#S256 is accepted over a TLS connection that
// presented that certificate, and refused without it or with another.
func TestCertificateBound(t *testing.T) {
	a := newAuthServer(t)
	ks := testKeys()
	a.publish("kid0", ks[0])
	v, clk := newVerifier(t, a, nil)
	mine, theirs := selfSigned(t, "mine"), selfSigned(t, "theirs")
	sum := sha256.Sum256(mine.Certificate[0])
	tok := sign(t, jose.RS256, ks[0], "kid0", with(goodClaims(a, clk.Now()), map[string]any{"cnf": map[string]string{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}}), nil)

	srv := httptest.NewUnstartedServer(v.Middleware(RequireBinding())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		certs  []tls.Certificate
		status int
		desc   string
	}{
		{"its certificate", []tls.Certificate{mine}, 200, ""},
		{"another certificate", []tls.Certificate{theirs}, 401, "the token is bound to another client certificate than the connection's"},
		{"no certificate", nil, 401, "the token is bound to a client certificate, and the connection presented none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.TLSClientConfig.Certificates = tc.certs
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(resp.Header.Get("WWW-Authenticate"), tc.desc) {
				t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// BenchmarkAuthenticate: what a resource server spends on one request with a bearer token and
// with a DPoP-bound token and its proof (keys cached; the proof's jti goes to the memory
// replay cache).
func BenchmarkAuthenticate(b *testing.B) {
	a := newAuthServer(b)
	ks := testKeys()
	a.publish("kid0", ks[0])
	v, err := New(Config{Issuer: a.URL, Audience: []string{testAudience}})
	if err != nil {
		b.Fatal(err)
	}
	key := newDPoPSigner(b)
	now := time.Now()
	bearer := sign(b, jose.RS256, ks[0], "kid0", goodClaims(a, now), nil)
	bound := sign(b, jose.RS256, ks[0], "kid0", with(goodClaims(a, now), map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}), nil)
	rt := v.Route()
	b.Run("bearer", func(b *testing.B) {
		req := httptest.NewRequest("GET", "https://api.example.test/orders", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		for b.Loop() {
			if _, err := rt.Authenticate(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dpop", func(b *testing.B) {
		// Proofs are made outside the timer: their cost is the client's.
		proofs := make([]string, 0, 1024)
		next := 0
		for b.Loop() {
			if next == len(proofs) {
				b.StopTimer()
				proofs, next = proofs[:0], 0
				for range cap(proofs) {
					p, err := key.Proof("GET", "https://api.example.test/orders", bound)
					if err != nil {
						b.Fatal(err)
					}
					proofs = append(proofs, p)
				}
				b.StartTimer()
			}
			req := httptest.NewRequest("GET", "https://api.example.test/orders", nil)
			req.Header.Set("Authorization", "DPoP "+bound)
			req.Header.Set(dpop.Header, proofs[next])
			next++
			if _, err := rt.Authenticate(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
