package server_test

import (
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// manyScopes is n distinct scopes of 16 characters.
func manyScopes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("orders:read-%04d", i)
	}
	return out
}

// TestClientsWhoseTokensCannotBeRevokedAreRefused: a client save (create or update) whose scopes
// or audiences could make an access token longer than the revocation and introspection
// endpoints take is refused with 400 naming the field, and changes nothing.
func TestClientsWhoseTokensCannotBeRevokedAreRefused(t *testing.T) {
	ts := newTestServer(t)
	longAud := make([]string, 60)
	for i := range longAud {
		longAud[i] = fmt.Sprintf("https://api-%02d.example.com/%s", i, strings.Repeat("a", 100))
	}
	id, _ := ts.client(t, registry.ClientInput{Scopes: ptr(manyScopes(2))})
	for _, tc := range []struct {
		name, method, path string
		body               map[string]any
		field              string
	}{
		{"create with 900 scopes", "POST", "/admin/clients", map[string]any{"scopes": manyScopes(900)}, "scopes"},
		{"create with long audiences", "POST", "/admin/clients", map[string]any{"audience": longAud}, "audience"},
		{"update to 900 scopes", "PATCH", "/admin/clients/" + id, map[string]any{"scopes": manyScopes(900)}, "scopes"},
		{"update to long audiences", "PATCH", "/admin/clients/" + id, map[string]any{"audience": longAud}, "audience"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := ts.Store.ListClients(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(tc.body)
			r := ts.admin(t, tc.method, tc.path, string(body))
			if r.Status != http.StatusBadRequest || r.str("error") != protocol.InvalidRequest ||
				!strings.HasPrefix(r.str("error_description"), tc.field+":") {
				t.Fatalf("got %d %s, want 400 invalid_request naming %s", r.Status, r.RawBody, tc.field)
			}
			after, err := ts.Store.ListClients(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Fatalf("%d clients, want %d", len(after), len(before))
			}
			if c, err := ts.Store.GetClient(context.Background(), id); err != nil || len(c.Scopes) != 2 || len(c.Audience) != 0 {
				t.Fatalf("the client changed: %+v %v", c, err)
			}
		})
	}
}

// TestLongestAllowedTokenRevokes: a client with as many scopes as fit gets access tokens, bound
// to a DPoP key and to its TLS client certificate as the longest are, that the public endpoints
// introspect and revoke; one scope more is refused. The bound the admin
// check uses is never below a real token's length.
func TestLongestAllowedTokenRevokes(t *testing.T) {
	ca := newTestCA(t, "client CA")
	ts := newTestServer(t, withMTLS(ca.pool, ""))
	cert := ca.issue(t, leaf{subject: pkix.Name{CommonName: "long"}})
	bound := grants.AccessTokenBound(grants.Policy{Issuer: ts.URL, Audience: []string{"https://api.example.com"}}, ts.Keys)
	const clientID = "long-scoped-client"
	all := manyScopes(1000)
	n := 0
	for bound(storage.Client{ID: clientID, Scopes: all[:n+1]}) <= protocol.MaxTokenLen {
		n++
	}
	scopes := all[:n]
	body, _ := json.Marshal(map[string]any{"client_id": clientID, "scopes": all[:n+1]})
	if r := ts.admin(t, "POST", "/admin/clients", string(body)); r.Status != http.StatusBadRequest {
		t.Fatalf("one scope more than fits: %d %s, want 400", r.Status, r.RawBody)
	}
	body, _ = json.Marshal(map[string]any{"client_id": clientID, "scopes": scopes, "tls_client_certificate_bound_access_tokens": true})
	r := ts.admin(t, "POST", "/admin/clients", string(body))
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.RawBody)
	}
	sec := r.str("client_secret")
	// Bound to a DPoP key and a certificate, the longest token the client can have.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: newProofKey(t).Transport(ts.tlsClient(cert).Transport)})
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: sec, TokenURL: ts.URL + "/oauth2/token"}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != protocol.TokenTypeDPoP {
		t.Fatalf("token_type %q, want a DPoP-bound token", tok.TokenType)
	}
	if cnf, _ := claimsOf(t, tok.AccessToken)["cnf"].(map[string]any); cnf["x5t#S256"] != thumbprint(cert) {
		t.Fatalf("cnf %v, want the certificate's x5t#S256 beside the jkt", cnf)
	}
	n = len(tok.AccessToken)
	if n > protocol.MaxTokenLen || n < protocol.MaxTokenLen-64 {
		t.Fatalf("token of %d bytes, want just under %d", n, protocol.MaxTokenLen)
	}
	if b := bound(storage.Client{ID: clientID, Scopes: scopes}); n > b {
		t.Fatalf("a token of %d bytes, longer than the bound %d", n, b)
	}
	if got := ts.introspect(t, clientID, sec, tok.AccessToken); got.Status != http.StatusOK || got.Body["active"] != true {
		t.Fatalf("introspect: %d %s", got.Status, got.RawBody)
	}
	if got := ts.revoke(t, clientID, sec, tok.AccessToken); got.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", got.Status, got.RawBody)
	}
	if got := ts.introspect(t, clientID, sec, tok.AccessToken); got.Status != http.StatusOK || got.Body["active"] != false {
		t.Fatalf("introspect after revoke: %d %s", got.Status, got.RawBody)
	}
	t.Logf("%d scopes fit; a token of %d bytes revoked and introspected", len(scopes), n)
}
