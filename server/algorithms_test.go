package server_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/tokensmith/tokensmith/storage/embedded"
	"golang.org/x/oauth2/clientcredentials"
)

// allAlgorithms is keys.algorithms with every algorithm, ES256 the default.
var allAlgorithms = []string{"ES256", "RS256", "PS256", "EdDSA"}

// TestSigningAlgorithmsOverHTTP: a server publishing four algorithms lists them in discovery
// and the JWKS; a client created through the admin API gets the default or the algorithm it
// names, and refuses symmetric, none and unpublished ones with a 400 naming the field; each
// client's tokens, fetched with golang.org/x/oauth2, verify with go-oidc's RemoteKeySet and
// with go-jose against the JWKS.
func TestSigningAlgorithmsOverHTTP(t *testing.T) {
	ts := newTestServer(t, withAlgorithms(allAlgorithms...))
	ctx := context.Background()

	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		r := send(t, mustRequest(t, "GET", ts.URL+path))
		var got []string
		for _, a := range r.Body["access_token_signing_alg_values_supported"].([]any) {
			got = append(got, a.(string))
		}
		if !slices.Equal(got, allAlgorithms) {
			t.Fatalf("%s lists %v, want %v", path, got, allAlgorithms)
		}
	}
	jwks := send(t, mustRequest(t, "GET", ts.URL+"/.well-known/jwks.json"))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(jwks.RawBody), &set); err != nil {
		t.Fatal(err)
	}
	published := map[string]string{} // alg → kid
	for _, k := range set.Keys {
		published[k.Algorithm] = k.KeyID
	}
	if len(set.Keys) != 4 || len(published) != 4 {
		t.Fatalf("JWKS: %s", jwks.RawBody)
	}
	// What each key type publishes (RFC 7518 §6, RFC 8037 §2), read as raw JSON.
	var raw struct{ Keys []map[string]any }
	_ = json.Unmarshal([]byte(jwks.RawBody), &raw)
	members := map[string][]string{"RSA": {"n", "e"}, "EC": {"crv", "x", "y"}, "OKP": {"crv", "x"}}
	for _, k := range raw.Keys {
		for _, m := range members[k["kty"].(string)] {
			if _, ok := k[m]; !ok {
				t.Fatalf("%s key without %s: %v", k["alg"], m, k)
			}
		}
	}

	refusals := map[string]string{
		"HS256": "access_token_signing_alg: HS256 is symmetric",
		"none":  `access_token_signing_alg: \"none\" means an unsigned token`,
		"RS384": `access_token_signing_alg: \"RS384\" is not one of`,
	}
	for alg, desc := range refusals {
		r := ts.admin(t, "POST", "/admin/clients", `{"client_id":"bad","access_token_signing_alg":"`+alg+`"}`)
		if r.Status != 400 || r.str("error") != "invalid_request" || !strings.Contains(r.RawBody, desc) {
			t.Fatalf("%s: %d %s", alg, r.Status, r.RawBody)
		}
	}
	if r := ts.admin(t, "GET", "/admin/clients/bad", ""); r.Status != 404 {
		t.Fatalf("a refused client was stored: %d", r.Status)
	}

	keySet := oidc.NewRemoteKeySet(ctx, ts.URL+"/.well-known/jwks.json")
	verifier := oidc.NewVerifier(ts.URL, keySet, &oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: allAlgorithms,
		Now: ts.Clock.Now})
	for _, alg := range append([]string{""}, allAlgorithms...) {
		body := `{"scopes":["orders:read"]}`
		want := "ES256" // the first of keys.algorithms
		if alg != "" {
			body = `{"scopes":["orders:read"],"access_token_signing_alg":"` + alg + `"}`
			want = alg
		}
		r := ts.admin(t, "POST", "/admin/clients", body)
		if r.Status != 201 || r.str("access_token_signing_alg") != want {
			t.Fatalf("create with %q: %d %s", alg, r.Status, r.RawBody)
		}
		cfg := clientcredentials.Config{ClientID: r.str("client_id"), ClientSecret: r.str("client_secret"), TokenURL: ts.URL + "/oauth2/token"}
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c := verify(t, ts, tok.AccessToken)
		if c.ClientID != cfg.ClientID {
			t.Fatalf("%s: client_id %s", want, c.ClientID)
		}
		parsed, _ := jose.ParseSignedCompact(tok.AccessToken, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(want)})
		if parsed == nil || parsed.Signatures[0].Header.KeyID != published[want] {
			t.Fatalf("a %s token does not name the %s key %s", want, want, published[want])
		}
		if _, err := verifier.Verify(ctx, tok.AccessToken); err != nil {
			t.Fatalf("go-oidc rejects a %s token: %v", want, err)
		}
		// A verifier that allows another algorithm only refuses it.
		other := oidc.NewVerifier(ts.URL, keySet, &oidc.Config{SkipClientIDCheck: true, Now: ts.Clock.Now,
			SupportedSigningAlgs: slices.DeleteFunc(slices.Clone(allAlgorithms), func(a string) bool { return a == want })})
		if _, err := other.Verify(ctx, tok.AccessToken); err == nil {
			t.Fatalf("go-oidc without %s accepts a %s token", want, want)
		}
	}
}

