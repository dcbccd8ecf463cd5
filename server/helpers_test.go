package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/internal/testclock"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/replica"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	"go.opentelemetry.io/otel/trace"
)

const testAdminToken = "test-admin-token-0123456789"

// testServer is a real server on loopback: public and admin listeners over a fresh memory store.
type testServer struct {
	URL      string
	AdminURL string
	Store    storage.Storage
	Registry *registry.Service
	Metrics  *metrics.Metrics
	Clock    *testclock.Clock
	Keys     *keys.Set
	Grants   *grants.Service
	// auditFile receives the audit trail as JSON lines; stopAudit flushes and closes it.
	auditFile string
	stopAudit func()
	// http makes the requests of post, call and postTo: over TLS when the public listener
	// serves it (withMTLS), trusting its certificate; http.DefaultClient otherwise.
	http *http.Client
	// serverCert is the public listener's certificate under withMTLS.
	serverCert *x509.Certificate
}

// serverOptions vary newTestServer.
type serverOptions struct {
	store    storage.Storage
	replicas int
	cacheTTL time.Duration
	trusted  []string
	// logs receives the server's log (logging.New) in logFormat: text at info (withLogs),
	// JSON at debug (withJSONLog).
	logs      io.Writer
	logFormat string
	profiles  map[string]map[string]string
	// tracer records spans of both listeners and of grants.
	tracer trace.TracerProvider
	// algs are keys.algorithms; RS256 alone when empty.
	algs []string
	// mtls serves the public listener over TLS asking for client certificates, with
	// clientCAs for tls_client_auth and certHeader as the trusted proxies' header.
	mtls       bool
	clientCAs  *x509.CertPool
	certHeader string
}

type serverOption func(*serverOptions)

func withStore(s storage.Storage) serverOption     { return func(o *serverOptions) { o.store = s } }
func withReplicas(n int) serverOption              { return func(o *serverOptions) { o.replicas = n } }
func withClientCache(d time.Duration) serverOption { return func(o *serverOptions) { o.cacheTTL = d } }
func withTrustedProxies(p ...string) serverOption  { return func(o *serverOptions) { o.trusted = p } }
func withAlgorithms(algs ...string) serverOption   { return func(o *serverOptions) { o.algs = algs } }

// withMTLS serves the public listener over TLS on loopback asking for (not requiring) client
// certificates, as tls_client_auth request does; cas are the client CAs, header the client
// certificate header of trusted proxies ("" for none).
func withMTLS(cas *x509.CertPool, header string) serverOption {
	return func(o *serverOptions) { o.mtls, o.clientCAs, o.certHeader = true, cas, header }
}

func withLogs(w io.Writer) serverOption {
	return func(o *serverOptions) { o.logs, o.logFormat = w, "text" }
}

// withProfiles turns seed API profiles on: name → route → path ("" or absent: the default).
func withProfiles(p map[string]map[string]string) serverOption {
	return func(o *serverOptions) { o.profiles = p }
}

// withTracer records the spans of requests with tp, as serve does with tracing on.
func withTracer(tp trace.TracerProvider) serverOption {
	return func(o *serverOptions) { o.tracer = tp }
}

// withJSONLog sends the server's log, JSON lines down to debug, to w.
func withJSONLog(w io.Writer) serverOption {
	return func(o *serverOptions) { o.logs, o.logFormat = w, "json" }
}

