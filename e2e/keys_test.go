package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

func kidOfToken(t *testing.T, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatalf("token %q: %v", tok, err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

func jwksOf(t *testing.T, p *proc) string {
	t.Helper()
	resp, err := http.Get(p.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestRotationReachesEveryReplica: a rotation asked of replica A, published 3 s ahead, is in
// both replicas' JWKS at once and signs on both from the moment it activates.
func TestRotationReachesEveryReplica(t *testing.T) {
	srv := redistest.Start(t)
	a, b := pair(t, srv.URL())
	id, sec := createClient(t, a, `{}`)
	var next struct {
		Kid         string    `json:"kid"`
		ActivatesAt time.Time `json:"activates_at"`
	}
	if st := a.admin(t, "POST", "/admin/keys/rotate", `{"publish_ahead":"3s"}`, &next); st != 201 {
		t.Fatalf("rotate: %d", st)
	}
	published := until(t, 3*time.Second, func() bool { return strings.Contains(jwksOf(t, b), next.Kid) })
	t.Logf("new key in B's JWKS %s after A answered", published.Round(time.Millisecond))
	for _, p := range []*proc{a, b} {
		if kid := kidOfToken(t, ccToken(p, id, sec).token); kid == next.Kid {
			t.Fatalf("%s signs with the new key before it activates", p.url)
		}
	}
	time.Sleep(time.Until(next.ActivatesAt))
	for _, p := range []*proc{a, b} {
		late := until(t, 3*time.Second, func() bool { return kidOfToken(t, ccToken(p, id, sec).token) == next.Kid })
		t.Logf("%s signs with the new key %s after its activation", p.url, late.Round(time.Millisecond))
	}
	// The CLI shows the states.
	out := a.cliEnv(t, "", []string{"TOKENSMITH_ADMIN_TOKEN=" + sharedAdminToken}, "keys", "list")
	if !strings.Contains(out, next.Kid) || !strings.Contains(out, "active") || !strings.Contains(out, "retiring") {
		t.Fatalf("keys list:\n%s", out)
	}
}

// TestStoreThatLostItsKeys: FLUSHALL under two running replicas, then a third starts. The
// running ones write their keys back before the third can mint its own; all three publish the
// same JWKS and sign with the same key; the third greets no one with a new demo client, and the
// loss is logged as an error.
func TestStoreThatLostItsKeys(t *testing.T) {
	srv := redistest.Start(t)
	a, b := pair(t, srv.URL())
	before := jwksOf(t, a)
	flush := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strings.Split(srv.Addr, ":")[1], "FLUSHALL")
	if out, err := flush.CombinedOutput(); err != nil {
		t.Fatalf("FLUSHALL: %v %s", err, out)
	}
	c := start(t, t.TempDir(), "TOKENSMITH_STORAGE="+srv.URL(), "TOKENSMITH_ADMIN_TOKEN="+sharedAdminToken,
		"TOKENSMITH_ISSUER=https://tokens.example.test", "TOKENSMITH_REPLICA_TIMEOUT=3s", "TOKENSMITH_LOG_LEVEL=warn")
	for _, p := range []*proc{a, b, c} {
		if got := jwksOf(t, p); got != before {
			t.Fatalf("%s publishes %s, want the keys from before the flush %s", p.url, got, before)
		}
	}
	if strings.Contains(c.stdout.String(), "client_secret") {
		t.Fatalf("the third replica created a demo client on a store that lost its data:\n%s", c.stdout.String())
	}
	logged := func(s string) bool { return a.stderr.Has(s) || b.stderr.Has(s) }
	if !logged("lost its signing keys") || !logged("level=ERROR") {
		t.Fatalf("the loss was not logged as an error:\nA: %s\nB: %s", a.stderr.String(), b.stderr.String())
	}
	// Tokens signed by each verify with the others' JWKS: one key.
	id, sec := createClient(t, c, `{}`)
	kids := map[string]bool{}
	for _, p := range []*proc{a, b, c} {
		kids[kidOfToken(t, ccToken(p, id, sec).token)] = true
	}
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	_ = json.Unmarshal([]byte(before), &jwks)
	if len(kids) != 1 || !kids[jwks.Keys[0].Kid] {
		t.Fatalf("replicas sign with %v, want the one key %s", kids, jwks.Keys[0].Kid)
	}
}

// TestReplicasStartingTogether: a second replica started 2 s after the first on a new, empty
// Redis, while the first still waits for running replicas to write back keys, finds the keys
// the first made and logs no error about a lost store; both sign with the one key, and only the
// first greets the operator with a demo client.
func TestReplicasStartingTogether(t *testing.T) {
	srv := redistest.Start(t)
	env := []string{"TOKENSMITH_STORAGE=" + srv.URL(), "TOKENSMITH_ADMIN_TOKEN=" + sharedAdminToken,
		"TOKENSMITH_ISSUER=https://tokens.example.test", "TOKENSMITH_REPLICA_TIMEOUT=3s"}
	first := make(chan *proc, 1)
	go func() { first <- start(t, t.TempDir(), env...) }()
	time.Sleep(2 * time.Second)
	b := start(t, t.TempDir(), env...)
	a := <-first
	for _, p := range []*proc{a, b} {
		// The log is written in batches: wait for the line that follows the key check.
		if !p.stderr.Has("tokensmith started") {
			t.Fatalf("%s did not log its start:\n%s", p.url, p.stderr.String())
		}
		if strings.Contains(p.stderr.String(), "level=ERROR") || strings.Contains(p.stderr.String(), "lost its signing keys") {
			t.Errorf("%s logged an error on a normal start:\n%s", p.url, p.stderr.String())
		}
	}
	if got, want := jwksOf(t, b), jwksOf(t, a); got != want {
		t.Fatalf("the replicas publish %s and %s, want one key set", got, want)
	}
	if strings.Contains(b.stdout.String(), "client_secret") == strings.Contains(a.stdout.String(), "client_secret") {
		t.Errorf("demo client from the first: %v, from the second: %v; want exactly one",
			strings.Contains(a.stdout.String(), "client_secret"), strings.Contains(b.stdout.String(), "client_secret"))
	}
}
