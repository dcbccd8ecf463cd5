package verify

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func invalid(desc string) string {
	return `Bearer realm="orders", error="invalid_token", error_description="` + desc + `"`
}

// TestRefusals sends one request per way a token can be wrong through the middleware on a
// loopback server, and checks the exact RFC 6750 answer: status, WWW-Authenticate and the
// reason an application can match with errors.Is.
func TestRefusals(t *testing.T) {
	a := newAuthServer(t)
	ks := testKeys()
	a.publish("kid0", ks[0])
	// A server the tokens point at with jku: nothing may ever fetch from it.
	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { attackerHits.Add(1) }))
	defer attacker.Close()

	v, clk := newVerifier(t, a, nil)
	now := clk.Now()
	good := goodClaims(a, now)
	pubDER, _ := x509.MarshalPKIXPublicKey(&ks[0].PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	tampered := func() string {
		parts := strings.Split(sign(t, jose.RS256, ks[0], "kid0", good, nil), ".")
		forged := unsigned(map[string]any{}, with(good, map[string]any{"scope": "orders:read orders:write admin"}), nil)
		return parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
	}()
	expiredAt := now.Add(-time.Hour).Truncate(time.Second)

	for _, tc := range []struct {
		name      string
		header    http.Header
		token     string // sent as Authorization: Bearer when set
		status    int
		challenge string
		reason    error
	}{
		{name: "valid", token: sign(t, jose.RS256, ks[0], "kid0", good, nil), status: 200},
		{name: "valid within the leeway after exp",
			token: sign(t, jose.RS256, ks[0], "kid0", with(good, map[string]any{"exp": now.Add(-5 * time.Second).Unix()}), nil), status: 200},
		{name: "typ application/at+jwt", token: sign(t, jose.RS256, ks[0], "kid0", good, map[jose.HeaderKey]any{"typ": "application/AT+JWT"}), status: 200},
		{name: "jku header is not followed", status: 200,
			token: sign(t, jose.RS256, ks[0], "kid0", good, map[jose.HeaderKey]any{"jku": attacker.URL, "x5u": attacker.URL})},

		{name: "no token", status: 401, challenge: `Bearer realm="orders"`, reason: ErrNoToken},
		{name: "another scheme is no token", header: http.Header{"Authorization": {"Basic YTpi"}}, status: 401,
			challenge: `Bearer realm="orders"`, reason: ErrNoToken},
		{name: "malformed header: Bearer alone", header: http.Header{"Authorization": {"Bearer"}}, status: 400,
			challenge: `Bearer realm="orders", error="invalid_request", error_description="the Authorization header must be Bearer and the token"`,
			reason:    ErrMalformedRequest},
		{name: "malformed header: two words", header: http.Header{"Authorization": {"Bearer abc def"}}, status: 400,
			challenge: `Bearer realm="orders", error="invalid_request", error_description="the Authorization header must be Bearer and the token"`,
			reason:    ErrMalformedRequest},
		{name: "malformed header: no scheme", header: http.Header{"Authorization": {"eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}}, status: 400,
			challenge: `Bearer realm="orders", error="invalid_request", error_description="the Authorization header must be Bearer and the token"`,
			reason:    ErrMalformedRequest},
		{name: "malformed header: two Authorization headers", header: http.Header{"Authorization": {"Bearer a.b.c", "Bearer d.e.f"}}, status: 400,
			challenge: `Bearer realm="orders", error="invalid_request", error_description="more than one Authorization header"`,
			reason:    ErrMalformedRequest},
		{name: "not a JWT", token: "abc", status: 401, challenge: invalid("the token is not a well-formed JWT"), reason: ErrMalformed},

		{name: "alg none", token: unsigned(map[string]any{"alg": "none", "typ": "at+jwt", "kid": "kid0"}, good, nil),
			status: 401, challenge: invalid("the token is signed with none, only RS256 is accepted"), reason: ErrAlgorithm},
		{name: "HS256 keyed with the public key", token: sign(t, jose.HS256, pubPEM, "kid0", good, nil),
			status: 401, challenge: invalid("the token is signed with HS256, only RS256 is accepted"), reason: ErrAlgorithm},
		{name: "RS512", token: sign(t, jose.RS512, ks[0], "kid0", good, nil),
			status: 401, challenge: invalid("the token is signed with RS512, only RS256 is accepted"), reason: ErrAlgorithm},
		{name: "typ JWT", token: sign(t, jose.RS256, ks[0], "kid0", good, map[jose.HeaderKey]any{"typ": "JWT"}),
			status: 401, challenge: invalid("the token type is JWT, not at+jwt: not an access token"), reason: ErrType},
		{name: "no typ", token: unsigned(map[string]any{"alg": "RS256", "kid": "kid0"}, good, make([]byte, 256)),
			status: 401, challenge: invalid("the token type is missing, not at+jwt: not an access token"), reason: ErrType},
		{name: "no kid", token: sign(t, jose.RS256, ks[0], "", good, nil),
			status: 401, challenge: invalid("the token names no signing key (kid)"), reason: ErrUnknownKey},
		{name: "unknown kid", token: sign(t, jose.RS256, ks[1], "kid1", good, nil),
			status: 401, challenge: invalid("the token is signed with an unknown key"), reason: ErrUnknownKey},
		{name: "unknown kid with a jku to its key", token: sign(t, jose.RS256, ks[2], "attacker", good, map[jose.HeaderKey]any{"jku": attacker.URL + "/jwks.json"}),
			status: 401, challenge: invalid("the token is signed with an unknown key"), reason: ErrUnknownKey},
		{name: "bad signature: another key under a known kid", token: sign(t, jose.RS256, ks[1], "kid0", good, nil),
			status: 401, challenge: invalid("the token signature is invalid"), reason: ErrSignature},
		{name: "bad signature: claims changed", token: tampered,
			status: 401, challenge: invalid("the token signature is invalid"), reason: ErrSignature},
		{name: "bad signature: own key embedded as jwk", token: func() string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: ks[2]},
				(&jose.SignerOptions{EmbedJWK: true}).WithType("at+jwt").WithHeader("kid", "kid0"))
			if err != nil {
				t.Fatal(err)
			}
			payload, _ := json.Marshal(good)
			jws, _ := s.Sign(payload)
			out, _ := jws.CompactSerialize()
			return out
		}(), status: 401, challenge: invalid("the token signature is invalid"), reason: ErrSignature},

		{name: "expired", token: sign(t, jose.RS256, ks[0], "kid0", with(good, map[string]any{"exp": expiredAt.Unix()}), nil),
			status: 401, challenge: invalid("the token expired at " + expiredAt.UTC().Format(time.RFC3339)), reason: ErrExpired},
		{name: "wrong iss", token: sign(t, jose.RS256, ks[0], "kid0", with(good, map[string]any{"iss": "https://evil.example.test"}), nil),
			status: 401, challenge: invalid("the token was issued by another issuer"), reason: ErrIssuer},
		{name: "wrong aud", token: sign(t, jose.RS256, ks[0], "kid0", with(good, map[string]any{"aud": []string{"https://other.example.test", "x"}}), nil),
			status: 401, challenge: invalid("the token is not meant for this API (aud)"), reason: ErrAudience},
		{name: "nbf in the future", token: sign(t, jose.RS256, ks[0], "kid0", with(good, map[string]any{"nbf": now.Add(time.Minute).Unix()}), nil),
			status: 401, challenge: invalid("the token is not valid yet (nbf)"), reason: ErrNotYetValid},
		{name: "iat in the future", token: sign(t, jose.RS256, ks[0], "kid0", with(good, map[string]any{"iat": now.Add(time.Minute).Unix()}), nil),
			status: 401, challenge: invalid("the token is issued in the future (iat)"), reason: ErrNotYetValid},
		{name: "no exp", token: sign(t, jose.RS256, ks[0], "kid0", with(good, map[string]any{"exp": nil}), nil),
			status: 401, challenge: invalid("the token has no exp claim"), reason: ErrClaims},
		{name: "no client_id", token: sign(t, jose.RS256, ks[0], "kid0", with(good, map[string]any{"client_id": nil}), nil),
			status: 401, challenge: invalid("the token has no client_id claim"), reason: ErrClaims},
		{name: "scope not a string", token: sign(t, jose.RS256, ks[0], "kid0", with(good, map[string]any{"scope": []string{"orders:write"}}), nil),
			status: 401, challenge: invalid("the token claims do not parse"), reason: ErrClaims},
		{name: "missing scope", token: sign(t, jose.RS256, ks[0], "kid0", with(good, map[string]any{"scope": "orders:read"}), nil),
			status: 403, challenge: `Bearer realm="orders", error="insufficient_scope", error_description="the token lacks the scope orders:write", scope="orders:write"`,
			reason: ErrInsufficientScope},
		{name: "a personal token where none is accepted", token: "tsp_ka7s7p4qnmleQLKDZds0ZH9Ouw7NEjHnNpsxnwayHMZcGhRmp511Jc74MN2D2",
			status: 401, challenge: invalid("a personal token is not accepted here: exchange it for an access token"), reason: ErrType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header.Clone()
			if h == nil {
				h = http.Header{}
			}
			if tc.token != "" {
				h.Set("Authorization", "Bearer "+tc.token)
			}
			// Through the middleware, over loopback HTTP.
			srv := httptest.NewServer(v.Middleware(Scopes("orders:write"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := FromContext(r.Context()); !ok {
					t.Error("no claims in the context of an accepted request")
				}
			})))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header = h
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.StatusCode; got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, tc.challenge)
			}
			// And the same reason from Verify/Authenticate, for applications.
			rt := v.Route(Scopes("orders:write"))
			r := httptest.NewRequest("GET", "/", nil)
			r.Header = h
			_, err = rt.Authenticate(r)
			if tc.reason == nil {
				if err != nil {
					t.Errorf("Authenticate: %v, want nil", err)
				}
			} else if !errors.Is(err, tc.reason) {
				t.Errorf("Authenticate: %v, want errors.Is %v", err, tc.reason)
			}
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the jku/x5u URL was fetched %d times", n)
	}
}

