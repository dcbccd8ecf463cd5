package ginverify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/tokensmith/tokensmith/dpop"
	"github.com/tokensmith/tokensmith/verify"
	"github.com/tokensmith/tokensmith/verify/ginverify"
)

const audience = "https://api.example.test"

// TestRequire: the Gin middleware lets a good token through with its claims, and answers the
// others exactly like the net/http one, without running the handler.
func TestRequire(t *testing.T) {
	gin.SetMode(gin.TestMode)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	}))
	defer jwks.Close()
	v, err := verify.New(verify.Config{Issuer: "https://auth.example.test", JWKSURL: jwks.URL, Audience: []string{audience}, Realm: "api"})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	holder, err := dpop.NewSigner(ec)
	if err != nil {
		t.Fatal(err)
	}
	var cnf map[string]string // the next token's binding
	token := func(scope string) string {
		now := time.Now()
		payload, _ := json.Marshal(map[string]any{"iss": "https://auth.example.test", "sub": "c1", "aud": audience, "client_id": "c1",
			"scope": scope, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1", "cnf": cnf})
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}

	r := gin.New()
	r.GET("/orders", ginverify.Require(v, verify.Scopes("orders:read"), verify.TokenHeader(verify.EvotorHeader)), func(c *gin.Context) {
		claims, ok := ginverify.Claims(c)
		if !ok {
			t.Error("no claims")
		}
		c.String(200, "orders of %s", claims.ClientID)
	})
	r.GET("/bound", ginverify.Require(v, verify.RequireBinding()), func(c *gin.Context) {
		claims, _ := ginverify.Claims(c)
		c.String(200, "bound to %s", claims.Confirmation.JKT)
	})
	api := httptest.NewServer(r)
	defer api.Close()
	bearer := token("orders:read")
	cnf = map[string]string{"jkt": holder.Thumbprint()}
	bound := token("orders:read")

	for _, tc := range []struct {
		name      string
		header    string
		value     string
		status    int
		challenge string
		body      string
		path      string // /orders when empty
		proof     bool   // sign a DPoP proof for the token
	}{
		{"good token", "Authorization", "Bearer " + bearer, 200, "", "orders of c1", "", false},
		{"Evotor header", "X-Authorization", bearer, 200, "", "orders of c1", "", false},
		{"no token", "", "", 401, `Bearer realm="api"`, `{"error_description":"the request carries no access token"}` + "\n", "", false},
		{"missing scope", "Authorization", "Bearer " + func() string { cnf = nil; return token("orders:write") }(), 403,
			`Bearer realm="api", error="insufficient_scope", error_description="the token lacks the scope orders:read", scope="orders:read"`,
			`{"error":"insufficient_scope","error_description":"the token lacks the scope orders:read"}` + "\n", "", false},
		{"DPoP-bound token with its proof", "Authorization", "DPoP " + bound, 200, "", "bound to " + holder.Thumbprint(), "/bound", true},
		{"DPoP-bound token as Bearer", "Authorization", "Bearer " + bound, 401,
			`DPoP realm="api", error="invalid_token", error_description="the token is bound to a DPoP key: send it as Authorization: DPoP with a proof", algs="RS256 PS256 ES256 EdDSA"`,
			`{"error":"invalid_token","error_description":"the token is bound to a DPoP key: send it as Authorization: DPoP with a proof"}` + "\n", "/bound", false},
		{"bearer token where binding is required", "Authorization", "Bearer " + bearer, 401,
			`DPoP realm="api", error="invalid_token", error_description="this API accepts only sender-constrained tokens (DPoP or a client certificate)", algs="RS256 PS256 ES256 EdDSA"`,
			`{"error":"invalid_token","error_description":"this API accepts only sender-constrained tokens (DPoP or a client certificate)"}` + "\n", "/bound", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/orders"
			}
			req, _ := http.NewRequest("GET", api.URL+path, nil)
			if tc.header != "" {
				req.Header.Set(tc.header, tc.value)
			}
			if tc.proof {
				p, err := holder.Proof("GET", api.URL+path, bound)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set(dpop.Header, p)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("WWW-Authenticate") != tc.challenge || string(body) != tc.body {
				t.Fatalf("got %d %q %s\nwant %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, tc.status, tc.challenge, tc.body)
			}
		})
	}
}

// A Gin API: the same Verifier and options as with net/http.
func ExampleRequire() {
	gin.SetMode(gin.ReleaseMode)
	v, err := verify.New(verify.Config{Issuer: "https://auth.example.com", Audience: []string{"https://api.example.com"}})
	if err != nil {
		log.Fatal(err)
	}
	r := gin.New()
	r.GET("/orders", ginverify.Require(v, verify.Scopes("orders:read")), func(c *gin.Context) {
		claims, _ := ginverify.Claims(c)
		c.JSON(http.StatusOK, gin.H{"client": claims.ClientID})
	})
	api := httptest.NewServer(r)
	defer api.Close()

	resp, err := http.Get(api.URL + "/orders")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	// Output: 401 Bearer realm="https://api.example.com"
}

// TestRequireAlgorithms: a Gin route on a Verifier configured for ES256 and EdDSA lets their
// tokens through and refuses RS256, as the net/http middleware does.
func TestRequireAlgorithms(t *testing.T) {
	gin.SetMode(gin.TestMode)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
	}{"es": {jose.ES256, ec}, "ed": {jose.EdDSA, ed}, "rs": {jose.RS256, rs}}
	var set jose.JSONWebKeySet
	for kid, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: kid, Algorithm: string(k.alg), Use: "sig"})
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(set) }))
	defer jwks.Close()
	v, err := verify.New(verify.Config{Issuer: "https://auth.example.test", JWKSURL: jwks.URL, Audience: []string{audience},
		Realm: "api", Algorithms: []string{"ES256", "EdDSA"}})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.GET("/orders", ginverify.Require(v), func(c *gin.Context) { c.String(200, "ok") })
	api := httptest.NewServer(r)
	defer api.Close()
	for kid, want := range map[string]int{"es": 200, "ed": 200, "rs": 401} {
		k := keys[kid]
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		payload, _ := json.Marshal(map[string]any{"iss": "https://auth.example.test", "sub": "c1", "aud": audience, "client_id": "c1",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1"})
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := jws.CompactSerialize()
		req, _ := http.NewRequest("GET", api.URL+"/orders", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s token: %d, want %d (%s)", k.alg, resp.StatusCode, want, resp.Header.Get("WWW-Authenticate"))
		}
	}
}