// TestKeyRotationPerAlgorithmOverHTTP: POST /admin/keys/rotate with an alg rotates that
// algorithm only; without one, the default; an unknown or unpublished alg is a 400 naming
// the field; retiring needs an algorithm the server no longer signs with.
func TestKeyRotationPerAlgorithmOverHTTP(t *testing.T) {
	ts := newTestServer(t, withAlgorithms(allAlgorithms...))
	active := func() map[string]string {
		r := ts.admin(t, "GET", "/admin/keys", "")
		var views []struct{ Kid, Alg, State string }
		if err := json.Unmarshal([]byte(r.RawBody), &views); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, v := range views {
			if v.State == "active" {
				out[v.Alg] = v.Kid
			}
		}
		return out
	}
	before := active()
	if len(before) != 4 {
		t.Fatalf("active keys: %v", before)
	}
	r := ts.admin(t, "POST", "/admin/keys/rotate", `{"alg":"EdDSA","publish_ahead":"0s"}`)
	if r.Status != 201 || r.str("alg") != "EdDSA" || r.str("state") != "active" {
		t.Fatalf("rotate EdDSA: %d %s", r.Status, r.RawBody)
	}
	after := active()
	want := maps.Clone(before)
	want["EdDSA"] = r.str("kid")
	if !maps.Equal(after, want) {
		t.Fatalf("after rotating EdDSA: %v, want %v", after, want)
	}
	if !strings.Contains(send(t, mustRequest(t, "GET", ts.URL+"/.well-known/jwks.json")).RawBody, before["EdDSA"]) {
		t.Fatal("the retired EdDSA key left the JWKS")
	}
	if r := ts.admin(t, "POST", "/admin/keys/rotate", `{"publish_ahead":"0s"}`); r.Status != 201 || r.str("alg") != "ES256" {
		t.Fatalf("rotate without alg: %d %s, want the default ES256", r.Status, r.RawBody)
	}
	for body, desc := range map[string]string{
		`{"alg":"HS512"}`: "alg: HS512 is symmetric",
		`{"alg":"RS512"}`: `alg: \"RS512\" is not one of`,
	} {
		if r := ts.admin(t, "POST", "/admin/keys/rotate", body); r.Status != 400 || !strings.Contains(r.RawBody, desc) {
			t.Fatalf("rotate %s: %d %s", body, r.Status, r.RawBody)
		}
	}
	if r := ts.admin(t, "POST", "/admin/keys/retire", `{"alg":"PS256"}`); r.Status != 400 || !strings.Contains(r.RawBody, "alg: PS256 is in keys.algorithms") {
		t.Fatalf("retire an algorithm in use: %d %s", r.Status, r.RawBody)
	}
	if r := ts.admin(t, "POST", "/admin/keys/retire", `{}`); r.Status != 400 || !strings.Contains(r.RawBody, "alg:") {
		t.Fatalf("retire without alg: %d %s", r.Status, r.RawBody)
	}
	rs := newTestServer(t)
	if r := rs.admin(t, "POST", "/admin/keys/rotate", `{"alg":"ES256"}`); r.Status != 400 || !strings.Contains(r.RawBody, "alg: ES256 is not in keys.algorithms on this server (RS256)") {
		t.Fatalf("rotate an algorithm not published: %d %s", r.Status, r.RawBody)
	}
	if r := rs.admin(t, "POST", "/admin/keys/retire", `{"alg":"ES256"}`); r.Status != 404 {
		t.Fatalf("retire an algorithm without keys: %d %s", r.Status, r.RawBody)
	}

	// A replica that no longer signs ES256 retires the keys another one made.
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	newTestServer(t, withStore(store), withAlgorithms("RS256", "ES256"))
	dropped := newTestServer(t, withStore(store))
	r = dropped.admin(t, "POST", "/admin/keys/retire", `{"alg":"ES256"}`)
	var retired []struct{ Alg, State string }
	if err := json.Unmarshal([]byte(r.RawBody), &retired); r.Status != 200 || err != nil || len(retired) != 1 ||
		retired[0].Alg != "ES256" || retired[0].State != "retiring" {
		t.Fatalf("retire ES256: %d %s", r.Status, r.RawBody)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
