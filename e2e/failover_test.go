package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// replicaTimeout is the replica_timeout of the failover test; a write the replicas do not
// confirm must be answered 503 within it plus replyMargin.
const (
	replicaTimeout = 500 * time.Millisecond
	replyMargin    = time.Second
)

// reply is one HTTP answer of the failover test.
type reply struct {
	status int
	body   map[string]any
	raw    []byte
	took   time.Duration
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }

// do sends a request with a JSON or form body (by contentType) and headers.
func do(method, target, contentType, body string, header http.Header) reply {
	start := time.Now()
	req, _ := http.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{status: -1, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: b, took: time.Since(start)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func adminHeader(requestID string) http.Header {
	h := http.Header{"Authorization": {"Bearer " + sharedAdminToken}}
	if requestID != "" {
		h.Set("X-Request-Id", requestID)
	}
	return h
}

func basic(id, sec string) http.Header {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	return req.Header
}

const form = "application/x-www-form-urlencoded"

// acked is what a write kind's answers were: how many were acknowledged (2xx), and which of
// those the store no longer has after the failover.
type acked struct{ acknowledged, lost int }

// TestNothingAcknowledgedIsLostInAFailover is the Sentinel failover of a partition: the only
// replica is frozen (SIGSTOP), writes are sent, the master is killed (kill -9), the replica
// resumes and is promoted, and the old master comes back as its replica. With min_replicas=1
// every write answered 2xx survives and the writes made during the freeze are answered 503 in
// time; with min_replicas=0 they are answered 2xx and lost, which shows the test can fail.
func TestNothingAcknowledgedIsLostInAFailover(t *testing.T) {
	for _, minReplicas := range []int{1, 0} {
		t.Run(fmt.Sprintf("min_replicas=%d", minReplicas), func(t *testing.T) {
			failover(t, minReplicas)
		})
	}
}

func failover(t *testing.T, minReplicas int) {
	set := redistest.NewSentinel(t)
	storageURL := fmt.Sprintf("%s?min_replicas=%d&replica_timeout=%v", set.URL, minReplicas, replicaTimeout)
	p := start(t, t.TempDir(), "TOKENSMITH_STORAGE="+storageURL, "TOKENSMITH_ADMIN_TOKEN="+sharedAdminToken,
		"TOKENSMITH_LOG_LEVEL=error")
	admin := func(method, path, body, requestID string) reply {
		return do(method, p.adminURL+path, "application/json", body, adminHeader(requestID))
	}
	must := func(r reply, want int, what string) reply {
		t.Helper()
		if r.status != want {
			t.Fatalf("%s: %d %v, want %d", what, r.status, r.body, want)
		}
		return r
	}
	user := must(admin("POST", "/admin/users", `{"username":"ann","password":"ann-password","scopes":["s"]}`, ""), 201, "create user").str("id")
	pw := must(admin("POST", "/admin/clients", `{"grant_types":["password","refresh_token","client_credentials"]}`, ""), 201, "create client")
	pwID, pwSec := pw.str("client_id"), pw.str("client_secret")
	const limit = 12
	lim := must(admin("POST", "/admin/clients", fmt.Sprintf(`{"daily_limit":%d}`, limit), ""), 201, "create limited client")
	limID, limSec := lim.str("client_id"), lim.str("client_secret")
	cc := func(id, sec string) reply {
		return do("POST", p.url+"/oauth2/token", form, "grant_type=client_credentials", basic(id, sec))
	}
	login := func() reply {
		return do("POST", p.url+"/oauth2/token", form, "grant_type=password&username=ann&password=ann-password", basic(pwID, pwSec))
	}
	refresh := func(rt string) reply {
		return do("POST", p.url+"/oauth2/token", form, "grant_type=refresh_token&refresh_token="+url.QueryEscape(rt), basic(pwID, pwSec))
	}
	revoke := func(tok string) reply {
		return do("POST", p.url+"/oauth2/revoke", form, "token="+url.QueryEscape(tok), basic(pwID, pwSec))
	}
	introspect := func(tok string) bool {
		r := do("POST", p.url+"/oauth2/introspect", form, "token="+url.QueryEscape(tok), basic(pwID, pwSec))
		return r.body["active"] == true
	}

	// What each kind wrote and had acknowledged, to be checked after the failover.
	type writes struct {
		clients     []string // client ids
		revoked     []string // revoked access tokens
		rotated     []string // refresh tokens answered by a rotation
		personal    []string // personal token ids
		limitIssued int      // tokens of the limited client
	}
	var w writes
	var mu sync.Mutex
	const n = 4
	// Tokens for the writes of both rounds, taken now (issuing them writes nothing but the
	// logins' refresh families, which are acknowledged here).
	var toRevoke, toRotate []string
	for range 2 * n {
		toRevoke = append(toRevoke, must(cc(pwID, pwSec), 200, "client_credentials").str("access_token"))
		toRotate = append(toRotate, must(login(), 200, "login").str("refresh_token"))
	}
	// round sends n writes of every kind at once; ok reports whether a write was acknowledged.
	var unacked []reply
	var clientRequests []string
	round := func(name string, revokeThese, rotateThese []string) {
		var wg sync.WaitGroup
		record := func(r reply, ok bool, add func()) {
			mu.Lock()
			defer mu.Unlock()
			if ok {
				add()
			} else {
				unacked = append(unacked, r)
			}
		}
		for i := range n {
			wg.Go(func() {
				reqID := fmt.Sprintf("%s-client-%d", name, i)
				r := admin("POST", "/admin/clients", fmt.Sprintf(`{"name":%q}`, reqID), reqID)
				record(r, r.status == 201, func() { w.clients = append(w.clients, r.str("client_id")) })
				if r.status != 201 {
					mu.Lock()
					clientRequests = append(clientRequests, reqID)
					mu.Unlock()
				}
			})
			wg.Go(func() {
				r := revoke(revokeThese[i])
				record(r, r.status == 200, func() { w.revoked = append(w.revoked, revokeThese[i]) })
			})
			wg.Go(func() {
				r := refresh(rotateThese[i])
				record(r, r.status == 200, func() { w.rotated = append(w.rotated, r.str("refresh_token")) })
			})
			wg.Go(func() {
				r := admin("POST", "/admin/users/"+user+"/tokens", fmt.Sprintf(`{"name":"%s-%d","scopes":["s"]}`, name, i), "")
				record(r, r.status == 201, func() { w.personal = append(w.personal, r.str("id")) })
			})
			wg.Go(func() {
				r := cc(limID, limSec)
				record(r, r.status == 200, func() { w.limitIssued++ })
			})
		}
		wg.Wait()
	}

	// Before the partition: every write is acknowledged and replicated.
	round("before", toRevoke[:n], toRotate[:n])
	if len(unacked) > 0 {
		t.Fatalf("before the partition, %d writes were not acknowledged: %v", len(unacked), unacked[0])
	}
	before := w
	time.Sleep(100 * time.Millisecond)

	// The partition: the replica stops; writes go on against the master alone. SIGSTOP alone
	// is no partition: the kernel still takes the replication stream into the stopped replica's
	// socket buffer, and the replica reads it on SIGCONT. So other traffic is queued first,
	// 40 MB, more than those buffers hold: what follows stays in the master's memory, as it
	// would behind a partition, and dies with it.
	set.Replica.Freeze()
	rdb := set.Master.Client()
	if err := rdb.Set(context.Background(), "other-traffic", strings.Repeat("x", 40<<20), 0).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Close()
	round("frozen", toRevoke[n:], toRotate[n:])
	during := len(w.clients) + len(w.revoked) + len(w.rotated) + len(w.personal) + w.limitIssued -
		(len(before.clients) + len(before.revoked) + len(before.rotated) + len(before.personal) + before.limitIssued)
	var slowest time.Duration
	for _, r := range unacked {
		if r.status != 503 || r.str("error") != "temporarily_unavailable" {
			t.Errorf("a write during the freeze was answered %d %v, want 503 temporarily_unavailable", r.status, r.body)
		}
		slowest = max(slowest, r.took)
	}
	t.Logf("during the freeze: %d writes acknowledged, %d answered 503 (slowest in %v)", during, len(unacked), slowest.Round(time.Millisecond))
	if minReplicas > 0 {
		if during > 0 {
			t.Errorf("%d writes acknowledged while no replica could confirm them", during)
		}
		if slowest > replicaTimeout+replyMargin {
			t.Errorf("a 503 took %v, want at most replica_timeout %v plus %v", slowest, replicaTimeout, replyMargin)
		}
	}

	// The master dies; the replica resumes and is promoted, stale or not.
	set.Master.Stop()
	set.Replica.Thaw()
	set.WaitMaster(set.Replica.Addr, 30*time.Second)
	promoted := time.Now()
	if minReplicas > 0 {
		// The new master has no replica yet: this server cannot confirm writes, and says so.
		r := do("GET", p.url+"/readyz", "", "", nil)
		if r.status != 503 || r.str("store") != "too few replicas" {
			t.Errorf("readyz with no replica: %d %v, want 503 with store \"too few replicas\"", r.status, r.body)
		}
	}
	// The old master comes back, as a replica of the new one.
	set.Master.RestartAsReplicaOf(set.Replica)
	var back time.Duration
	for {
		if r := admin("POST", "/admin/clients", `{"name":"after"}`, ""); r.status == 201 {
			back = time.Since(promoted)
			break
		}
		if time.Since(promoted) > 10*time.Second {
			r := admin("POST", "/admin/clients", `{"name":"after"}`, "")
			ready := do("GET", p.url+"/readyz", "", "", nil)
			t.Fatalf("writes still fail 10 s after the failover: %d %v; readyz %d %v\nsentinel:\n%s\nold master:\n%s", r.status, r.body, ready.status, ready.body, set.Sentinel.Log(), set.Master.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("writes succeed again %v after the promotion", back.Round(10*time.Millisecond))
	if r := do("GET", p.url+"/readyz", "", "", nil); r.status != 200 {
		t.Errorf("readyz after the failover: %d %v", r.status, r.body)
	}

	// What survived.
	table := map[string]*acked{}
	check := func(kind string, ids []string, survived func(string) bool) {
		a := &acked{acknowledged: len(ids)}
		for _, id := range ids {
			if !survived(id) {
				a.lost++
			}
		}
		table[kind] = a
	}
	check("client creations", w.clients, func(id string) bool {
		return admin("GET", "/admin/clients/"+url.PathEscape(id), "", "").status == 200
	})
	check("revocations", w.revoked, func(tok string) bool { return !introspect(tok) })
	check("refresh rotations", w.rotated, func(rt string) bool { return refresh(rt).status == 200 })
	var pats []map[string]any
	if err := json.Unmarshal(must(admin("GET", "/admin/users/"+user+"/tokens", "", ""), 200, "list personal tokens").raw, &pats); err != nil {
		t.Fatal(err)
	}
	check("personal tokens", w.personal, func(id string) bool {
		for _, p := range pats {
			if p["id"] == id {
				return true
			}
		}
		return false
	})
	// The limited client: what the store still counts decides how many more it lets out.
	after := 0
	for cc(limID, limSec).status == 200 {
		after++
	}
	issued := w.limitIssued + after
	table["limited tokens (daily_limit 12)"] = &acked{acknowledged: w.limitIssued, lost: max(issued-limit, 0)}

	lost := 0
	t.Logf("%-34s %12s %6s", "acknowledged before the master died", "acknowledged", "lost")
	for _, kind := range []string{"client creations", "revocations", "refresh rotations", "personal tokens", "limited tokens (daily_limit 12)"} {
		a := table[kind]
		t.Logf("%-34s %12d %6d", kind, a.acknowledged, a.lost)
		lost += a.lost
	}
	t.Logf("limited client: %d tokens issued in all against a daily limit of %d", issued, limit)
	if minReplicas > 0 && lost > 0 {
		t.Errorf("%d acknowledged writes lost in the failover with min_replicas=%d", lost, minReplicas)
	}
	if minReplicas == 0 && lost == 0 {
		t.Errorf("nothing lost with min_replicas=0: the test did not produce the loss it guards against")
	}

	// A client create answered 503 and retried with its request id makes one client.
	if minReplicas > 0 && len(clientRequests) > 0 {
		reqID := clientRequests[0]
		first := must(admin("POST", "/admin/clients", fmt.Sprintf(`{"name":%q}`, reqID), reqID), 201, "retried create")
		again := must(admin("POST", "/admin/clients", fmt.Sprintf(`{"name":%q}`, reqID), reqID), 201, "retried create, twice")
		if first.str("client_id") != again.str("client_id") {
			t.Errorf("a create retried with request id %s made clients %s and %s", reqID, first.str("client_id"), again.str("client_id"))
		}
	}
}
