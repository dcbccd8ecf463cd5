package e2e

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	binenc "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/tokensmith/tokensmith/internal/testlog"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// The integrator's day runs everything an integrator and their API meet, driven from outside
// only: the tokensmith binary (three replicas on one Redis, and the CLI for admin work),
// golang.org/x/oauth2 for tokens, the example resource server (examples/resource-server, which
// verifies through package verify) as a process of its own, and go-jose, a JWT library the
// server does not use, to check what was signed.

const apiAudience = "https://orders.e2e.test"

// offsetZone writes a time zone of one fixed UTC offset, in seconds, as a version 1 TZif file
// (RFC 8536 §3) at dir/name. IANA zones only offer whole hours (Etc/GMT±N) or quarter hours,
// which would put the next midnight hours away; Go's time.LoadLocation reads zones from the
// directory in ZONEINFO first, so the server's daily limit can run on a calendar whose day ends
// a minute from now, with the binary's own code and no test clock.
func offsetZone(t *testing.T, dir, name string, offset int) {
	t.Helper()
	b := append([]byte("TZif"), make([]byte, 16)...) // version 1, 15 reserved bytes
	// isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt: no transitions, one type.
	for _, n := range []uint32{0, 0, 0, 0, 1, 4} {
		b = binenc.BigEndian.AppendUint32(b, n)
	}
	b = binenc.BigEndian.AppendUint32(b, uint32(int32(offset))) // utoff
	b = append(b, 0, 0)                                         // isdst, desigidx
	b = append(b, "E2E\x00"...)
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// offsetForMidnight is the UTC offset (within ±12 h) whose local midnight falls at m.
func offsetForMidnight(m time.Time) int {
	off := int(-m.Unix() % 86400)
	if off < -43200 {
		off += 86400
	}
	return off
}

// row is one line of the day's table.
type row struct {
	name                  string
	sent, failed, refused atomic.Int64 // refused: answers that are refusals by design (429, 503, 401 after revocation)
	retried               atomic.Int64 // token requests sent again to another replica
	took                  time.Duration
	notes                 []string
}

func (r *row) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// day is the set-up the scenarios share.
type day struct {
	t     *testing.T
	redis *redistest.Server
	ps    []*proc // ps[0]'s URL is the issuer of all three
	api   *proc
	rows  []*row
	ctx   context.Context
}

func (d *day) cli(stdin string, args ...string) string {
	d.t.Helper()
	return d.ps[0].cliEnv(d.t, stdin, []string{"TOKENSMITH_ADMIN_TOKEN=" + sharedAdminToken}, args...)
}

// client creates a client with the CLI and returns its id and secret.
func (d *day) client(args ...string) (string, string) {
	d.t.Helper()
	out := d.cli("", append([]string{"--json", "client", "create", "--audience", apiAudience}, args...)...)
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.Secret == "" {
		d.t.Fatalf("client create: %v\n%s", err, out)
	}
	return c.ID, c.Secret
}

// scenario runs one part of the day as a subtest and records its row.
func (d *day) scenario(name string, f func(t *testing.T, r *row)) {
	r := &row{name: name}
	d.rows = append(d.rows, r)
	start := time.Now()
	d.t.Run(name, func(t *testing.T) { f(t, r) })
	r.took = time.Since(start)
}

// token asks replica i (then the next ones, if i's cannot be reached) for a client_credentials
// token with x/oauth2. An HTTP answer, even a refusal, is not retried: it is the answer.
func (d *day) token(r *row, i int, id, secret string, scopes ...string) (*oauth2.Token, error) {
	var err error
	for try := range len(d.ps) {
		p := d.ps[(i+try)%len(d.ps)]
		cfg := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: p.url + "/oauth2/token", Scopes: scopes,
			AuthStyle: oauth2.AuthStyleInHeader}
		r.sent.Add(1)
		var tok *oauth2.Token
		tok, err = cfg.Token(d.ctx)
		var re *oauth2.RetrieveError
		if err == nil || errors.As(err, &re) {
			return tok, err
		}
		r.retried.Add(1)
	}
	return nil, err
}

