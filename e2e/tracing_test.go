package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/internal/otlptest"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// otelOff clears every OTEL_* variable that could turn tracing on, whatever the test's own
// environment holds (the last value of a variable wins).
var otelOff = []string{"OTEL_SDK_DISABLED=", "OTEL_TRACES_EXPORTER=", "OTEL_EXPORTER_OTLP_ENDPOINT=",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "OTEL_EXPORTER_OTLP_PROTOCOL=", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="}

// tracedRequest is one client_credentials request made with a traceparent of a fresh trace.
type tracedRequest struct {
	traceID, parentID string
	status            int
}

func tokenWithTraceparent(t *testing.T, p *proc) tracedRequest {
	t.Helper()
	out := p.cli(t, "", "--json", "client", "create", "--name", "traced", "--grant", "client_credentials")
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("client create --json: %v\n%s", err, out)
	}
	r := tracedRequest{traceID: randomHex(16), parentID: randomHex(8)}
	req, err := http.NewRequest("POST", p.url+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(c.ID, c.Secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("traceparent", "00-"+r.traceID+"-"+r.parentID+"-01")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r.status = resp.StatusCode
	return r
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// goroutineDump is the server's goroutine dump (pprof, on the admin listener).
func goroutineDump(t *testing.T, p *proc) string {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(p.dir, "data", "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", p.adminURL+"/debug/pprof/goroutine?debug=2", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("goroutine dump: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// exporterRuns reports whether a goroutine dump shows the SDK's span batching (the exporter's
// loop).
func exporterRuns(dump string) bool {
	return strings.Contains(dump, "go.opentelemetry.io/otel/sdk/trace.(*batchSpanProcessor)")
}

// jsonLogLines are the server's JSON log lines with msg.
func jsonLogLines(t *testing.T, p *proc, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// requestLines are the access line and the audit event of the token request.
func requestLines(t *testing.T, p *proc) (access, event map[string]any) {
	t.Helper()
	for _, l := range jsonLogLines(t, p, "http") {
		if l["path"] == "/oauth2/token" {
			access = l
		}
	}
	for _, l := range jsonLogLines(t, p, "audit") {
		if l["event"] == "token.issued" {
			event = l
		}
	}
	if access == nil || event == nil {
		t.Fatalf("no access line or token.issued event for the token request:\n%s", p.stderr.String())
	}
	return access, event
}

// TestTracing: with an OTLP endpoint set, one token request that carries a traceparent makes
// one trace in the collector, under the caller's span: the server span, and under it the store
// call, the wait for the CPU gate and the signature (and, on Redis, the Redis commands under
// the store call). The request's log line and audit event carry its trace id, the spans still
// queued when the server stops are exported, and no background work starts a trace of its own.
func TestTracing(t *testing.T) {
	stores := []struct {
		name    string
		storage func(t *testing.T) string
	}{
		{"embedded", func(*testing.T) string { return "memory:" }},
		{"redis", func(t *testing.T) string { return redistest.Start(t).URL() }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			rcv := otlptest.Start(t)
			env := append(slices.Clone(otelOff), "TOKENSMITH_STORAGE="+st.storage(t), "TOKENSMITH_LOG_FORMAT=json",
				"OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.URL, "OTEL_SERVICE_NAME=tokensmith-e2e")
			p := start(t, t.TempDir(), env...)
			r := tokenWithTraceparent(t, p)
			if r.status != 200 {
				t.Fatalf("token: %d", r.status)
			}
			if !exporterRuns(goroutineDump(t, p)) {
				t.Error("no span batching goroutine runs with tracing on")
			}
			// Stopping flushes: no waiting for the exporter's schedule.
			p.stop(t)

			all := rcv.Spans()
			spans := rcv.Trace(r.traceID, 0)
			byID := map[string]otlptest.Span{}
			for _, s := range spans {
				byID[s.SpanID] = s
			}
			var server otlptest.Span
			for _, s := range spans {
				if s.Kind == "server" {
					if server.SpanID != "" {
						t.Fatalf("two server spans in the trace: %s and %s", server.Name, s.Name)
					}
					server = s
				}
			}
			if server.Name != "POST /oauth2/token" || server.ParentSpanID != r.parentID {
				t.Fatalf("server span %q under %s, want POST /oauth2/token under the caller's %s; trace: %+v",
					server.Name, server.ParentSpanID, r.parentID, spans)
			}
			if server.Resource["service.name"] != "tokensmith-e2e" || server.Attributes["http.response.status_code"] != "200" {
				t.Errorf("server span resource %v, attributes %v", server.Resource, server.Attributes)
			}
			children := map[string]otlptest.Span{}
			for _, s := range spans {
				if s.ParentSpanID == server.SpanID {
					children[s.Name] = s
				}
			}
			for _, want := range []string{"store.GetClient", "cpu_gate.wait", "jwt.sign"} {
				if _, ok := children[want]; !ok {
					t.Errorf("no %s span under the server span; trace: %+v", want, spans)
				}
			}
			var redis []string
			for _, s := range spans {
				if s.Kind == "client" && s.ParentSpanID == children["store.GetClient"].SpanID {
					redis = append(redis, s.Name)
				}
			}
			if wantRedis := st.name == "redis"; (len(redis) > 0) != wantRedis {
				t.Errorf("Redis command spans under store.GetClient: %v, want some: %v", redis, wantRedis)
			}
			// One trace: every span but the server's hangs from another span of the trace.
			for _, s := range spans {
				if _, ok := byID[s.ParentSpanID]; !ok && s.SpanID != server.SpanID {
					t.Errorf("span %s has a parent (%s) outside the trace", s.Name, s.ParentSpanID)
				}
			}
			// Every trace starts at a request: background work (key refresh, change feed,
			// heartbeats) started none.
			for _, s := range all {
				if s.ParentSpanID == "" && s.Kind != "server" {
					t.Errorf("span %s (%s) starts a trace of its own", s.Name, s.Kind)
				}
			}

			access, event := requestLines(t, p)
			if access["trace_id"] != r.traceID || access["span_id"] != server.SpanID {
				t.Errorf("access line trace_id %v span_id %v, want %s %s", access["trace_id"], access["span_id"], r.traceID, server.SpanID)
			}
			if event["trace_id"] != r.traceID {
				t.Errorf("audit event trace_id %v, want %s", event["trace_id"], r.traceID)
			}
			if started := jsonLogLines(t, p, "tokensmith started"); len(started) != 1 ||
				!strings.HasPrefix(started[0]["tracing"].(string), "otlp http/protobuf "+rcv.URL) {
				t.Errorf("start-up line: %v", started)
			}
		})
	}
}

// TestTracingOff: without an endpoint or exporter, or with tracing turned off explicitly,
// nothing is exported, no exporter runs, and a caller's traceparent changes nothing.
func TestTracingOff(t *testing.T) {
	cases := []struct {
		name string
		env  func(url string) []string
	}{
		{"no OTEL variables", func(string) []string { return nil }},
		{"other OTEL variables only", func(string) []string {
			return []string{"OTEL_SERVICE_NAME=auth", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_TRACES_SAMPLER=always_on"}
		}},
		{"exporter none", func(u string) []string {
			return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + u, "OTEL_TRACES_EXPORTER=none"}
		}},
		{"SDK disabled", func(u string) []string {
			return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + u, "OTEL_SDK_DISABLED=true"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rcv := otlptest.Start(t)
			env := append(slices.Clone(otelOff), "TOKENSMITH_STORAGE=memory:", "TOKENSMITH_LOG_FORMAT=json")
			p := start(t, t.TempDir(), append(env, tc.env(rcv.URL)...)...)
			if r := tokenWithTraceparent(t, p); r.status != 200 {
				t.Fatalf("token: %d", r.status)
			}
			if exporterRuns(goroutineDump(t, p)) {
				t.Error("a span batching goroutine runs with tracing off")
			}
			p.stop(t)
			if n := rcv.Requests(); n != 0 {
				t.Errorf("%d export requests reached the collector", n)
			}
			access, event := requestLines(t, p)
			if access["trace_id"] != nil || event["trace_id"] != nil {
				t.Errorf("trace ids with tracing off: access line %v, audit event %v", access["trace_id"], event["trace_id"])
			}
			if started := jsonLogLines(t, p, "tokensmith started"); len(started) != 1 || started[0]["tracing"] != "off" {
				t.Errorf("start-up line: %v", started)
			}
		})
	}
}
