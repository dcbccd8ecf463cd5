package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// TestDPoPAcrossReplicas: two replicas behind one issuer URL share what DPoP needs: a nonce one
// hands out is good on the other, and a proof accepted by one is refused by the other. The
// proofs are built with golang-jwt and a hand-written JWK, not with Tokensmith's dpop package.
func TestDPoPAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	const issuer = "https://auth.example.test"
	var ps []*proc
	for range 2 {
		ps = append(ps, start(t, t.TempDir(), "TOKENSMITH_STORAGE="+srv.URL(), "TOKENSMITH_ADMIN_TOKEN="+sharedAdminToken,
			"TOKENSMITH_REPLICA_TIMEOUT=3s", "TOKENSMITH_LOG_LEVEL=warn", "TOKENSMITH_ISSUER="+issuer))
	}
	id, sec := createClient(t, ps[0], `{"dpop_nonce_required":true}`)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := key.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	x, y := b64(raw[1:33]), b64(raw[33:])
	sum := sha256.Sum256(fmt.Appendf(nil, `{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, x, y)) // RFC 7638
	thumbprint := b64(sum[:])
	proof := func(jti, nonce string) string {
		claims := jwt.MapClaims{"jti": jti, "htm": "POST", "htu": issuer + "/oauth2/token", "iat": time.Now().Unix()}
		if nonce != "" {
			claims["nonce"] = nonce
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
		tok.Header["typ"] = "dpop+jwt"
		tok.Header["jwk"] = map[string]string{"kty": "EC", "crv": "P-256", "x": x, "y": y}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	type answer struct {
		status int
		nonce  string
		body   map[string]any
	}
	post := func(p *proc, path, body, proof string) answer {
		req, _ := http.NewRequest("POST", p.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a answer
		a.status, a.nonce = resp.StatusCode, resp.Header.Get("DPoP-Nonce")
		_ = json.NewDecoder(resp.Body).Decode(&a.body)
		return a
	}

	asked := post(ps[0], "/oauth2/token", "grant_type=client_credentials", proof("first", ""))
	if asked.status != 400 || asked.body["error"] != "use_dpop_nonce" || asked.nonce == "" {
		t.Fatalf("a proof without a nonce on replica 0: %d %v (DPoP-Nonce %q)", asked.status, asked.body, asked.nonce)
	}
	withNonce := proof("second", asked.nonce)
	got := post(ps[1], "/oauth2/token", "grant_type=client_credentials", withNonce)
	if got.status != 200 || got.body["token_type"] != "DPoP" {
		t.Fatalf("replica 0's nonce on replica 1: %d %v", got.status, got.body)
	}
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(got.body["access_token"].(string), ".")[1])
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Cnf.JKT != thumbprint {
		t.Fatalf("cnf.jkt %q, want the key's RFC 7638 thumbprint %q", claims.Cnf.JKT, thumbprint)
	}
	if again := post(ps[0], "/oauth2/token", "grant_type=client_credentials", withNonce); again.status != 400 ||
		again.body["error"] != "invalid_dpop_proof" || !strings.Contains(fmt.Sprint(again.body["error_description"]), "used before") {
		t.Fatalf("the same proof on replica 0: %d %v", again.status, again.body)
	}
	in := post(ps[0], "/oauth2/introspect", url.Values{"token": {got.body["access_token"].(string)}}.Encode(), "")
	cnf, _ := in.body["cnf"].(map[string]any)
	if in.status != 200 || in.body["token_type"] != "DPoP" || cnf["jkt"] != thumbprint {
		t.Fatalf("introspection on replica 0: %d %v", in.status, in.body)
	}
}
