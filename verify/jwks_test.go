package verify

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// flood verifies n tokens naming random kids, workers at a time, and counts the answers by
// reason.
func flood(t *testing.T, v *Verifier, a *authServer, now time.Time, n int) map[error]int {
	t.Helper()
	claims := goodClaims(a, now)
	var mu sync.Mutex
	counts := map[error]int{}
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				kid := make([]byte, 12)
				_, _ = rand.Read(kid)
				// The signature is never looked at: the kid is unknown before that.
				tok := unsigned(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": fmt.Sprintf("%x", kid)}, claims, make([]byte, 256))
				_, err := v.Verify(context.Background(), tok)
				mu.Lock()
				for _, reason := range []error{ErrUnknownKey, ErrUnavailable} {
					if errors.Is(err, reason) {
						counts[reason]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

// TestUnknownKidFloodFetchesOncePerInterval: 1,000 tokens naming random kids cost at most one
// JWKS fetch per RefreshInterval, and concurrent callers share it.
func TestUnknownKidFloodFetchesOncePerInterval(t *testing.T) {
	a := newAuthServer(t)
	a.publish("kid0", testKeys()[0])
	a.delay = 20 * time.Millisecond // so that callers pile up on the fetch in progress
	v, clk := newVerifier(t, a, func(c *Config) { c.RefreshInterval = time.Minute })
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for interval := range 3 {
		before := a.jwksHits.Load()
		counts := flood(t, v, a, clk.Now(), 1000)
		fetched := a.jwksHits.Load() - before
		t.Logf("interval %d: 1,000 random kids → %d JWKS fetches, answers %v", interval, fetched, counts)
		if fetched > 1 {
			t.Fatalf("interval %d: %d fetches, want at most 1", interval, fetched)
		}
		if counts[ErrUnknownKey] != 1000 {
			t.Fatalf("interval %d: %v, want 1000 unknown-key refusals", interval, counts)
		}
		clk.Advance(time.Minute)
	}
	if total := a.jwksHits.Load(); total > 1+3 {
		t.Fatalf("%d fetches in all, want at most 4", total)
	}
	// A good token still verifies from the cache without a fetch.
	before := a.jwksHits.Load()
	if _, err := v.Verify(context.Background(), sign(t, jose.RS256, testKeys()[0], "kid0", goodClaims(a, clk.Now()), nil)); err != nil {
		t.Fatal(err)
	}
	if a.jwksHits.Load() != before {
		t.Fatal("a cached kid caused a fetch")
	}
}

// TestJWKSEndpointDown: once the keys are cached, verification goes on while the JWKS
// endpoint fails, past the cache lifetime, without a request waiting on the dead endpoint;
// the endpoint is retried at most once per interval, and the keys are renewed when it is back.
func TestJWKSEndpointDown(t *testing.T) {
	a := newAuthServer(t)
	ks := testKeys()
	a.publish("kid0", ks[0])
	a.cacheHeader = "max-age=60"
	v, clk := newVerifier(t, a, func(c *Config) { c.RefreshInterval = 10 * time.Second })
	verifyAt := func() error {
		_, err := v.Verify(context.Background(), sign(t, jose.RS256, ks[0], "kid0", goodClaims(a, clk.Now()), nil))
		return err
	}
	if err := verifyAt(); err != nil {
		t.Fatal(err)
	}
	a.setDown(true)
	a.delay = 30 * time.Millisecond // a struggling endpoint, which requests must not wait for
	defer func() { a.delay = 0 }()
	start := a.jwksHits.Load()
	var slowest time.Duration
	for i := range 60 { // ten minutes of requests, one every 10 s, well past max-age
		clk.Advance(10 * time.Second)
		t0 := time.Now()
		if err := verifyAt(); err != nil {
			t.Fatalf("request %d, %s into the outage: %v", i, time.Duration(i+1)*10*time.Second, err)
		}
		slowest = max(slowest, time.Since(t0))
		// Let the background renewal, if one started, fail before time moves on.
		for v.keys.Busy() {
			time.Sleep(5 * time.Millisecond)
		}
	}
	tried := a.jwksHits.Load() - start
	t.Logf("60 verifications over 10 minutes with the JWKS endpoint down: all accepted, slowest %s, %d fetch attempts", slowest, tried)
	if tried > 60 || tried < 50 {
		t.Errorf("%d fetch attempts, want one per 10 s interval once max-age has passed", tried)
	}
	// A kid nobody has seen cannot be checked: 503, not a claim that the token is bad.
	_, err := v.Verify(context.Background(), sign(t, jose.RS256, ks[1], "kid1", goodClaims(a, clk.Now()), nil))
	if !errors.Is(err, ErrUnavailable) || asError(err).Status != http.StatusServiceUnavailable || asError(err).challenge("r") != "" {
		t.Fatalf("unknown kid while the endpoint is down: %v", err)
	}

	// Back: the next renewal replaces the set.
	a.setDown(false)
	a.publish("kid1", ks[1])
	clk.Advance(10 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(context.Background(), sign(t, jose.RS256, ks[1], "kid1", goodClaims(a, clk.Now()), nil))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new key is not used after the endpoint came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFirstFetchFails: with nothing cached, a dead endpoint means 503 (no challenge), and
// attempts are spaced by the interval, not one per request.
func TestFirstFetchFails(t *testing.T) {
	a := newAuthServer(t)
	a.setDown(true)
	v, clk := newVerifier(t, a, func(c *Config) { c.RefreshInterval = 10 * time.Second })
	tok := sign(t, jose.RS256, testKeys()[0], "kid0", goodClaims(a, clk.Now()), nil)
	srv := httptest.NewServer(v.Middleware()(http.NotFoundHandler()))
	defer srv.Close()
	for range 20 {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("status %d, challenge %q; want 503 without a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if n := a.jwksHits.Load(); n != 1 {
		t.Fatalf("%d fetch attempts within one interval, want 1", n)
	}
}

// TestRotationPickedUp: a token signed with a key published after the cache was filled, even a
// moment after, makes the Verifier fetch the set again and verify it; the old key's tokens keep
// verifying. A second new kid within the same interval waits for the next one.
func TestRotationPickedUp(t *testing.T) {
	a := newAuthServer(t)
	ks := testKeys()
	a.publish("old", ks[0])
	v, clk := newVerifier(t, a, func(c *Config) { c.RefreshInterval = 10 * time.Second })
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, jose.RS256, ks[0], "old", goodClaims(a, clk.Now()), nil)); err != nil {
		t.Fatal(err)
	}
	a.publish("new", ks[1])
	before := a.jwksHits.Load()
	if _, err := v.Verify(ctx, sign(t, jose.RS256, ks[1], "new", goodClaims(a, clk.Now()), nil)); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if n := a.jwksHits.Load() - before; n != 1 {
		t.Fatalf("%d fetches for the new kid, want 1", n)
	}
	if _, err := v.Verify(ctx, sign(t, jose.RS256, ks[0], "old", goodClaims(a, clk.Now()), nil)); err != nil {
		t.Fatalf("token of the previous key after the rotation: %v", err)
	}

	a.publish("newer", ks[2])
	clk.Advance(9 * time.Second)
	tok := sign(t, jose.RS256, ks[2], "newer", goodClaims(a, clk.Now()), nil)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("second new kid within the interval: %v, want unknown key", err)
	}
	clk.Advance(time.Second)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("second new kid an interval later: %v", err)
	}
}

// TestCacheFollowsMaxAge: within max-age nothing is fetched; after it, one background renewal.
func TestCacheFollowsMaxAge(t *testing.T) {
	a := newAuthServer(t)
	a.publish("kid0", testKeys()[0])
	a.cacheHeader = "max-age=120"
	v, clk := newVerifier(t, a, nil)
	check := func() {
		t.Helper()
		if _, err := v.Verify(context.Background(), sign(t, jose.RS256, testKeys()[0], "kid0", goodClaims(a, clk.Now()), nil)); err != nil {
			t.Fatal(err)
		}
	}
	check()
	clk.Advance(119 * time.Second)
	check()
	if n := a.jwksHits.Load(); n != 1 {
		t.Fatalf("%d fetches within max-age, want 1", n)
	}
	clk.Advance(2 * time.Second)
	check()
	deadline := time.Now().Add(5 * time.Second)
	for a.jwksHits.Load() != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := a.jwksHits.Load(); n != 2 {
		t.Fatalf("%d fetches after max-age, want 2", n)
	}
}

// TestDiscovery: RFC 8414 first, OIDC discovery when it is missing; metadata naming another
// issuer is refused; an issuer with a path gets the RFC 8414 §3.1 URL.
func TestDiscovery(t *testing.T) {
	if got := wellKnown("https://auth.example.test/tenant/"); got[0] != "https://auth.example.test/.well-known/oauth-authorization-server/tenant" ||
		got[1] != "https://auth.example.test/tenant/.well-known/openid-configuration" {
		t.Fatalf("well-known URLs %v", got)
	}
	ks := testKeys()
	for _, tc := range []struct {
		name     string
		rfc8414  bool
		oidc     bool
		issuerOf func(url string) string
		ok       bool
	}{
		{"RFC 8414", true, false, func(u string) string { return u }, true},
		{"OIDC only", false, true, func(u string) string { return u }, true},
		{"another issuer", true, true, func(string) string { return "https://evil.example.test" }, false},
		{"none", false, false, func(u string) string { return u }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			var srv *httptest.Server
			meta := func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(map[string]string{"issuer": tc.issuerOf(srv.URL), "jwks_uri": srv.URL + "/keys"})
			}
			if tc.rfc8414 {
				mux.HandleFunc("GET /.well-known/oauth-authorization-server", meta)
			}
			if tc.oidc {
				mux.HandleFunc("GET /.well-known/openid-configuration", meta)
			}
			mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &ks[0].PublicKey, KeyID: "k"}}})
			})
			srv = httptest.NewServer(mux)
			defer srv.Close()
			v, err := New(Config{Issuer: srv.URL, Audience: []string{testAudience}})
			if err != nil {
				t.Fatal(err)
			}
			err = v.Refresh(context.Background())
			if (err == nil) != tc.ok {
				t.Fatalf("Refresh: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestJWKSURLSkipsDiscovery: with a JWKS URL, the issuer is only compared with iss.
func TestJWKSURLSkipsDiscovery(t *testing.T) {
	a := newAuthServer(t)
	a.publish("kid0", testKeys()[0])
	v, err := New(Config{Issuer: "https://tokens.example.test", JWKSURL: a.URL + "/.well-known/jwks.json", Audience: []string{testAudience}})
	if err != nil {
		t.Fatal(err)
	}
	claims := with(goodClaims(a, time.Now()), map[string]any{"iss": "https://tokens.example.test"})
	c, err := v.Verify(context.Background(), sign(t, jose.RS256, testKeys()[0], "kid0", claims, nil))
	if err != nil || c.Subject != "client-1" || !c.HasScope("orders:read") {
		t.Fatalf("Verify: %+v %v", c, err)
	}
}
