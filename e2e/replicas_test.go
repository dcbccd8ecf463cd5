package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

const sharedAdminToken = "e2e-shared-admin-token-0123456789"

// cluster starts n replicas sharing one Redis and waits until each counts all n.
func cluster(t *testing.T, redisURL string, n int) []*proc {
	t.Helper()
	var ps []*proc
	for range n {
		ps = append(ps, start(t, t.TempDir(), "TOKENSMITH_STORAGE="+redisURL, "TOKENSMITH_ADMIN_TOKEN="+sharedAdminToken,
			"TOKENSMITH_REPLICA_TIMEOUT=3s", "TOKENSMITH_LOG_LEVEL=warn"))
	}
	awaitReplicas(t, ps)
	return ps
}

// awaitReplicas waits until every replica of ps counts them all.
func awaitReplicas(t *testing.T, ps []*proc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range ps {
		for {
			var live []map[string]any
			p.admin(t, "GET", "/admin/replicas", "", &live)
			if len(live) == len(ps) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s sees %d replicas, want %d", p.url, len(live), len(ps))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Each replica refreshes its own count at its next heartbeat (every second here).
	time.Sleep(1200 * time.Millisecond)
}

func (p *proc) admin(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, p.adminURL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sharedAdminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type answer struct {
	status     int
	token      string
	errCode    string
	retryAfter string
	elapsed    time.Duration
}

var httpClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func ccToken(p *proc, id, sec string) answer {
	start := time.Now()
	req, _ := http.NewRequest("POST", p.url+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{status: -1, errCode: err.Error(), elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return answer{resp.StatusCode, body.AccessToken, body.Error, resp.Header.Get("Retry-After"), time.Since(start)}
}

// fanOut sends n requests, workers at a time, request i to replica i mod len(ps).
func fanOut(ps []*proc, id, sec string, n, workers int) []answer {
	out := make([]answer, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				out[i] = ccToken(ps[i%len(ps)], id, sec)
			}
		}()
	}
	wg.Wait()
	return out
}

func createClient(t *testing.T, p *proc, body string) (string, string) {
	t.Helper()
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if st := p.admin(t, "POST", "/admin/clients", body, &c); st != 201 {
		t.Fatalf("create client: %d", st)
	}
	return c.ClientID, c.ClientSecret
}

func TestReplicasShareReuseAndDailyLimit(t *testing.T) {
	srv := redistest.Start(t)
	ps := cluster(t, srv.URL(), 3)

	t.Run("reuse: 300 requests, at most 3 tokens", func(t *testing.T) {
		id, sec := createClient(t, ps[0], `{"reuse":true,"scopes":["kkt"]}`)
		answers := fanOut(ps, id, sec, 300, 30)
		distinct := map[string]bool{}
		for i, a := range answers {
			if a.status != 200 {
				t.Fatalf("request %d: %d %s", i, a.status, a.errCode)
			}
			distinct[a.token] = true
		}
		t.Logf("300 requests over 3 replicas, 30 at a time: %d distinct access tokens", len(distinct))
		if len(distinct) > 3 {
			t.Fatalf("%d distinct tokens, want at most 3 (one per live replica)", len(distinct))
		}
	})

	t.Run("daily limit: 150 concurrent, exactly 100 issued", func(t *testing.T) {
		id, sec := createClient(t, ps[1], `{"daily_limit":100}`)
		answers := fanOut(ps, id, sec, 150, 150)
		ok, limited := 0, 0
		for _, a := range answers {
			switch {
			case a.status == 200:
				ok++
			case a.status == 429 && a.errCode == "rate_limited" && a.retryAfter != "":
				limited++
			default:
				t.Fatalf("unexpected answer %+v", a)
			}
		}
		t.Logf("150 concurrent requests with daily_limit 100: %d issued, %d answered 429", ok, limited)
		if ok != 100 || limited != 50 {
			t.Fatalf("%d issued and %d limited, want 100 and 50", ok, limited)
		}
	})

	t.Run("a stopped replica drops out", func(t *testing.T) {
		t0 := time.Now()
		ps[2].stop(t)
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("graceful stop took %s", d)
		}
		var live []map[string]any
		deadline := time.Now().Add(6 * time.Second)
		for time.Now().Before(deadline) {
			ps[0].admin(t, "GET", "/admin/replicas", "", &live)
			if len(live) == 2 {
				t.Logf("stopped replica gone from /admin/replicas %s after SIGTERM", time.Since(t0))
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("after stopping one of 3 replicas: %d live", len(live))
	})
}

// TestRedisOutage stops Redis under load and starts it again: 503s (never 500) while it is
// down, each answered within a second, JWKS served throughout, and 200s again soon after.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	p := start(t, t.TempDir(), "TOKENSMITH_STORAGE="+srv.URL(), "TOKENSMITH_ADMIN_TOKEN="+sharedAdminToken)
	id, sec := createClient(t, p, `{"daily_limit":100000}`)

	var mu sync.Mutex
	var answers []answer
	var phase atomic.Value
	phase.Store("up")
	stop := make(chan struct{})
	wg := load(4, stop, func(int) {
		before := phase.Load().(string)
		a := ccToken(p, id, sec)
		// A request counts for a phase only if it started and ended in it.
		if after := phase.Load().(string); after != before {
			before = "transition"
		}
		a.errCode = before + ":" + a.errCode
		mu.Lock()
		answers = append(answers, a)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	})
	time.Sleep(500 * time.Millisecond)
	goroutinesBefore := goroutines(t, p)
	srv.Stop()
	phase.Store("down")
	time.Sleep(1500 * time.Millisecond)

	for _, path := range []string{"/readyz", "/.well-known/jwks.json"} {
		resp, err := http.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[string]int{"/readyz": 503, "/.well-known/jwks.json": 200}[path]; resp.StatusCode != want {
			t.Errorf("%s with Redis down: %d, want %d", path, resp.StatusCode, want)
		}
	}
	phase.Store("restarting")
	srv.Restart()
	phase.Store("back")
	back := time.Now()
	var recovered time.Duration
	for time.Since(back) < 10*time.Second {
		if a := ccToken(p, id, sec); a.status == 200 {
			recovered = time.Since(back)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if recovered == 0 {
		t.Fatal("no 200 within 10s of Redis coming back")
	}
	// Nothing that waited on the dead Redis is left behind.
	time.Sleep(time.Second)
	if after := goroutines(t, p); after > goroutinesBefore+10 {
		t.Errorf("goroutines grew from %d to %d across the outage", goroutinesBefore, after)
	} else {
		t.Logf("goroutines before the outage %d, after recovery %d", goroutinesBefore, after)
	}

	counts := map[string]int{}
	var slowest time.Duration
	for _, a := range answers {
		phaseName, _, _ := strings.Cut(a.errCode, ":")
		counts[fmt.Sprintf("%s %d", phaseName, a.status)]++
		if a.status >= 500 && a.status != 503 || a.status == -1 {
			t.Errorf("answer %+v: only 200 or 503 are acceptable", a)
		}
		if phaseName == "down" {
			slowest = max(slowest, a.elapsed)
		}
	}
	t.Logf("answers by phase and status: %v; slowest while down: %s; 200 again %s after Redis restarted", counts, slowest, recovered)
	if counts["down 503"] == 0 {
		t.Fatal("no 503 while Redis was down")
	}
	if slowest > time.Second {
		t.Fatalf("an answer took %s while Redis was down, want under 1s", slowest)
	}
	// The outage ends in the log once the store answers and requests have stopped failing.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.stderr.String(), "store available again") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	logs := p.stderr.String()
	if strings.Contains(logs, "panic") {
		t.Fatalf("panic in the server log:\n%s", logs)
	}
	// The outage is logged once when it starts and once when it ends, with a count, at WARN;
	// not once per failed request. (The audit trail, in the log by default, has an event per
	// request by design.)
	var outageLines []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "msg=http ") || strings.Contains(line, "msg=audit ") || strings.Contains(line, "msg=\"tokensmith started\"") || line == "" {
			continue
		}
		outageLines = append(outageLines, line)
	}
	t.Logf("log lines besides the access log across the outage (%d 503s):\n%s", counts["down 503"], strings.Join(outageLines, "\n"))
	if n := strings.Count(logs, "level=ERROR"); n != 0 {
		t.Errorf("%d ERROR lines for a store outage, want none", n)
	}
	for _, want := range []string{"store unavailable", "store available again"} {
		if n := strings.Count(logs, want); n != 1 {
			t.Errorf("%d lines %q, want 1", n, want)
		}
	}
	if !regexp.MustCompile(`store available again.* failed_requests=[1-9]`).MatchString(logs) {
		t.Errorf("the end of the outage does not count the failed requests")
	}
	if len(outageLines) > 12 {
		t.Errorf("%d log lines for one outage, want a handful", len(outageLines))
	}
}

// goroutines reads go_goroutines from the replica's /metrics.
func goroutines(t *testing.T, p *proc) int {
	t.Helper()
	resp, err := http.Get(p.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}