// call sends one request to the resource server.
func (d *day) call(r *row, method, path string, h http.Header) (int, string, string) {
	req, _ := http.NewRequest(method, d.api.url+path, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	r.sent.Add(1)
	resp, err := httpClient.Do(req)
	if err != nil {
		r.failed.Add(1)
		return -1, "", err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
}

// expect calls the resource server and counts a failure unless it answers want.
func (d *day) expect(t *testing.T, r *row, want int, method, path string, h http.Header) (string, string) {
	t.Helper()
	got, challenge, body := d.call(r, method, path, h)
	if got != want {
		if got != -1 {
			r.failed.Add(1)
		}
		t.Errorf("%s %s: %d %s %s, want %d", method, path, got, challenge, body, want)
	}
	return challenge, body
}

// refusedAfter polls the resource server every 20 ms until it answers 401 to tok, and returns
// how long that took and the challenge. Refusals count as designed; a wait past max is a
// failure.
func (d *day) refusedAfter(t *testing.T, r *row, method, path, tok string, max time.Duration) (time.Duration, string) {
	t.Helper()
	began := time.Now()
	for {
		status, challenge, body := d.call(r, method, path, bearer(tok))
		if status == 401 {
			r.refused.Add(1)
			return time.Since(began), challenge
		}
		if status >= 300 || time.Since(began) > max {
			r.failed.Add(1)
			t.Fatalf("%s %s: %d %s %s, want 401 within %s", method, path, status, challenge, body, max)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// checkSigned verifies a token with go-jose against the JWKS replica p publishes, and checks
// what RFC 9068 and the docs promise about it. It returns the kid.
func checkSigned(t *testing.T, p *proc, tok, issuer, clientID string) string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(jwksOf(t, p)), &set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("go-jose: %v", err)
	}
	h := parsed.Headers[0]
	keys := set.Key(h.KeyID)
	if len(keys) != 1 || h.ExtraHeaders[jose.HeaderType] != "at+jwt" {
		t.Fatalf("header %+v: want typ at+jwt and a kid of the JWKS", h)
	}
	tp, _ := keys[0].Thumbprint(crypto.SHA256)
	if base64.RawURLEncoding.EncodeToString(tp) != h.KeyID {
		t.Fatalf("kid %s is not the RFC 7638 thumbprint of its key", h.KeyID)
	}
	var std jwt.Claims
	var extra struct {
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
	}
	if err := parsed.Claims(keys[0].Key, &std, &extra); err != nil {
		t.Fatalf("go-jose signature check: %v", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{apiAudience}, Time: time.Now()}, time.Second); err != nil {
		t.Fatalf("claims: %v", err)
	}
	if extra.ClientID != clientID || std.ID == "" || std.IssuedAt == nil || std.Expiry == nil || std.Subject == "" {
		t.Fatalf("claims %+v %+v", std, extra)
	}
	if len(tok) > 1000 {
		t.Fatalf("token of %d characters, over ATOL's 1000", len(tok))
	}
	return h.KeyID
}

// kidOf reads the kid of a token without verifying it (go-jose).
func kidOf(tok string) string {
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return ""
	}
	return parsed.Headers[0].KeyID
}

// startAPI runs the example resource server and waits until it answers. With API_TLS_CERT in
// env it serves HTTPS, and the proc's client trusts that certificate.
func startAPI(t *testing.T, env ...string) *proc {
	t.Helper()
	addr := freePort(t)
	p := &proc{stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}, url: "http://" + addr, done: make(chan error, 1), client: http.DefaultClient}
	for _, kv := range env {
		if cert, ok := strings.CutPrefix(kv, "API_TLS_CERT="); ok {
			b, err := os.ReadFile(cert)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(b)
			p.url = "https://" + addr
			p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		}
	}
	p.cmd = exec.Command(resourceServerBinary)
	p.cmd.Env = append(append(os.Environ(), "API_LISTEN="+addr), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	until(t, 10*time.Second, func() bool {
		resp, err := p.client.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return p
}

// load runs workers that repeat step until stop is closed.
func load(workers int, stop <-chan struct{}, step func(worker int)) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				step(w)
			}
		}()
	}
	return &wg
}

