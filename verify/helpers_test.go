package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/tokensmith/tokensmith/internal/testclock"
)

const (
	testAudience = "https://api.example.test"
	testRealm    = "orders"
)

// testKeys are generated once per test binary: RSA key generation is slow under -race, and
// nothing in a test depends on which keys they are.
var testKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	ks := make([]*rsa.PrivateKey, 3)
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ks[i] = k
	}
	return ks
})

// curveKeys are a P-256 key, an Ed25519 key and a P-384 key.
func curveKeys() (*ecdsa.PrivateKey, ed25519.PrivateKey, *ecdsa.PrivateKey) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return ec, ed, p384
}

// authServer is a stand-in authorization server on loopback: metadata, a JWKS whose keys,
// cache header and health the test changes, and a count of JWKS requests.
type authServer struct {
	*httptest.Server
	mu          sync.Mutex
	keys        map[string]jose.JSONWebKey
	down        bool
	cacheHeader string
	delay       time.Duration
	jwksHits    atomic.Int64
	// jwks, when set, is served as the JWKS instead of keys.
	jwks []byte

	// Introspection: answers by token, for the client resourceID:resourceSecret only.
	answers   map[string]map[string]any
	asked     atomic.Int64
	askedDown bool
}

const (
	resourceID     = "orders api"
	resourceSecret = "s3cret:+/="
)

func newAuthServer(t testing.TB) *authServer {
	t.Helper()
	a := &authServer{keys: map[string]jose.JSONWebKey{}, cacheHeader: "public, max-age=300"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": a.URL, "jwks_uri": a.URL + "/.well-known/jwks.json",
			"introspection_endpoint": a.URL + "/oauth2/introspect"})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		a.jwksHits.Add(1)
		a.mu.Lock()
		down, delay, cc, raw := a.down, a.delay, a.cacheHeader, a.jwks
		set := jose.JSONWebKeySet{}
		for _, k := range a.keys {
			set.Keys = append(set.Keys, k)
		}
		a.mu.Unlock()
		time.Sleep(delay)
		if down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Cache-Control", cc)
		if raw != nil {
			_, _ = w.Write(raw)
			return
		}
		_ = json.NewEncoder(w).Encode(set)
	})
	mux.HandleFunc("POST /oauth2/introspect", func(w http.ResponseWriter, r *http.Request) {
		a.asked.Add(1)
		a.mu.Lock()
		down, answer := a.askedDown, a.answers[r.PostFormValue("token")]
		a.mu.Unlock()
		// RFC 6749 §2.3.1: both halves form-encoded before Basic.
		id, secret, _ := r.BasicAuth()
		if id != url.QueryEscape(resourceID) || secret != url.QueryEscape(resourceSecret) {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		if down {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		if answer == nil {
			answer = map[string]any{"active": false}
		}
		_ = json.NewEncoder(w).Encode(answer)
	})
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	return a
}

// publish puts k's public half in the JWKS for RS256.
func (a *authServer) publish(kid string, k *rsa.PrivateKey) { a.publishFor(kid, "RS256", k) }

// publishFor puts k's public half in the JWKS with alg (none when empty).
func (a *authServer) publishFor(kid, alg string, k crypto.Signer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys[kid] = jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
}

func (a *authServer) answer(token string, answer map[string]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.answers == nil {
		a.answers = map[string]map[string]any{}
	}
	a.answers[token] = answer
}

func (a *authServer) setDown(down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.down = down
}

// newVerifier returns a Verifier for a, on a clock the test controls.
func newVerifier(t *testing.T, a *authServer, edit func(*Config)) (*Verifier, *testclock.Clock) {
	t.Helper()
	cfg := Config{Issuer: a.URL, Audience: []string{testAudience}, Realm: testRealm}
	if edit != nil {
		edit(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := testclock.New(time.Now())
	v.now = c.Now
	return v, c
}

// claims are the claims of a good token issued by a, edited per test.
func goodClaims(a *authServer, now time.Time) map[string]any {
	return map[string]any{
		"iss": a.URL, "sub": "client-1", "aud": testAudience, "client_id": "client-1",
		"scope": "orders:read orders:write", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "jti-1",
	}
}

func with(base map[string]any, edits map[string]any) map[string]any {
	out := maps.Clone(base)
	for k, v := range edits {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// sign signs claims with key as alg, with header fields typ at+jwt and kid plus extra.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unsigned builds a compact JWS by hand from a header, claims and signature bytes: for tokens
// no honest library would make (alg none) and for floods where a valid signature is beside
// the point.
func unsigned(header map[string]any, claims map[string]any, sig []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	e := base64.RawURLEncoding
	return e.EncodeToString(h) + "." + e.EncodeToString(c) + "." + e.EncodeToString(sig)
}