func newTestServer(t testing.TB, opts ...serverOption) *testServer {
	t.Helper()
	o := serverOptions{replicas: 1}
	for _, f := range opts {
		f(&o)
	}
	store := o.store
	if store == nil {
		var err error
		if store, err = embedded.OpenMemory(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = store.Close() })
	km, _, err := keys.Open(context.Background(), store, keys.Options{Algorithms: o.algs, PublishAhead: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ks := km.Set
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch o.logFormat {
	case "json":
		log = logging.New(o.logs, "json", "debug")
	case "text":
		log = logging.New(o.logs, "text", "info")
	}
	// Wired as serve wires it: admin changes go through the bus to the token handler's cache.
	bus := replica.NewBus(store, log)
	busCtx, stopBus := context.WithCancel(context.Background())
	t.Cleanup(stopBus)
	go bus.Run(busCtx)
	clk := testclock.New(time.Now())
	m := metrics.New()
	// Wired as serve wires it: events go to the metrics and, through a Writer, to a sink.
	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := audit.OpenFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	aw := audit.NewWriter(sink, audit.Options{Log: log, Hooks: m.AuditHooks()})
	auditCtx, cancelAudit := context.WithCancel(context.Background())
	auditDone := make(chan struct{})
	go func() { aw.Run(auditCtx); close(auditDone) }()
	var stopOnce sync.Once
	stopAudit := func() { stopOnce.Do(func() { cancelAudit(); <-auditDone }) }
	t.Cleanup(stopAudit)
	auditor := audit.Tee(m, aw)
	pubSrv := httptest.NewUnstartedServer(nil)
	if o.mtls {
		pubSrv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
		pubSrv.StartTLS()
	} else {
		pubSrv.Start()
	}
	t.Cleanup(pubSrv.Close)
	policy := grants.Policy{
		Issuer: pubSrv.URL, Audience: []string{"https://api.example.com"},
		ClientCredentialsTTL: 3 * time.Hour, PasswordTTL: 24 * time.Hour, RefreshTTL: 14 * 24 * time.Hour,
		RefreshGrace: 5 * time.Second, FailedLoginLimit: 3, ReuseMinRemaining: 5 * time.Minute,
		ClientCacheTTL: o.cacheTTL, StoreTimeout: 500 * time.Millisecond,
	}
	ts := &testServer{Store: store, Registry: registry.New(store, bus, registry.WithClock(clk.Now), registry.WithAuditor(auditor),
		registry.WithSigningAlgorithms(ks), registry.WithAccessTokenBound(grants.AccessTokenBound(policy, ks))),
		Metrics: m, Clock: clk, Keys: ks, auditFile: auditFile, stopAudit: stopAudit}
	ts.URL = pubSrv.URL
	gh := grants.NewService(store, ks, policy, grants.WithClock(ts.Clock.Now), grants.WithLogger(log), grants.WithReplicas(func() int { return o.replicas }),
		grants.WithChangeFeed(bus.Healthy), grants.WithAnnouncer(bus),
		grants.WithIssueHook(func(g string) { ts.Metrics.Issued.WithLabelValues(g).Inc() }),
		grants.WithQuotaHook(func(e grants.QuotaEvent) { ts.Metrics.Quota(e.ClientID, e.Window, e.Shadow) }),
		grants.WithAuditor(auditor), grants.WithStoreObserver(m.ObserveStore), grants.WithTracerProvider(o.tracer),
		grants.WithClientCAs(func() *x509.CertPool { return o.clientCAs }))
	ts.http = http.DefaultClient
	if o.mtls {
		ts.http, ts.serverCert = pubSrv.Client(), pubSrv.Certificate()
	}
	m.Gauges(func() int { return o.replicas }, func() time.Duration { return time.Since(ks.ActiveAt(ks.DefaultAlgorithm(), time.Now()).CreatedAt) })
	bus.Handle(gh.Forget)
	ts.Grants = gh
	endpoints, err := server.ProfileEndpoints(o.profiles)
	if err != nil {
		t.Fatal(err)
	}
	pub := &server.Public{Issuer: ts.URL, Grants: gh, Keys: ks, Store: store, Metrics: ts.Metrics, Log: log, Now: ts.Clock.Now,
		TrustedProxies: o.trusted, Profiles: endpoints, Tracer: o.tracer, MTLS: o.mtls, ClientCertHeader: o.certHeader}
	pubSrv.Config.Handler = pub.Handler()
	adm := &server.Admin{TokenHash: secret.Hash(testAdminToken), Registry: ts.Registry, Tokens: gh, Keys: ks, KeyManager: km, Store: store,
		Metrics: ts.Metrics, Log: log, Version: "test", Now: ts.Clock.Now, TrustedProxies: o.trusted, Audit: auditor,
		Tracer: o.tracer}
	admSrv := httptest.NewServer(adm.Handler())
	t.Cleanup(admSrv.Close)
	ts.AdminURL = admSrv.URL
	return ts
}

// client registers a client through the registry and returns its id and secret.
func (ts *testServer) client(t testing.TB, in registry.ClientInput) (string, string) {
	t.Helper()
	v, err := ts.Registry.CreateClient(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return v.ClientID, v.ClientSecret
}

func (ts *testServer) user(t *testing.T, name, pw string) string {
	t.Helper()
	u, err := ts.Registry.CreateUser(context.Background(), registry.UserInput{Username: name, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func ptr[T any](v T) *T { return &v }

// reply is a decoded token endpoint answer.
type reply struct {
	Status  int
	Header  http.Header
	Body    map[string]any
	RawBody string
}

func (r reply) str(k string) string { s, _ := r.Body[k].(string); return s }

// post sends a raw token request.
func (ts *testServer) post(t *testing.T, contentType, body string, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest("POST", ts.URL+"/oauth2/token", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return sendWith(t, ts.http, req)
}

// form posts form values with HTTP Basic client authentication.
func (ts *testServer) form(t *testing.T, id, sec string, v url.Values) reply {
	t.Helper()
	return ts.post(t, "application/x-www-form-urlencoded", v.Encode(), map[string]string{"Authorization": basic(id, sec)})
}

func basic(id, sec string) string {
	return "Basic " + b64(url.QueryEscape(id)+":"+url.QueryEscape(sec))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// admin calls the admin API.
func (ts *testServer) admin(t *testing.T, method, path, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.AdminURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return send(t, req)
}

// send performs req and decodes the JSON answer.
func send(t testing.TB, req *http.Request) reply {
	t.Helper()
	return sendWith(t, http.DefaultClient, req)
}

// sendWith is send with another HTTP client.
func sendWith(t testing.TB, c *http.Client, req *http.Request) reply {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, RawBody: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

// introspect asks /oauth2/introspect about tok as client id.
func (ts *testServer) introspect(t *testing.T, id, sec, tok string) reply {
	t.Helper()
	return ts.call(t, "/oauth2/introspect", id, sec, url.Values{"token": {tok}})
}

// revoke asks /oauth2/revoke to revoke tok as client id.
func (ts *testServer) revoke(t *testing.T, id, sec, tok string) reply {
	t.Helper()
	return ts.call(t, "/oauth2/revoke", id, sec, url.Values{"token": {tok}})
}

// call posts a form with HTTP Basic client authentication to path on the public listener.
func (ts *testServer) call(t *testing.T, path, id, sec string, v url.Values) reply {
	t.Helper()
	req, err := http.NewRequest("POST", ts.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basic(id, sec))
	return sendWith(t, ts.http, req)
}

// postTo posts a form without client authentication to path on the public listener.
func (ts *testServer) postTo(t *testing.T, path, body string) reply {
	t.Helper()
	req, err := http.NewRequest("POST", ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return sendWith(t, ts.http, req)
}

// flushUsage writes the personal tokens' last-use times, as the server does every minute.
func (ts *testServer) flushUsage(t *testing.T) {
	t.Helper()
	if err := ts.Grants.FlushUsage(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// auditTrail stops the server's audit writer (which flushes its sink) and returns the trail:
// the raw JSON lines and the decoded events. Call it once, after the requests of the test.
func (ts *testServer) auditTrail(t *testing.T) (string, []audit.Event) {
	t.Helper()
	ts.stopAudit()
	raw, err := os.ReadFile(ts.auditFile)
	if err != nil {
		t.Fatal(err)
	}
	var events []audit.Event
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if line == "" {
			continue
		}
		var e audit.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		events = append(events, e)
	}
	return string(raw), events
}