// TestTokenSources: Authorization: Bearer always; X-Authorization (raw, or with Bearer) and
// ?access_token= only on routes that enable them; names configurable (ATOL's Token and
// tokenid); the same token twice is fine, two different ones are refused.
func TestTokenSources(t *testing.T) {
	a := newAuthServer(t)
	ks := testKeys()
	a.publish("kid0", ks[0])
	v, clk := newVerifier(t, a, nil)
	tok := sign(t, jose.RS256, ks[0], "kid0", goodClaims(a, clk.Now()), nil)
	other := sign(t, jose.RS256, ks[0], "kid0", with(goodClaims(a, clk.Now()), map[string]any{"jti": "jti-2"}), nil)
	evotor := v.Route(TokenHeader(EvotorHeader), TokenQuery(AccessTokenQuery))
	atol := v.Route(TokenHeader("Token"), TokenQuery("tokenid"))
	plain := v.Route()

	for _, tc := range []struct {
		name   string
		route  *Route
		query  string
		header http.Header
		status int
	}{
		{"bearer on a plain route", plain, "", http.Header{"Authorization": {"Bearer " + tok}}, 200},
		{"bearer, lower-case scheme", plain, "", http.Header{"Authorization": {"bearer " + tok}}, 200},
		{"X-Authorization ignored on a plain route", plain, "", http.Header{"X-Authorization": {tok}}, 401},
		{"query ignored on a plain route", plain, "?access_token=" + tok, nil, 401},
		{"X-Authorization raw (Evotor)", evotor, "", http.Header{"X-Authorization": {tok}}, 200},
		{"X-Authorization with Bearer", evotor, "", http.Header{"X-Authorization": {"Bearer " + tok}}, 200},
		{"access_token query (Evotor iframe)", evotor, "?access_token=" + tok, nil, 200},
		{"Token header (ATOL)", atol, "", http.Header{"Token": {tok}}, 200},
		{"tokenid query (ATOL)", atol, "?tokenid=" + tok, nil, 200},
		{"same token in two places", evotor, "?access_token=" + tok, http.Header{"X-Authorization": {tok}}, 200},
		{"different tokens in two places", evotor, "", http.Header{"X-Authorization": {tok}, "Authorization": {"Bearer " + other}}, 400},
		{"empty X-Authorization", evotor, "", http.Header{"X-Authorization": {""}}, 400},
		{"two access_token parameters", evotor, "?access_token=" + tok + "&access_token=" + tok, nil, 400},
		{"X-Authorization with a space inside", evotor, "", http.Header{"X-Authorization": {"a b"}}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.route.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+"/"+tc.query, nil)
			for k, vs := range tc.header {
				req.Header[k] = vs
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (WWW-Authenticate: %s)", resp.StatusCode, tc.status, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestErrorEnvelope: an API with its own error body (tokens.make's) keeps it, while the
// status and WWW-Authenticate stay RFC 6750's; the route's renderer wins over the Verifier's.
func TestErrorEnvelope(t *testing.T) {
	a := newAuthServer(t)
	tokensMake := func(r *http.Request, e *Error) (string, []byte) {
		return "application/json; charset=utf-8", []byte(`{"success":false,"error":{"code":"ApiInvalidTokenError","message":"Invalid Token"}}`)
	}
	v, _ := newVerifier(t, a, func(c *Config) { c.ErrorBody = tokensMake })
	other := v.Route(RenderError(func(r *http.Request, e *Error) (string, []byte) { return "text/plain", []byte(e.Description) }))
	for _, tc := range []struct {
		name        string
		h           http.Handler
		wantBody    string
		wantType    string
		wantStatus  int
		wantChallng string
	}{
		{"verifier-wide envelope", v.Middleware()(http.NotFoundHandler()),
			`{"success":false,"error":{"code":"ApiInvalidTokenError","message":"Invalid Token"}}`, "application/json; charset=utf-8",
			401, invalid("the token is not a well-formed JWT")},
		{"route renderer", other.Wrap(http.NotFoundHandler()), "the token is not a well-formed JWT", "text/plain",
			401, invalid("the token is not a well-formed JWT")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set("Authorization", "Bearer not-a-jwt")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || string(body) != tc.wantBody || resp.Header.Get("Content-Type") != tc.wantType ||
				resp.Header.Get("WWW-Authenticate") != tc.wantChallng {
				t.Fatalf("got %d %q %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestDefaultBody: without a renderer the body repeats the error as JSON.
func TestDefaultBody(t *testing.T) {
	a := newAuthServer(t)
	v, _ := newVerifier(t, a, nil)
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer x.y")
	v.Middleware()(http.NotFoundHandler()).ServeHTTP(rec, r)
	if got, want := rec.Body.String(), `{"error":"invalid_token","error_description":"the token is not a well-formed JWT"}`+"\n"; got != want {
		t.Fatalf("body %s, want %s", got, want)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", rec.Header().Get("Cache-Control"))
	}
}

// TestChallengeCannotBeInjected: values from the token (alg, typ) cannot end the quoted
// string of the challenge.
func TestChallengeCannotBeInjected(t *testing.T) {
	a := newAuthServer(t)
	v, _ := newVerifier(t, a, nil)
	tok := unsigned(map[string]any{"alg": `RS256", error="none`, "typ": "at+jwt", "kid": "k"}, map[string]any{}, []byte("sig"))
	_, err := v.Verify(context.Background(), tok)
	got := asError(err).challenge(v.realm)
	if strings.Count(got, `"`) != 6 || !strings.Contains(got, `RS256?, error=?none`) {
		t.Fatalf("challenge %s", got)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no issuer", Config{Audience: []string{"a"}}, "Issuer: required"},
		{"no audience", Config{Issuer: "https://a.test"}, "Audience"},
		{"not a URL", Config{Issuer: "a.test", Audience: []string{"a"}}, "not an http(s) URL"},
		{"huge leeway", Config{Issuer: "https://a.test", Audience: []string{"a"}, Leeway: time.Hour}, "Leeway"},
		{"HS256", Config{Issuer: "https://a.test", Audience: []string{"a"}, Algorithms: []string{"RS256", "HS256"}}, `Algorithms: "HS256" would accept tokens anyone holding the JWKS can make`},
		{"none", Config{Issuer: "https://a.test", Audience: []string{"a"}, Algorithms: []string{"none"}}, `Algorithms: "none"`},
		{"RS512", Config{Issuer: "https://a.test", Audience: []string{"a"}, Algorithms: []string{"RS512"}}, `Algorithms: "RS512" is not one of`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestRouteWithoutIntrospectionClientPanics(t *testing.T) {
	a := newAuthServer(t)
	v, _ := newVerifier(t, a, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	v.Route(Introspect())
}
