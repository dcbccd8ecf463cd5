package grants

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/internal/testclock"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	"golang.org/x/crypto/bcrypt"
)

// The tests here drive the Service directly, as the server does, over the real memory store,
// with a settable clock and no HTTP.

// testKeys is one signing key set for every test, with a key of every algorithm (RS256 the
// default): generating RSA keys is the slowest step of a Service, and the Service needs only
// Keys from it, not its store.
var testKeys = sync.OnceValues(func() (*keys.Set, error) {
	st, err := embedded.OpenMemory()
	if err != nil {
		return nil, err
	}
	km, _, err := keys.Open(context.Background(), st, keys.Options{Algorithms: protocol.SigningAlgorithms()},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	return km.Set, nil
})

// auditLog keeps the audit events a Service records.
type auditLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *auditLog) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	a.events = append(a.events, e)
	a.mu.Unlock()
}

// find returns the last event of kind that matches, and whether there is one.
func (a *auditLog) find(kind string, match func(audit.Event) bool) (audit.Event, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range slices.Backward(a.events) {
		if e.Kind == kind && match(e) {
			return e, true
		}
	}
	return audit.Event{}, false
}

// announcements keeps the changes a Service announces to the other replicas.
type announcements struct {
	mu      sync.Mutex
	changes []storage.Change
}

func (a *announcements) Announce(_ context.Context, c storage.Change) error {
	a.mu.Lock()
	a.changes = append(a.changes, c)
	a.mu.Unlock()
	return nil
}

// lockedBuffer is a log destination safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testEnv is a Service over a fresh memory store, with everything it reports kept.
type testEnv struct {
	svc      *Service
	store    *embedded.Store
	clock    *testclock.Clock
	audit    *auditLog
	announce *announcements
	log      *lockedBuffer

	mu     sync.Mutex
	issued map[string]int
	quotas []QuotaEvent
}

const (
	testIssuer   = "https://auth.example.com"
	testAudience = "https://api.example.com"
)

// testPolicy is the server's default policy, with a store deadline generous enough for a
// loaded machine under the race detector.
func testPolicy() Policy {
	return Policy{
		Issuer: testIssuer, Audience: []string{testAudience},
		ClientCredentialsTTL: 3 * time.Hour, PasswordTTL: 24 * time.Hour, RefreshTTL: 14 * 24 * time.Hour,
		RefreshGrace: 5 * time.Second, FailedLoginLimit: 3, ReuseMinRemaining: 5 * time.Minute,
		StoreTimeout: 5 * time.Second,
	}
}

// newEnv builds a Service with testPolicy changed by policy (if not nil) and opts.
func newEnv(t testing.TB, policy func(*Policy), opts ...Option) *testEnv {
	t.Helper()
	return newEnvOver(t, nil, policy, opts...)
}

// newEnvOver is newEnv with the Service's store wrapped by wrap (if not nil), for a store that
// is slow or busy; the test's own writes go to the memory store underneath.
func newEnvOver(t testing.TB, wrap func(Store) Store, policy func(*Policy), opts ...Option) *testEnv {
	t.Helper()
	ks, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	st, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &testEnv{store: st, clock: testclock.New(time.Now().Truncate(time.Second)), audit: &auditLog{},
		announce: &announcements{}, log: &lockedBuffer{}, issued: map[string]int{}}
	p := testPolicy()
	if policy != nil {
		policy(&p)
	}
	base := []Option{
		WithClock(e.clock.Now), WithLogger(slog.New(slog.NewTextHandler(e.log, nil))),
		WithAuditor(e.audit), WithAnnouncer(e.announce),
		WithIssueHook(func(g string) { e.mu.Lock(); e.issued[g]++; e.mu.Unlock() }),
		WithQuotaHook(func(q QuotaEvent) { e.mu.Lock(); e.quotas = append(e.quotas, q); e.mu.Unlock() }),
	}
	var svcStore Store = st
	if wrap != nil {
		svcStore = wrap(st)
	}
	e.svc = NewService(svcStore, ks, p, append(base, opts...)...)
	return e
}

// minted is how many access tokens grant has minted so far.
func (e *testEnv) minted(grant string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.issued[grant]
}

// quotaEvents returns the quota events reported so far.
func (e *testEnv) quotaEvents() []QuotaEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.quotas)
}

// client stores c (an id, a secret unless it is public, the client_credentials grant unless it
// names grants) and returns its id and secret.
func (e *testEnv) client(t testing.TB, c storage.Client) (id, sec string) {
	t.Helper()
	if c.ID == "" {
		c.ID = secret.NewID()
	}
	if c.TokenEndpointAuthMethod != protocol.AuthNone {
		sec = secret.NewSecret()
		c.SecretHash = secret.Hash(sec)
	}
	if c.GrantTypes == nil {
		c.GrantTypes = []string{protocol.GrantClientCredentials}
	}
	c.CreatedAt = e.clock.Now()
	if err := e.store.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c.ID, sec
}