// TestIntegratorsDay: see the comment at the top of this file. The scenarios share the
// processes; each row of the table it logs counts the requests the integrator sent (token
// requests and API calls), the failures (none is acceptable) and the refusals the scenario
// asks for (a daily limit, a Redis outage, a revocation).
func TestIntegratorsDay(t *testing.T) {
	began := time.Now()
	d := &day{t: t, ctx: context.WithValue(context.Background(), oauth2.HTTPClient, httpClient)}
	d.redis = redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")

	// The day of the daily limit ends 30 s from now: after the limit is reached (a few seconds
	// after the replicas start), and about when the other scenarios are done.
	midnight := time.Now().Truncate(time.Second).Add(30 * time.Second)
	zones := t.TempDir()
	offsetZone(t, zones, "E2E/Midnight", offsetForMidnight(midnight))
	env := []string{"TOKENSMITH_STORAGE=" + d.redis.URL(), "TOKENSMITH_ADMIN_TOKEN=" + sharedAdminToken,
		"TOKENSMITH_REPLICA_TIMEOUT=3s", "TOKENSMITH_LOG_LEVEL=warn",
		"ZONEINFO=" + zones, "TOKENSMITH_DAILY_LIMIT_TIMEZONE=E2E/Midnight"}
	r0 := start(t, t.TempDir(), env...)
	d.ps = []*proc{r0}
	for range 2 {
		d.ps = append(d.ps, start(t, t.TempDir(), append(env, "TOKENSMITH_ISSUER="+r0.url)...))
	}
	awaitReplicas(t, d.ps)
	issuer := r0.url

	apiID, apiSecret := d.client("--name", "orders-api", "--resource-server")
	d.api = startAPI(t, "TOKENSMITH_ISSUER="+issuer, "API_AUDIENCE="+apiAudience,
		"API_CLIENT_ID="+apiID, "API_CLIENT_SECRET="+apiSecret, "API_INTROSPECTION_CACHE=1s")
	t.Logf("set-up: Redis, 3 replicas, the resource server: %s", time.Since(began).Round(time.Millisecond))

	shopID, shopSecret := d.client("--name", "shop", "--scope", "orders:read,orders:write")
	var shopToken string

	d.scenario("create a client, get a token, call the API", func(t *testing.T, r *row) {
		tok, err := d.token(r, 0, shopID, shopSecret, "orders:read")
		if err != nil {
			t.Fatal(err)
		}
		shopToken = tok.AccessToken
		kid := checkSigned(t, d.ps[1], shopToken, issuer, shopID)
		r.note("token of %d characters, kid %s…, verified by go-jose", len(shopToken), kid[:8])
		if _, body := d.expect(t, r, 200, "GET", "/orders", bearer(shopToken)); !strings.Contains(body, shopID) {
			t.Errorf("GET /orders: %s", body)
		}
		challenge, _ := d.expect(t, r, 403, "POST", "/orders", bearer(shopToken))
		if want := `Bearer realm="orders", error="insufficient_scope", error_description="the token lacks the scope orders:write", scope="orders:write"`; challenge != want {
			t.Errorf("POST /orders with orders:read only: %s", challenge)
		}
		d.expect(t, r, 200, "GET", "/evotor/orders", http.Header{"X-Authorization": {shopToken}})
		d.expect(t, r, 200, "GET", "/evotor/orders?access_token="+shopToken, nil)
		if challenge, _ := d.expect(t, r, 401, "GET", "/orders", nil); challenge != `Bearer realm="orders"` {
			t.Errorf("no token: %s", challenge)
		}
		challenge, body := d.expect(t, r, 401, "GET", "/tokens-make/orders", bearer(shopToken[:len(shopToken)-4]+"AAAA"))
		if challenge != `Bearer realm="orders", error="invalid_token", error_description="the token signature is invalid"` ||
			strings.TrimSpace(body) != `{"success":false,"error":{"code":"ApiInvalidTokenError","message":"Invalid Token"}}` {
			t.Errorf("tokens.make envelope: %s %s", challenge, body)
		}
		r.refused.Add(3)
	})

	d.scenario("one token reused across three replicas", func(t *testing.T, r *row) {
		id, secret := d.client("--name", "atol", "--reuse", "--scope", "orders:read")
		seen := map[string]bool{}
		for i := range 30 {
			tok, err := d.token(r, i, id, secret)
			if err != nil {
				t.Fatal(err)
			}
			if !seen[tok.AccessToken] {
				seen[tok.AccessToken] = true
				checkSigned(t, d.ps[i%3], tok.AccessToken, issuer, id)
			}
			d.expect(t, r, 200, "GET", "/orders", bearer(tok.AccessToken))
		}
		r.note("30 token requests, 10 to each replica → %d distinct token(s), each accepted by the API", len(seen))
		if len(seen) > 3 {
			t.Errorf("%d distinct tokens, want at most one per replica", len(seen))
		}
	})

	var limitID, limitSecret string
	d.scenario("daily limit reached", func(t *testing.T, r *row) {
		limitID, limitSecret = d.client("--name", "tokens-make", "--daily-limit", "5", "--scope", "orders:read")
		for i := range 5 {
			tok, err := d.token(r, i, limitID, limitSecret)
			if err != nil {
				t.Fatalf("token %d of 5: %v", i+1, err)
			}
			d.expect(t, r, 200, "GET", "/orders", bearer(tok.AccessToken))
		}
		for i := range 3 {
			_, err := d.token(r, i, limitID, limitSecret)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != 429 || re.ErrorCode != "rate_limited" {
				t.Fatalf("token 6 on replica %d: %v, want 429 rate_limited", i, err)
			}
			r.refused.Add(1)
			after, _ := strconv.Atoi(re.Response.Header.Get("Retry-After"))
			if left := time.Until(midnight); left < 2*time.Second {
				t.Fatalf("the zone's midnight is %s away: the set-up took too long to see the limit before it", left)
			} else if diff := time.Duration(after)*time.Second - left; diff < -2*time.Second || diff > 2*time.Second {
				t.Fatalf("Retry-After %ds, but midnight in the limit's zone is %s away", after, left.Round(time.Second))
			}
			if i == 0 {
				r.note("6th token: 429, Retry-After %ss = the zone's midnight", re.Response.Header.Get("Retry-After"))
			}
		}
	})

	d.scenario("password login and refresh rotation", func(t *testing.T, r *row) {
		id, secret := d.client("--name", "cabinet", "--grant", "password,refresh_token", "--scope", "orders:read,orders:write",
			"--refresh-grace", "0s")
		out := d.cli("lena-password\n", "--json", "user", "create", "--username", "lena", "--password-stdin", "--scope", "orders:read")
		var user struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(out), &user); err != nil || user.ID == "" {
			t.Fatalf("user create: %v %s", err, out)
		}
		cfg := func(p *proc) *oauth2.Config {
			return &oauth2.Config{ClientID: id, ClientSecret: secret, Scopes: []string{"orders:read", "orders:write"},
				Endpoint: oauth2.Endpoint{TokenURL: p.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
		}
		r.sent.Add(1)
		login, err := cfg(d.ps[0]).PasswordCredentialsToken(d.ctx, "lena", "lena-password")
		if err != nil {
			t.Fatal(err)
		}
		if _, body := d.expect(t, r, 200, "GET", "/me", bearer(login.AccessToken)); !strings.Contains(body, `"username":"lena"`) {
			t.Errorf("GET /me: %s", body)
		}
		// Refresh on another replica: x/oauth2 refreshes a token it holds as expired.
		stale := *login
		stale.Expiry = time.Now().Add(-time.Minute)
		r.sent.Add(1)
		next, err := cfg(d.ps[1]).TokenSource(d.ctx, &stale).Token()
		if err != nil || next.RefreshToken == login.RefreshToken || next.AccessToken == login.AccessToken {
			t.Fatalf("refresh on replica 1: %v", err)
		}
		d.expect(t, r, 201, "POST", "/refunds", bearer(next.AccessToken))
		// The first refresh token again, on the third replica, after the (zero) grace: replay.
		r.sent.Add(1)
		_, err = cfg(d.ps[2]).TokenSource(d.ctx, &stale).Token()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("replayed refresh token: %v, want invalid_grant", err)
		}
		r.refused.Add(1)
		// The replay ended the login: the introspecting route refuses its access token once its
		// cached answer (1 s) runs out; the local-only route accepts it until its exp (which is
		// what Introspect is for).
		took, challenge := d.refusedAfter(t, r, "POST", "/refunds", next.AccessToken, 3*time.Second)
		if challenge != `Bearer realm="orders", error="invalid_token", error_description="the token has been revoked"` {
			t.Errorf("POST /refunds after the replay: %s", challenge)
		}
		d.expect(t, r, 200, "GET", "/orders", bearer(next.AccessToken))
		r.note("login on r0, refresh on r1, replay on r2 → invalid_grant; the login's access token refused by POST /refunds %s later",
			took.Round(time.Millisecond))
	})

	d.scenario("a replica killed mid-load", func(t *testing.T, r *row) {
		stop := make(chan struct{})
		wg := load(6, stop, func(w int) {
			i := int(r.sent.Load()) % 3
			tok, err := d.token(r, i, shopID, shopSecret, "orders:read")
			if err != nil {
				r.failed.Add(1)
				t.Errorf("token: %v", err)
				return
			}
			d.expect(t, r, 200, "GET", "/orders", bearer(tok.AccessToken))
		})
		time.Sleep(700 * time.Millisecond)
		victim := d.ps[2]
		if err := victim.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-victim.done
		time.Sleep(1500 * time.Millisecond)
		close(stop)
		wg.Wait()
		d.ps = d.ps[:2]
		r.note("SIGKILL on r2 0.7 s into 2.2 s of load (6 workers: token, then GET /orders); %d token requests went on to another replica", r.retried.Load())
		if r.retried.Load() == 0 {
			t.Errorf("no request met the dead replica: the kill was not under load")
		}
	})

	d.scenario("Redis restarted", func(t *testing.T, r *row) {
		stop := make(chan struct{})
		var down atomic.Bool
		var during, unavailable atomic.Int64
		wg := load(4, stop, func(w int) {
			if w%2 == 0 {
				// An integrator holding a token: the API verifies it without the server.
				d.expect(t, r, 200, "GET", "/orders", bearer(shopToken))
				time.Sleep(5 * time.Millisecond)
				return
			}
			_, err := d.token(r, w, shopID, shopSecret, "orders:read")
			var re *oauth2.RetrieveError
			switch {
			case err == nil:
			case errors.As(err, &re) && re.Response.StatusCode == 503:
				unavailable.Add(1)
				r.refused.Add(1)
			default:
				r.failed.Add(1)
				t.Errorf("token while Redis restarts: %v", err)
			}
			if down.Load() {
				during.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		})
		time.Sleep(300 * time.Millisecond)
		d.redis.Stop()
		down.Store(true)
		time.Sleep(1500 * time.Millisecond)
		d.redis.Restart()
		back := time.Now()
		var recovered time.Duration
		until(t, 10*time.Second, func() bool {
			_, err := d.token(r, 0, shopID, shopSecret)
			recovered = time.Since(back)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
			return err == nil
		})
		down.Store(false)
		time.Sleep(300 * time.Millisecond)
		close(stop)
		wg.Wait()
		if unavailable.Load() == 0 {
			t.Errorf("no 503 while Redis was down: the outage was not seen")
		}
		r.note("%d token answers 503 while Redis was down, 200 again %s after it restarted; API calls all 200",
			unavailable.Load(), recovered.Round(time.Millisecond))
	})

	d.scenario("key rotated while the API keeps running", func(t *testing.T, r *row) {
		oldKid := kidOf(shopToken)
		stop := make(chan struct{})
		var mu sync.Mutex
		kids := map[string]int{}
		var newToken string
		wg := load(4, stop, func(w int) {
			tok, err := d.token(r, int(r.sent.Load()), shopID, shopSecret, "orders:read")
			if err != nil {
				r.failed.Add(1)
				t.Errorf("token: %v", err)
				return
			}
			kid := kidOf(tok.AccessToken)
			mu.Lock()
			kids[kid]++
			if kid != oldKid {
				newToken = tok.AccessToken
			}
			mu.Unlock()
			d.expect(t, r, 200, "GET", "/orders", bearer(tok.AccessToken))
		})
		time.Sleep(500 * time.Millisecond)
		out := d.cli("", "--json", "keys", "rotate", "--publish-ahead", "2s")
		var next struct {
			Kid         string    `json:"kid"`
			ActivatesAt time.Time `json:"activates_at"`
		}
		if err := json.Unmarshal([]byte(out), &next); err != nil || next.Kid == "" {
			t.Fatalf("keys rotate: %v %s", err, out)
		}
		time.Sleep(time.Until(next.ActivatesAt) + 1500*time.Millisecond)
		close(stop)
		wg.Wait()
		if kids[next.Kid] == 0 {
			t.Fatalf("no token signed with the new key %s: %v", next.Kid, kids)
		}
		if got := checkSigned(t, d.ps[1], newToken, issuer, shopID); got != next.Kid {
			t.Fatalf("go-jose read kid %s, want %s", got, next.Kid)
		}
		r.note("keys rotate --publish-ahead 2s under load: %d tokens of the old key, %d of the new, every one accepted",
			kids[oldKid], kids[next.Kid])
	})

	d.scenario("a token revoked, refused by the introspecting endpoint", func(t *testing.T, r *row) {
		tok, err := d.token(r, 1, shopID, shopSecret)
		if err != nil {
			t.Fatal(err)
		}
		d.expect(t, r, 201, "POST", "/refunds", bearer(tok.AccessToken))
		// The operator revokes it with the CLI (the token on standard input).
		if out := d.cli(tok.AccessToken+"\n", "token", "revoke", "-"); !strings.Contains(out, "revoked") {
			t.Fatalf("token revoke: %s", out)
		}
		// The introspection cache is 1 s; the rest of the bound is slack for a loaded machine.
		took, challenge := d.refusedAfter(t, r, "POST", "/refunds", tok.AccessToken, 3*time.Second)
		if challenge != `Bearer realm="orders", error="invalid_token", error_description="the token has been revoked"` {
			t.Errorf("POST /refunds after the revocation: %s", challenge)
		}
		d.expect(t, r, 200, "GET", "/orders", bearer(tok.AccessToken)) // local checks only: good until exp

		// A personal token: accepted by /me through introspection, refused once deleted.
		out := d.cli("", "--json", "user", "show", "lena")
		var user struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal([]byte(out), &user)
		out = d.cli("", "--json", "pat", "create", user.ID, "--name", "day", "--scope", "orders:read")
		var pat struct {
			ID    string `json:"id"`
			Token string `json:"token"`
		}
		if err := json.Unmarshal([]byte(out), &pat); err != nil || !strings.HasPrefix(pat.Token, "tsp_") {
			t.Fatalf("pat create: %v %s", err, out)
		}
		if _, body := d.expect(t, r, 200, "GET", "/me", bearer(pat.Token)); !strings.Contains(body, `"personal_token":true`) {
			t.Errorf("GET /me with a personal token: %s", body)
		}
		d.cli("", "pat", "revoke", user.ID, pat.ID)
		patTook, _ := d.refusedAfter(t, r, "GET", "/me", pat.Token, 3*time.Second)
		r.note("access token refused by POST /refunds %s after `token revoke` (still accepted by GET /orders); personal token refused by GET /me %s after `pat revoke`",
			took.Round(time.Millisecond), patTook.Round(time.Millisecond))
	})

	d.scenario("the daily limit resets at the zone's midnight", func(t *testing.T, r *row) {
		if wait := time.Until(midnight); wait > 0 {
			r.note("waited %s for midnight", wait.Round(time.Millisecond))
			time.Sleep(wait)
		}
		tok, err := d.token(r, 1, limitID, limitSecret)
		if err != nil {
			t.Fatalf("first token of the new day: %v", err)
		}
		d.expect(t, r, 200, "GET", "/orders", bearer(tok.AccessToken))
		r.note("first token of the new day issued %s after midnight", time.Since(midnight).Round(time.Millisecond))
	})

	// No token reached the resource server's log.
	if strings.Contains(d.api.stderr.String(), "eyJ") || strings.Contains(d.api.stderr.String(), "tsp_") {
		t.Errorf("a token reached the resource server's log")
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\n| scenario | requests | failures | refused by design | retried elsewhere | time |\n|---|---|---|---|---|---|\n")
	var total time.Duration
	for _, r := range d.rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s |\n", r.name, r.sent.Load(), r.failed.Load(), r.refused.Load(), r.retried.Load(), r.took.Round(10*time.Millisecond))
		total += r.took
	}
	for _, r := range d.rows {
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s: %s\n", r.name, n)
		}
	}
	t.Logf("the integrator's day, %s in all (%s in scenarios):%s", time.Since(began).Round(100*time.Millisecond), total.Round(100*time.Millisecond), b.String())
	for _, r := range d.rows {
		if r.failed.Load() != 0 {
			t.Errorf("%s: %d failed requests", r.name, r.failed.Load())
		}
	}
}
