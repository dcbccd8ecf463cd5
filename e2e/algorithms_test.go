package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// joseDir holds the Node.js script that verifies tokens with the jose library (npm).
const joseDir = "testdata/jose"

// nodeJose returns the node binary and the verification script.
func nodeJose(t *testing.T) (node, script string) {
	t.Helper()
	return nodePackage(t, joseDir, "verify.mjs", "jose")
}

// nodePackage returns the node binary and the script named file in dir, whose npm package pkg
// must be installed there. Without them the test says what to install and skips, unless
// TOKENSMITH_REQUIRE_NODE=1 makes that a failure: .ci/run sets it, installs Node.js and each
// script's dependencies, so CI never skips.
func nodePackage(t *testing.T, dir, file, pkg string) (node, script string) {
	t.Helper()
	missing := t.Skipf
	if os.Getenv("TOKENSMITH_REQUIRE_NODE") == "1" {
		missing = t.Fatalf
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed: this test runs %s on Node.js (Debian: apt-get install nodejs npm; then npm ci --prefix e2e/%s)", pkg, dir)
	}
	script = filepath.Join(dir, file)
	// Read, so that go test counts the script among this package's inputs.
	if _, err := os.ReadFile(script); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
		missing("the %s package is not installed: run npm ci --prefix e2e/%s (.ci/run does)", pkg, dir)
	}
	return node, script
}

// TestAlgorithmsVerifyWithNodeJose: a server publishing all four algorithms issues each
// client's tokens with the algorithm set by the CLI's --signing-alg, and jose on Node.js, an
// implementation that shares no code with Go's, verifies every one against the JWKS with its
// algorithm pinned, and refuses it with only the others allowed. Rotating one algorithm with
// the CLI leaves the other algorithms' keys signing.
func TestAlgorithmsVerifyWithNodeJose(t *testing.T) {
	node, script := nodeJose(t)
	p := start(t, t.TempDir(), "TOKENSMITH_STORAGE=memory:", "TOKENSMITH_ADMIN_TOKEN="+sharedAdminToken,
		"TOKENSMITH_KEYS_ALGORITHMS=ES256, RS256,PS256,EdDSA", "TOKENSMITH_LOG_LEVEL=warn")
	env := []string{"TOKENSMITH_ADMIN_TOKEN=" + sharedAdminToken}
	algs := []string{"RS256", "PS256", "ES256", "EdDSA"}

	type tokenOf struct {
		Alg   string `json:"alg"`
		Token string `json:"token"`
	}
	var tokens []tokenOf
	clients := map[string][2]string{}
	for _, alg := range algs {
		var c struct {
			ClientID              string `json:"client_id"`
			ClientSecret          string `json:"client_secret"`
			AccessTokenSigningAlg string `json:"access_token_signing_alg"`
		}
		out := p.cliEnv(t, "", env, "--json", "client", "create", "--signing-alg", alg)
		if err := json.Unmarshal([]byte(out), &c); err != nil || c.AccessTokenSigningAlg != alg {
			t.Fatalf("client create --signing-alg %s: %v\n%s", alg, err, out)
		}
		clients[alg] = [2]string{c.ClientID, c.ClientSecret}
		a := ccToken(p, c.ClientID, c.ClientSecret)
		if a.status != 200 {
			t.Fatalf("%s token: %d %s", alg, a.status, a.errCode)
		}
		tokens = append(tokens, tokenOf{alg, a.token})
	}
	// The default is the first of keys.algorithms.
	if out := p.cliEnv(t, "", env, "client", "create", "--name", "default"); !strings.Contains(out, "signing_alg:") || !strings.Contains(out, "ES256") {
		t.Fatalf("client create without --signing-alg:\n%s", out)
	}
	if _, errOut, st := p.run("", append(env, "TOKENSMITH_ADMIN_URL="+p.adminURL), "client", "create", "--signing-alg", "HS256"); st == 0 ||
		!strings.Contains(errOut, "access_token_signing_alg: HS256 is symmetric") {
		t.Fatalf("client create --signing-alg HS256: exit %d\n%s", st, errOut)
	}

	verifyWithJose(t, node, script, p, tokens)

	// keys list shows each algorithm's key; rotating ES256 changes ES256's only.
	if out := p.cliEnv(t, "", env, "keys", "list"); !strings.Contains(out, "ALG") || strings.Count(out, "active") != 4 {
		t.Fatalf("keys list:\n%s", out)
	}
	before := map[string]string{}
	for alg, c := range clients {
		before[alg] = kidOfToken(t, ccToken(p, c[0], c[1]).token)
	}
	if out := p.cliEnv(t, "", env, "keys", "rotate", "--alg", "ES256", "--now"); !strings.Contains(out, "new ES256 key") {
		t.Fatalf("keys rotate --alg ES256:\n%s", out)
	}
	// A key is chosen by the token's iat, in whole seconds: the new one signs within a second.
	es := clients["ES256"]
	until(t, 3*time.Second, func() bool { return kidOfToken(t, ccToken(p, es[0], es[1]).token) != before["ES256"] })
	after := map[string]string{}
	tokens = tokens[:0]
	for alg, c := range clients {
		a := ccToken(p, c[0], c[1])
		after[alg] = kidOfToken(t, a.token)
		tokens = append(tokens, tokenOf{alg, a.token})
	}
	want := maps.Clone(before)
	want["ES256"] = after["ES256"]
	if after["ES256"] == before["ES256"] || !maps.Equal(after, want) {
		t.Fatalf("kids before %v, after rotating ES256 %v", before, after)
	}
	verifyWithJose(t, node, script, p, tokens)
}

// verifyWithJose runs the Node.js script on tokens and fails the test unless each verifies
// with its own algorithm and is refused with the others.
func verifyWithJose(t *testing.T, node, script string, p *proc, tokens any) {
	t.Helper()
	in, _ := json.Marshal(map[string]any{"jwks": p.url + "/.well-known/jwks.json", "issuer": p.url, "tokens": tokens})
	cmd := exec.Command(node, script)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.CombinedOutput()
	t.Logf("jose on Node.js:\n%s", out)
	if err != nil {
		t.Fatalf("jose refused a token: %v", err)
	}
	if n := strings.Count(string(out), `"verified":true`); n != 4 {
		t.Fatalf("%d tokens verified, want 4", n)
	}
}