// user stores a user with password pw (hashed at bcrypt's lowest cost, to keep tests fast).
func (e *testEnv) user(t testing.TB, name, pw string, scopes ...string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u := storage.User{ID: secret.NewID(), Username: name, PasswordHash: hash, Scopes: scopes, CreatedAt: e.clock.Now()}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// personal gives a user a personal token with scopes, expiring after ttl (never if 0).
func (e *testEnv) personal(t testing.TB, userID string, ttl time.Duration, scopes ...string) (id, tok string) {
	t.Helper()
	id = secret.NewID()
	tok = secret.NewPersonalToken(id)
	pt := storage.PersonalToken{ID: id, UserID: userID, Name: "ci", Hash: secret.Hash(tok), Scopes: scopes, CreatedAt: e.clock.Now()}
	if ttl > 0 {
		pt.ExpiresAt = e.clock.Now().Add(ttl)
	}
	if err := e.store.CreatePersonalToken(context.Background(), pt); err != nil {
		t.Fatal(err)
	}
	return id, tok
}

// update changes a stored client.
func (e *testEnv) update(t testing.TB, id string, fn func(*storage.Client)) {
	t.Helper()
	if _, err := e.store.UpdateClient(context.Background(), id, func(c *storage.Client) error { fn(c); return nil }); err != nil {
		t.Fatal(err)
	}
}

// req is a token request authenticated with HTTP Basic; kv are parameter names and values.
func req(id, sec, grant string, kv ...string) *Request {
	r := &Request{GrantType: grant, Params: map[string]string{}, ClientID: id, ClientSecret: sec,
		AuthMethod: protocol.AuthSecretBasic, Remote: "192.0.2.1"}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Params[kv[i]] = kv[i+1]
	}
	return r
}

// publicReq is a request of a public client: its id (or none) and no secret.
func publicReq(id, grant string, kv ...string) *Request {
	r := req(id, "", grant, kv...)
	r.AuthMethod = protocol.AuthNone
	return r
}

// token makes a request that must succeed.
func (e *testEnv) token(t testing.TB, r *Request) *Token {
	t.Helper()
	tok, err := e.svc.Token(context.Background(), r)
	if err != nil {
		t.Fatalf("%s: %v", r.GrantType, err)
	}
	return tok
}

// refused makes a request that must fail with code, and returns its error.
func (e *testEnv) refused(t testing.TB, r *Request, code string) *protocol.Error {
	t.Helper()
	tok, err := e.svc.Token(context.Background(), r)
	if err == nil {
		t.Fatalf("%s: got a token (scope %q), want %s", r.GrantType, tok.Scope, code)
	}
	pe := protocol.As(err)
	if pe.Code != code || pe.Description == "" {
		t.Fatalf("%s: got %v, want %s with a description", r.GrantType, err, code)
	}
	return pe
}

// loginReq is a password grant for user name, whose password is name + "-password".
func loginReq(id, sec, name string, kv ...string) *Request {
	return req(id, sec, protocol.GrantPassword, append([]string{protocol.ParamUsername, name, protocol.ParamPassword, name + "-password"}, kv...)...)
}

// refreshReq is a refresh_token grant.
func refreshReq(id, sec, rt string, kv ...string) *Request {
	return req(id, sec, protocol.GrantRefreshToken, append([]string{protocol.ParamRefreshToken, rt}, kv...)...)
}

// claimsOf verifies an RS256 access token against the test keys at the test clock's time, as
// a resource server would, and returns its claims.
func (e *testEnv) claimsOf(t testing.TB, raw string) AccessClaims {
	t.Helper()
	return e.claimsOfAlg(t, raw, keys.RS256)
}

// claimsOfAlg is claimsOf for a token of alg, checked with golang-jwt and the key of its kid.
func (e *testEnv) claimsOfAlg(t testing.TB, raw, alg string) AccessClaims {
	t.Helper()
	ks, _ := testKeys()
	var c AccessClaims
	tok, err := jwt.ParseWithClaims(raw, &c, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		pub, keyAlg, ok := ks.PublicKey(kid)
		if !ok || keyAlg != alg {
			return nil, io.EOF
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{alg}), jwt.WithIssuer(testIssuer), jwt.WithTimeFunc(e.clock.Now))
	if err != nil || tok.Header["typ"] != keys.TokenType {
		t.Fatalf("access token does not verify: %v (typ %v)", err, tok.Header["typ"])
	}
	return c
}

// introspect asks about raw as the client id.
func (e *testEnv) introspect(t testing.TB, id, sec, raw string) *Introspection {
	t.Helper()
	out, err := e.svc.Introspect(context.Background(), req(id, sec, "", protocol.ParamToken, raw))
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	return out
}

// active reports whether the operator's introspection finds raw live.
func (e *testEnv) active(t testing.TB, raw string) bool {
	t.Helper()
	out, err := e.svc.IntrospectAny(context.Background(), raw)
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	return out.Active
}
