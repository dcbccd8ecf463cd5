package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/tokensmith/tokensmith/registry"
)

// refetchingVerifier is what a resource server should do: verify against a cached JWKS and
// fetch it again when a token names a kid the cache does not know.
type refetchingVerifier struct {
	url     string
	mu      sync.Mutex
	set     jose.JSONWebKeySet
	fetches int
}

func (v *refetchingVerifier) fetch() error {
	resp, err := http.Get(v.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return err
	}
	v.set = set
	v.fetches++
	return nil
}

func (v *refetchingVerifier) verify(tok string) (string, error) {
	parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", err
	}
	kid := parsed.Headers[0].KeyID
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.set.Key(kid)) == 0 {
		if err := v.fetch(); err != nil {
			return "", err
		}
	}
	keys := v.set.Key(kid)
	if len(keys) == 0 {
		return kid, errUnknownKid
	}
	var c josejwt.Claims
	return kid, parsed.Claims(keys[0].Key, &c)
}

type verifyError string

func (e verifyError) Error() string { return string(e) }

const errUnknownKid = verifyError("kid not in the JWKS")

// TestRotationWhileIssuing rotates the signing key twice (once published ahead, once at once)
// while tokens are issued and verified without pause: not one verification fails.
func TestRotationWhileIssuing(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{})
	v := &refetchingVerifier{url: ts.URL + "/.well-known/jwks.json"}
	if err := v.fetch(); err != nil {
		t.Fatal(err)
	}
	var issued, failed atomic.Int64
	kids := sync.Map{}
	stop := make(chan struct{})
	done := make(chan struct{})
	var once sync.Once
	halt := func() { once.Do(func() { close(stop); <-done }) }
	defer halt()
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ts.Clock.Set(time.Now()) // the token path follows real time here
			tok, err := ccTokenOnce(ts.URL, id, sec)
			if err != nil {
				t.Errorf("token: %v", err)
				failed.Add(1)
				continue
			}
			kid, err := v.verify(tok)
			if err != nil {
				t.Errorf("verification failed for kid %s: %v", kid, err)
				failed.Add(1)
			}
			kids.Store(kid, true)
			issued.Add(1)
		}
	}()
	// Keys are chosen by iat, which has whole seconds: each key signs for over a second here.
	time.Sleep(300 * time.Millisecond)
	if r := ts.admin(t, "POST", "/admin/keys/rotate", `{"publish_ahead":"1s"}`); r.Status != 201 || r.str("state") != "next" {
		t.Fatalf("rotate ahead: %d %s", r.Status, r.RawBody)
	}
	if r := ts.admin(t, "POST", "/admin/keys/rotate", `{"publish_ahead":"0s"}`); r.Status != 409 {
		t.Fatalf("rotate while one is pending: %d %s", r.Status, r.RawBody)
	}
	time.Sleep(2500 * time.Millisecond)
	if r := ts.admin(t, "POST", "/admin/keys/rotate", `{"publish_ahead":"0s"}`); r.Status != 201 || r.str("state") != "active" {
		t.Fatalf("rotate at once: %d %s", r.Status, r.RawBody)
	}
	time.Sleep(1500 * time.Millisecond)
	halt()
	n := 0
	kids.Range(func(any, any) bool { n++; return true })
	t.Logf("%d tokens issued and verified across %d keys, %d JWKS fetches, %d failures", issued.Load(), n, v.fetches, failed.Load())
	if failed.Load() != 0 || n != 3 || issued.Load() < 20 {
		t.Fatalf("%d failures, %d keys seen, %d tokens; want 0 failures and 3 keys", failed.Load(), n, issued.Load())
	}

	// The admin listing shows each key's state; nothing private.
	r := ts.admin(t, "GET", "/admin/keys", "")
	var views []struct {
		Kid, State string
	}
	_ = json.Unmarshal([]byte(r.RawBody), &views)
	states := map[string]int{}
	for _, k := range views {
		states[k.State]++
	}
	if len(views) != 3 || states["active"] != 1 || states["retiring"] != 2 || containsAny(r.RawBody, "private", "PRIVATE", "pem", "\"d\"") {
		t.Fatalf("GET /admin/keys: %s", r.RawBody)
	}
}

func containsAny(s string, subs ...string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}

// ccTokenOnce gets a client_credentials token without the test helpers' t.Fatal, for goroutines.
func ccTokenOnce(base, id, sec string) (string, error) {
	req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %v", resp.StatusCode, err)
	}
	return body.AccessToken, nil
}
