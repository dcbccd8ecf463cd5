package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// pair starts two replicas of one service (one Redis, one issuer) that trust a client record
// they read for an hour: a change can only reach the other replica quickly by being pushed.
func pair(t *testing.T, redisURL string) (a, b *proc) {
	t.Helper()
	ps := make([]*proc, 2)
	for i := range ps {
		ps[i] = start(t, t.TempDir(), "TOKENSMITH_STORAGE="+redisURL, "TOKENSMITH_ADMIN_TOKEN="+sharedAdminToken,
			"TOKENSMITH_ISSUER=https://tokens.example.test",
			"TOKENSMITH_REPLICA_TIMEOUT=3s", "TOKENSMITH_LOG_LEVEL=warn", "TOKENSMITH_CLIENT_CACHE_TTL=1h")
	}
	return ps[0], ps[1]
}

// until polls probe until it reports true and returns how long that took, or fails after max.
func until(t *testing.T, max time.Duration, probe func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !probe() {
		if time.Since(start) > max {
			t.Fatalf("not seen within %s", max)
		}
	}
	return time.Since(start)
}

func introspectAs(p *proc, id, sec, tok string) bool {
	req, _ := http.NewRequest("POST", p.url+"/oauth2/introspect", strings.NewReader("token="+url.QueryEscape(tok)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := httpClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var v struct {
		Active bool `json:"active"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return v.Active
}

func revokeAs(t *testing.T, p *proc, id, sec, tok string) {
	t.Helper()
	req, _ := http.NewRequest("POST", p.url+"/oauth2/revoke", strings.NewReader("token="+url.QueryEscape(tok)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := httpClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
}

func summary(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	return fmt.Sprintf("n=%d median=%s p90=%s max=%s", len(s), s[len(s)/2].Round(10*time.Microsecond),
		s[len(s)*9/10].Round(10*time.Microsecond), s[len(s)-1].Round(10*time.Microsecond))
}

// TestAdminChangesReachEveryReplica measures, over many trials, the time from an admin change
// answered by replica A to replica B refusing what the change took away. B has the client
// cached for an hour, so without the push it would keep answering 200 for that hour.
func TestAdminChangesReachEveryReplica(t *testing.T) {
	srv := redistest.Start(t)
	a, b := pair(t, srv.URL())
	const trials = 30
	var deleted, rotated, revoked, patDeleted []time.Duration
	var user struct {
		ID string `json:"id"`
	}
	if st := a.admin(t, "POST", "/admin/users", `{"username":"pat-owner","password":"pat-owner-password","scopes":["s"]}`, &user); st != 201 {
		t.Fatalf("user: %d", st)
	}
	for i := range trials {
		// Client deleted on A.
		id, sec := createClient(t, a, `{}`)
		if r := ccToken(b, id, sec); r.status != 200 {
			t.Fatalf("warm-up on B: %+v", r)
		}
		if st := a.admin(t, "DELETE", "/admin/clients/"+url.PathEscape(id), "", nil); st != 204 {
			t.Fatalf("delete: %d", st)
		}
		deleted = append(deleted, until(t, 2*time.Second, func() bool { return ccToken(b, id, sec).status == 401 }))

		// Secret rotated without grace on A.
		id, sec = createClient(t, a, `{}`)
		tok := ccToken(b, id, sec)
		if tok.status != 200 {
			t.Fatalf("warm-up on B: %+v", tok)
		}
		var rot struct {
			ClientSecret string `json:"client_secret"`
		}
		if st := a.admin(t, "POST", "/admin/clients/"+url.PathEscape(id)+"/rotate-secret", "", &rot); st != 200 {
			t.Fatalf("rotate: %d", st)
		}
		rotated = append(rotated, until(t, 2*time.Second, func() bool { return ccToken(b, id, sec).status == 401 }))
		if r := ccToken(b, id, rot.ClientSecret); r.status != 200 {
			t.Fatalf("new secret on B: %+v", r)
		}

		// Token revoked on A.
		if !introspectAs(b, id, rot.ClientSecret, tok.token) {
			t.Fatalf("trial %d: token inactive before revocation", i)
		}
		revokeAs(t, a, id, rot.ClientSecret, tok.token)
		revoked = append(revoked, until(t, 2*time.Second, func() bool { return !introspectAs(b, id, rot.ClientSecret, tok.token) }))

		// Personal token deleted on A, after B has cached it.
		var pat struct {
			ID    string `json:"id"`
			Token string `json:"token"`
		}
		if st := a.admin(t, "POST", "/admin/users/"+user.ID+"/tokens", `{"name":"trial","scopes":["s"]}`, &pat); st != 201 {
			t.Fatalf("personal token: %d", st)
		}
		if !introspectAs(b, id, rot.ClientSecret, pat.Token) {
			t.Fatalf("trial %d: personal token inactive on B", i)
		}
		if st := a.admin(t, "DELETE", "/admin/users/"+user.ID+"/tokens/"+pat.ID, "", nil); st != 204 {
			t.Fatalf("delete personal token: %d", st)
		}
		patDeleted = append(patDeleted, until(t, 2*time.Second, func() bool { return !introspectAs(b, id, rot.ClientSecret, pat.Token) }))
	}
	t.Logf("client deleted on A → refused by B:          %s", summary(deleted))
	t.Logf("secret rotated on A → old one refused by B:  %s", summary(rotated))
	t.Logf("token revoked on A → inactive on B:          %s", summary(revoked))
	t.Logf("personal token deleted on A → refused by B:  %s", summary(patDeleted))
}

// TestChangesSurviveALostFeed: B's subscription is cut and a client deleted before B has
// subscribed again. B must not answer from its cache meanwhile, and must not keep the stale
// record once the feed is back.
func TestChangesSurviveALostFeed(t *testing.T) {
	srv := redistest.Start(t)
	a, b := pair(t, srv.URL())
	id, sec := createClient(t, a, `{}`)
	if r := ccToken(b, id, sec); r.status != 200 {
		t.Fatalf("warm-up on B: %+v", r)
	}
	kill := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strings.Split(srv.Addr, ":")[1], "CLIENT", "KILL", "TYPE", "pubsub")
	if out, err := kill.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli: %v %s", err, out)
	}
	if st := a.admin(t, "DELETE", "/admin/clients/"+url.PathEscape(id), "", nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	took := until(t, 3*time.Second, func() bool { return ccToken(b, id, sec).status == 401 })
	t.Logf("deleted while B's feed was cut: refused by B after %s", took.Round(time.Millisecond))
	time.Sleep(time.Second) // the feed is back by now; the stale record must not return
	if r := ccToken(b, id, sec); r.status != 401 {
		t.Fatalf("after the feed came back B answered %+v", r)
	}
}

// fromAddr is an HTTP client whose connections come from a given loopback address, so the
// servers see two different callers.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func loginAs(c *http.Client, p *proc, id, sec, user, pw string) answer {
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}
	req, _ := http.NewRequest("POST", p.url+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := c.Do(req)
	if err != nil {
		return answer{status: -1, errCode: err.Error()}
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return answer{status: resp.StatusCode, token: body.AccessToken, errCode: body.Error, retryAfter: resp.Header.Get("Retry-After")}
}

// TestLoginBackoffAcrossReplicas: wrong passwords sent to two replicas count together, and the
// real user logging in from an address that has not failed is not locked out.
func TestLoginBackoffAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, b := pair(t, srv.URL())
	id, sec := createClient(t, a, `{"grant_types":["password"]}`)
	if st := a.admin(t, "POST", "/admin/users", `{"username":"erin","password":"erin-password"}`, nil); st != 201 {
		t.Fatalf("user: %d", st)
	}
	guesser, user := fromAddr("127.0.0.1"), fromAddr("127.0.0.2")
	for i := range 5 { // the default limit: 5 wrong passwords per address
		p := []*proc{a, b}[i%2]
		if r := loginAs(guesser, p, id, sec, "erin", "guess"); r.status != 400 || r.errCode != "invalid_grant" {
			t.Fatalf("guess %d on %s: %+v", i+1, p.url, r)
		}
	}
	for _, p := range []*proc{a, b} {
		r := loginAs(guesser, p, id, sec, "ERIN", "erin-password")
		if r.status != 429 || r.errCode != "rate_limited" || r.retryAfter == "" {
			t.Fatalf("6th attempt from the guessing address on %s: %+v, want 429 with Retry-After", p.url, r)
		}
	}
	for _, p := range []*proc{a, b} {
		if r := loginAs(user, p, id, sec, "erin", "erin-password"); r.status != 200 {
			t.Fatalf("the real user from another address on %s: %+v, want 200", p.url, r)
		}
	}
}

// TestOperatorRevokesWithTheCLI: an operator holding only the admin token inspects and revokes
// an integrator's tokens with the CLI, the token read from standard input.
func TestOperatorRevokesWithTheCLI(t *testing.T) {
	p := start(t, t.TempDir(), "TOKENSMITH_STORAGE=memory:")
	out := p.cli(t, "", "--json", "client", "create", "--name", "partner", "--grant", "password,refresh_token", "--scope", "orders:read")
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("client create --json: %v\n%s", err, out)
	}
	p.cli(t, "frank-password\n", "user", "create", "--username", "frank", "--password-stdin")
	l := loginAs(httpClient, p, c.ID, c.Secret, "frank", "frank-password")
	if l.status != 200 {
		t.Fatalf("login: %+v", l)
	}

	shown := p.cli(t, l.token+"\n", "token", "introspect", "-")
	for _, want := range []string{"active:", "true", "client_id:", c.ID, "username:", "frank", "scope:", "orders:read", "token_type:", "Bearer"} {
		if !strings.Contains(shown, want) {
			t.Fatalf("token introspect output lacks %q:\n%s", want, shown)
		}
	}
	if strings.Contains(shown, l.token) {
		t.Fatal("introspect printed the token itself")
	}
	if got := p.cli(t, "", "token", "revoke", l.token); !strings.Contains(got, "revoked") {
		t.Fatalf("token revoke: %s", got)
	}
	if got := p.cli(t, "", "--json", "token", "introspect", l.token); strings.TrimSpace(strings.Join(strings.Fields(got), "")) != `{"active":false}` {
		t.Fatalf("introspect --json after revoke: %s", got)
	}
	if got := p.cli(t, "", "--json", "token", "revoke", l.token); !strings.Contains(got, `"revoked": false`) {
		t.Fatalf("revoking again: %s", got)
	}
	if introspectAs(p, c.ID, c.Secret, l.token) {
		t.Fatal("the public introspection endpoint still reports the token active")
	}
}
