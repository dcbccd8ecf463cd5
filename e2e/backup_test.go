package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// movedIssuer is the issuer of every server in the export and import test: the same service,
// moved from one store to another.
const movedIssuer = "https://tokens.moved.test"

// credentials are what integrators hold: none of them may stop working when the service
// moves to another store.
type credentials struct {
	clientID, secret string
	// login is a password login's pair, its refresh token unused.
	login *oauth2.Token
	// spent is a refresh token already rotated (with the refresh grace off): presenting it is
	// a replay.
	spent string
	// signed is an access token signed before the move; revoked one revoked before it.
	signed, revoked string
	pat             string
}

// tool runs the tokensmith binary in dir with env and stdin, and returns what it printed and
// its exit status.
func tool(t *testing.T, dir string, stdin []byte, env []string, args ...string) (stdout, stderr []byte, status int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.Bytes(), errOut.Bytes(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), errOut.Bytes(), 0
}

// importReport runs import --json and returns the records' outcomes by kind.
func importReport(t *testing.T, dir string, doc []byte, env []string, args ...string) map[string]map[string]int {
	t.Helper()
	out, errOut, status := tool(t, dir, doc, env, append([]string{"import", "--json"}, args...)...)
	if status != 0 {
		t.Fatalf("import %v: exit %d\n%s%s", args, status, out, errOut)
	}
	var rep struct {
		Records map[string]map[string]int `json:"records"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("import --json: %v\n%s", err, out)
	}
	return rep.Records
}

// all checks that every record of rep had outcome, and that there were some.
func all(t *testing.T, rep map[string]map[string]int, outcome string) {
	t.Helper()
	n := 0
	for kind, outs := range rep {
		for o, c := range outs {
			if o != outcome && c != 0 {
				t.Errorf("%s: %d %s, want every record %s", kind, c, o, outcome)
			}
		}
		n += outs[outcome]
	}
	if n == 0 {
		t.Errorf("no record %s: %v", outcome, rep)
	}
}

func tokenForm(p *proc, id, sec string, v url.Values) (int, map[string]any) {
	req, _ := http.NewRequest("POST", p.url+"/oauth2/token", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := httpClient.Do(req)
	if err != nil {
		return -1, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// verifies reports whether tok's signature checks out against p's JWKS, with go-jose.
func verifies(t *testing.T, p *proc, tok string) bool {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(jwksOf(t, p)), &set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("go-jose: %v", err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	var claims jwt.Claims
	return len(keys) == 1 && parsed.Claims(keys[0].Key, &claims) == nil && claims.Issuer == movedIssuer
}

// issue gives out, on p, every kind of credential an integrator holds.
func issue(t *testing.T, p *proc) credentials {
	t.Helper()
	ctx := context.Background()
	var c credentials
	var created struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	out := p.cli(t, "", "--json", "client", "create", "--name", "billing", "--scope", "read",
		"--grant", "client_credentials,password,refresh_token,token-exchange", "--refresh-grace", "0s")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("client create: %v\n%s", err, out)
	}
	c.clientID, c.secret = created.ID, created.Secret
	p.cli(t, "erin-password\n", "user", "create", "--username", "erin", "--password-stdin", "--scope", "read")
	cfg := oauth2.Config{ClientID: c.clientID, ClientSecret: c.secret, Endpoint: oauth2.Endpoint{TokenURL: p.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	var err error
	if c.login, err = cfg.PasswordCredentialsToken(ctx, "erin", "erin-password"); err != nil {
		t.Fatal(err)
	}
	other, err := cfg.PasswordCredentialsToken(ctx, "erin", "erin-password")
	if err != nil {
		t.Fatal(err)
	}
	other.Expiry = time.Now().Add(-time.Minute)
	if _, err := cfg.TokenSource(ctx, other).Token(); err != nil {
		t.Fatalf("rotating a refresh token: %v", err)
	}
	c.spent = other.RefreshToken
	cc := clientcredentials.Config{ClientID: c.clientID, ClientSecret: c.secret, TokenURL: p.url + "/oauth2/token"}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.signed = tok.AccessToken
	if tok, err = cc.Token(ctx); err != nil {
		t.Fatal(err)
	}
	c.revoked = tok.AccessToken
	revokeAs(t, p, c.clientID, c.secret, c.revoked)
	var pat struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(p.cli(t, "", "--json", "pat", "create", "erin", "--name", "ci", "--scope", "read")), &pat); err != nil || pat.Token == "" {
		t.Fatalf("pat create: %v", err)
	}
	c.pat = pat.Token
	return c
}

// stillWork checks, on p, that every credential issued before the move works as it did.
// It returns c with the login's refresh token rotated.
func stillWork(t *testing.T, p *proc, c credentials) credentials {
	t.Helper()
	ctx := context.Background()
	if st, body := tokenForm(p, c.clientID, c.secret, url.Values{"grant_type": {"client_credentials"}}); st != 200 {
		t.Errorf("the client secret: %d %v", st, body)
	}
	cfg := oauth2.Config{ClientID: c.clientID, ClientSecret: c.secret, Endpoint: oauth2.Endpoint{TokenURL: p.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	old := *c.login
	old.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(ctx, &old).Token()
	if err != nil || fresh.RefreshToken == c.login.RefreshToken {
		t.Errorf("the refresh token did not rotate: %v", err)
	} else {
		c.login = fresh
	}
	if st, body := tokenForm(p, c.clientID, c.secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.spent}}); st != 400 || body["error"] != "invalid_grant" {
		t.Errorf("a refresh token rotated before the move was taken again: %d %v", st, body)
	}
	st, body := tokenForm(p, c.clientID, c.secret, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {c.pat}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}})
	exchanged, _ := body["access_token"].(string)
	if st != 200 || !introspectAs(p, c.clientID, c.secret, exchanged) {
		t.Errorf("the personal token: exchange %d %v", st, body)
	}
	if !verifies(t, p, c.signed) || !introspectAs(p, c.clientID, c.secret, c.signed) {
		t.Error("a token signed before the move does not verify against the JWKS, or is not active")
	}
	if !verifies(t, p, c.revoked) || introspectAs(p, c.clientID, c.secret, c.revoked) {
		t.Error("a token revoked before the move is active again")
	}
	if _, err := cfg.PasswordCredentialsToken(ctx, "erin", "erin-password"); err != nil {
		t.Errorf("the user's password: %v", err)
	}
	return c
}

// TestExportImportMovesTheService moves a service from the embedded store to Redis and back
// with tokensmith export and import, and checks that every credential issued before each move
// keeps working after it; that damaged documents are refused with nothing written; and that
// importing twice changes nothing.
func TestExportImportMovesTheService(t *testing.T) {
	issuer := "TOKENSMITH_ISSUER=" + movedIssuer
	fileDir := t.TempDir()
	p := start(t, fileDir, issuer)
	creds := issue(t, p)

	// The server holds the embedded store: export is refused, clearly.
	_, errOut, status := tool(t, fileDir, nil, nil, "export")
	if status != 1 || !strings.Contains(string(errOut), "in use by a running tokensmith server: stop it first") {
		t.Fatalf("export beside a running server: exit %d, %s", status, errOut)
	}
	p.stop(t)
	doc, errOut, status := tool(t, fileDir, nil, nil, "export")
	if status != 0 || !strings.Contains(string(errOut), "2 clients") {
		t.Fatalf("export: exit %d\n%s", status, errOut)
	}
	for name, secret := range map[string]string{"client secret": creds.secret, "password": "erin-password", "refresh token": creds.login.RefreshToken,
		"personal token": creds.pat, "access token": creds.signed} {
		if bytes.Contains(doc, []byte(secret)) {
			t.Errorf("the %s is in the backup", name)
		}
	}

	srv := redistest.Start(t)
	toRedis := []string{"TOKENSMITH_STORAGE=" + srv.URL()}
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	emptyRedis := func(what string) {
		t.Helper()
		if n, err := rdb.DBSize(context.Background()).Result(); err != nil || n != 0 {
			t.Fatalf("after %s Redis holds %d keys (%v), want none", what, n, err)
		}
	}
	workDir := t.TempDir()
	all(t, importReport(t, workDir, doc, toRedis, "--dry-run"), "created")
	emptyRedis("a dry run")
	for name, broken := range map[string]struct {
		doc  []byte
		want string
	}{
		"truncated": {doc[:len(doc)*2/3], "cut short"},
		"tampered":  {bytes.Replace(doc, []byte(`"name":"billing"`), []byte(`"name":"hacked!"`), 1), "SHA-256 digest"},
	} {
		_, errOut, status := tool(t, workDir, broken.doc, toRedis, "import")
		if status != 1 || !strings.Contains(string(errOut), broken.want) || !strings.Contains(string(errOut), "nothing was written") {
			t.Errorf("a %s document: exit %d, %s", name, status, errOut)
		}
		emptyRedis("a " + name + " document")
	}
	all(t, importReport(t, workDir, doc, toRedis), "created")
	all(t, importReport(t, workDir, doc, toRedis), "unchanged")

	redisDir := t.TempDir()
	onRedis := start(t, redisDir, issuer, toRedis[0])
	creds = stillWork(t, onRedis, creds)

	// Back: Redis is exported while its server runs, into a new file store.
	doc, errOut, status = tool(t, redisDir, nil, toRedis, "export")
	if status != 0 {
		t.Fatalf("export from Redis: exit %d\n%s", status, errOut)
	}
	backDir := t.TempDir()
	toFile := []string{"TOKENSMITH_STORAGE=file:" + filepath.Join(backDir, "data", "tokensmith.db")}
	all(t, importReport(t, backDir, doc, toFile), "created")
	all(t, importReport(t, backDir, doc, toFile), "unchanged")
	onFile := start(t, backDir, issuer)
	stillWork(t, onFile, creds)
}
