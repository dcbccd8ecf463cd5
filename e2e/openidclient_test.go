package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// openIDClientDir holds the Node.js script that drives Tokensmith with openid-client (npm).
const openIDClientDir = "testdata/openid-client"

// openIDClientNode returns the node binary and the openid-client script, and fails (or skips,
// as nodePackage does) when Node.js is older than undici 7 and openid-client 6 run on.
func openIDClientNode(t *testing.T) (node, script string) {
	t.Helper()
	node, script = nodePackage(t, openIDClientDir, "client.mjs", "openid-client")
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(string(out), "v%d.%d", &major, &minor); err != nil {
		t.Fatalf("node --version printed %q", out)
	}
	if major < 20 || major == 20 && minor < 18 {
		missing := t.Skipf
		if os.Getenv("TOKENSMITH_REQUIRE_NODE") == "1" {
			missing = t.Fatalf
		}
		missing("node %s is too old for openid-client 6 and undici 7: this test needs Node.js 20.18 or later", strings.TrimSpace(string(out)))
	}
	return node, script
}

// openIDClientRun is what testdata/openid-client/client.mjs reports of one run.
type openIDClientRun struct {
	TokenType        string          `json:"token_type"`
	WireTokenType    string          `json:"wire_token_type"`
	AccessToken      string          `json:"access_token"`
	Status           int             `json:"status"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
	DPoPJWK          json.RawMessage `json:"dpop_jwk"`
	TokenRequests    int             `json:"token_endpoint_requests"`
	NonceChallenges  int             `json:"nonce_challenges"`
	Resource         resourceAnswer  `json:"resource"`
	ResourceOtherKey resourceAnswer  `json:"resource_other_key"`
	ResourceAsBearer resourceAnswer  `json:"resource_as_bearer"`
}

// resourceAnswer is a resource server's answer to openid-client's fetchProtectedResource: the
// status, and for a refusal the scheme and error of its WWW-Authenticate challenge.
type resourceAnswer struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	Scheme string `json:"scheme"`
	Error  string `json:"error"`
}

// openIDClient runs the openid-client script with in on stdin and returns its report. The
// script reports the server's refusals; anything else it throws fails the test.
func openIDClient(t *testing.T, node, script string, in map[string]any) openIDClientRun {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	// A guard, not a measure: a script stuck on a connection fails here, not at go test's timeout.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Stdin = strings.NewReader(string(b))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openid-client: %v\n%s%s", err, out, stderr.String())
	}
	var r openIDClientRun
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("openid-client printed %s: %v", out, err)
	}
	t.Logf("openid-client: token_type %q, %d %s %q; %d token requests (%d nonce challenges); resource %+v, with another key %+v, as bearer %+v",
		r.WireTokenType, r.Status, r.Error, r.ErrorDescription, r.TokenRequests, r.NonceChallenges, r.Resource, r.ResourceOtherKey, r.ResourceAsBearer)
	return r
}

// tokenClaims decodes an access token's claims without verifying it: the tests that use it
// check a binding, and the signature is checked by the resource server or not at issue.
func tokenClaims(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatalf("access token %q: %v", token, err)
	}
	return claims
}

// registerClient creates a client through p's admin API over p's own HTTP client (which
// trusts the development certificate) and returns its id and secret (none for a client
// without one).
func registerClient(t *testing.T, p *proc, body string) (id, secret string) {
	t.Helper()
	req, _ := http.NewRequest("POST", p.adminURL+"/admin/clients", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sharedAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 201 {
		var e map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("create client %s: %d %v", body, resp.StatusCode, e)
	}
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c.ClientID, c.ClientSecret
}

// launchHTTPS starts the binary serving HTTPS with its development certificate, the issuer
// set to its URL, and extra env; it returns the process and the certificate's PEM.
func launchHTTPS(t *testing.T, env ...string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	certFile := filepath.Join(dir, "data", "dev-cert.pem")
	roots := devCertRoots(certFile)
	p := launch(t, dir, launchOptions{env: append([]string{"TOKENSMITH_DEV_TLS=true", "TOKENSMITH_ADMIN_TOKEN=" + sharedAdminToken}, env...),
		https: true, issuer: true, roots: roots})
	ca, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	return p, string(ca)
}

func newP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestOpenIDClientDPoPWithPrivateKeyJWT: openid-client for Node.js, which shares no code with
// Tokensmith, authenticates with private_key_jwt (PrivateKeyJwt), gets a DPoP-bound token by
// client_credentials with a DPoP handle of its own key, and calls the example resource
// server's route that requires binding (fetchProtectedResource with the handle). For a client
// that must use server nonces, openid-client's own retry on use_dpop_nonce gets the token.
// The same token with another openid-client DPoP key, or as a bearer token, is refused by the
// API; an assertion signed with another key is refused by the server.
func TestOpenIDClientDPoPWithPrivateKeyJWT(t *testing.T) {
	node, script := openIDClientNode(t)
	p, ca := launchHTTPS(t)
	api := startAPI(t, "TOKENSMITH_ISSUER="+p.url, "API_AUDIENCE="+apiAudience, "API_CA_FILE="+filepath.Join(p.dir, "data", "dev-cert.pem"))

	key, wrong := newP256(t), newP256(t)
	jwk := func(k any) jose.JSONWebKey {
		return jose.JSONWebKey{Key: k, KeyID: "node-key", Algorithm: "ES256", Use: "sig"}
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk(&key.PublicKey)}})
	if err != nil {
		t.Fatal(err)
	}
	for id, extra := range map[string]string{"node-dpop": "", "node-dpop-nonce": `,"dpop_nonce_required":true`} {
		registerClient(t, p, `{"client_id":"`+id+`","scopes":["orders:read"],"audience":["`+apiAudience+`"],`+
			`"token_endpoint_auth_method":"private_key_jwt","jwks":`+string(jwks)+`,"dpop_bound_access_tokens":true`+extra+`}`)
	}

	for _, tc := range []struct {
		name, clientID string
		key            *ecdsa.PrivateKey
		// requests to the token endpoint: two when the first answer asks for a nonce.
		requests int
		// err is the refusal expected, why a part of its description.
		err, why string
	}{
		{"private_key_jwt and DPoP", "node-dpop", key, 1, "", ""},
		{"server nonce required: openid-client retries with it", "node-dpop-nonce", key, 2, "", ""},
		{"assertion signed with another key", "node-dpop", wrong, 1, "invalid_client", "signature does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := openIDClient(t, node, script, map[string]any{"issuer": p.url, "ca": ca, "client_id": tc.clientID,
				"auth": "private_key_jwt", "private_jwk": jwk(tc.key), "dpop": true, "scope": "orders:read",
				"resource": api.url + "/bound/orders"})
			if r.TokenRequests != tc.requests || r.NonceChallenges != tc.requests-1 {
				t.Errorf("%d token requests, %d nonce challenges: want %d and %d", r.TokenRequests, r.NonceChallenges, tc.requests, tc.requests-1)
			}
			if tc.err != "" {
				if r.Error != tc.err || r.Status != 401 || !strings.Contains(r.ErrorDescription, tc.why) || r.AccessToken != "" {
					t.Fatalf("got %d %s (%s), token %q: want 401 %s (%s)", r.Status, r.Error, r.ErrorDescription, r.AccessToken, tc.err, tc.why)
				}
				return
			}
			if r.Error != "" || r.WireTokenType != "DPoP" {
				t.Fatalf("got %d %s (%s), token_type %q: want a DPoP token", r.Status, r.Error, r.ErrorDescription, r.WireTokenType)
			}
			var proofKey jose.JSONWebKey
			if err := proofKey.UnmarshalJSON(r.DPoPJWK); err != nil {
				t.Fatalf("openid-client's DPoP key %s: %v", r.DPoPJWK, err)
			}
			sum, err := proofKey.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			claims := tokenClaims(t, r.AccessToken)
			if cnf, _ := claims["cnf"].(map[string]any); cnf["jkt"] != base64.RawURLEncoding.EncodeToString(sum) || claims["client_id"] != tc.clientID {
				t.Fatalf("cnf %v, client_id %v: want the thumbprint of openid-client's DPoP key and %s", claims["cnf"], claims["client_id"], tc.clientID)
			}
			if r.Resource.Status != 200 {
				t.Fatalf("GET /bound/orders with fetchProtectedResource and the DPoP handle: %+v", r.Resource)
			}
			// The same token in another openid-client's hands: refused with a DPoP challenge,
			// naming the proof when it is signed by another key (RFC 9449 §7.1).
			for _, c := range []struct {
				name, err string
				got       resourceAnswer
			}{{"and another DPoP key", "invalid_dpop_proof", r.ResourceOtherKey}, {"as a bearer token", "invalid_token", r.ResourceAsBearer}} {
				if c.got.Status != 401 || !strings.EqualFold(c.got.Scheme, "DPoP") || c.got.Error != c.err {
					t.Errorf("GET /bound/orders with the token %s: %+v, want 401 and a DPoP %s challenge", c.name, c.got, c.err)
				}
			}
		})
	}
}

// TestOpenIDClientMutualTLS: openid-client for Node.js (TlsClientAuth, the mutual-TLS endpoint
// aliases from discovery, undici presenting the certificate) authenticates a tls_client_auth
// client by a certificate from the client CA and a self_signed_tls_client_auth client by its
// self-signed certificate; each gets a token bound to the certificate it presented. Without a
// certificate the client is refused.
func TestOpenIDClientMutualTLS(t *testing.T) {
	node, script := openIDClientNode(t)
	dir := t.TempDir()
	caKey := newP256(t)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "openid-client CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	caFile := filepath.Join(dir, "client-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	type certificate struct {
		der          []byte
		certPEM, key string
		public       crypto.PublicKey
	}
	// issue makes a client certificate for CN=node-orders,O=Example, signed by the CA or by
	// its own key.
	issue := func(selfSigned bool) certificate {
		k := newP256(t)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "node-orders", Organization: []string{"Example"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		parent, signer := caCert, caKey
		if selfSigned {
			parent, signer = tmpl, k
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, signer)
		if err != nil {
			t.Fatal(err)
		}
		pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return certificate{der, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), &k.PublicKey}
	}
	fromCA, selfSigned := issue(false), issue(true)

	p, ca := launchHTTPS(t, "TOKENSMITH_TLS_CLIENT_AUTH=request", "TOKENSMITH_TLS_CLIENT_CA="+caFile)
	registerClient(t, p, `{"client_id":"node-mtls","scopes":["orders:read"],"audience":["`+apiAudience+`"],`+
		`"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=node-orders,O=Example",`+
		`"tls_client_certificate_bound_access_tokens":true}`)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: selfSigned.public, KeyID: "cert-key", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	registerClient(t, p, `{"client_id":"node-self-signed","scopes":["orders:read"],"audience":["`+apiAudience+`"],`+
		`"token_endpoint_auth_method":"self_signed_tls_client_auth","jwks":`+string(jwks)+`,`+
		`"tls_client_certificate_bound_access_tokens":true}`)

	for _, tc := range []struct {
		name, clientID string
		cert           *certificate
		// err is the refusal expected, why a part of its description.
		err, why string
	}{
		{"tls_client_auth: a certificate from the client CA", "node-mtls", &fromCA, "", ""},
		{"self_signed_tls_client_auth: the registered key's certificate", "node-self-signed", &selfSigned, "", ""},
		{"tls_client_auth without a certificate", "node-mtls", nil, "invalid_client", "no client certificate"},
		{"self_signed_tls_client_auth with the CA's certificate of another key", "node-self-signed", &fromCA, "invalid_client", "not in the client's jwks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := map[string]any{"issuer": p.url, "ca": ca, "client_id": tc.clientID, "auth": "tls_client_auth", "scope": "orders:read"}
			if tc.cert != nil {
				in["cert"], in["key"] = tc.cert.certPEM, tc.cert.key
			}
			r := openIDClient(t, node, script, in)
			if r.TokenRequests != 1 {
				t.Errorf("%d token requests, want 1", r.TokenRequests)
			}
			if tc.err != "" {
				if r.Error != tc.err || r.Status != 401 || !strings.Contains(r.ErrorDescription, tc.why) || r.AccessToken != "" {
					t.Fatalf("got %d %s (%s), token %q: want 401 %s (%s)", r.Status, r.Error, r.ErrorDescription, r.AccessToken, tc.err, tc.why)
				}
				return
			}
			if r.Error != "" || r.WireTokenType != "Bearer" {
				t.Fatalf("got %d %s (%s), token_type %q: want a certificate-bound Bearer token", r.Status, r.Error, r.ErrorDescription, r.WireTokenType)
			}
			sum := sha256.Sum256(tc.cert.der)
			claims := tokenClaims(t, r.AccessToken)
			if cnf, _ := claims["cnf"].(map[string]any); cnf["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) || claims["client_id"] != tc.clientID {
				t.Fatalf("cnf %v, client_id %v: want the thumbprint of the certificate openid-client presented and %s", claims["cnf"], claims["client_id"], tc.clientID)
			}
		})
	}
}
