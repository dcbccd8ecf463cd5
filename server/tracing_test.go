package server_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/internal/testlog"
	"github.com/tokensmith/tokensmith/registry"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A caller's trace: the ids a traceparent header sends.
const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
	traceparent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// tracedServer is a test server whose spans are kept in memory.
func tracedServer(t *testing.T, opts ...serverOption) (*testServer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return newTestServer(t, append(opts, withTracer(tp))...), rec
}

// serverSpans are the recorded spans of kind server.
func serverSpans(rec *tracetest.SpanRecorder) []sdktrace.ReadOnlySpan {
	return slices.DeleteFunc(rec.Ended(), func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() != trace.SpanKindServer })
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// Every request but the probes is one server span, named by its route, a child of the
// caller's span when it sends a traceparent; grants' steps are its children.
func TestRequestSpans(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// do makes the request on ts; client is a client's id and secret.
		do func(t *testing.T, ts *testServer, id, sec string)
		// want is the server span's name, "" for none; attrs some of its attributes.
		want     string
		attrs    map[string]string
		parented bool
		children []string
		failed   bool
	}{
		{
			name: "token request with a traceparent",
			do: func(t *testing.T, ts *testServer, id, sec string) {
				ts.post(t, "application/x-www-form-urlencoded", "grant_type=client_credentials",
					map[string]string{"Authorization": basic(id, sec), "traceparent": traceparent})
			},
			want: "POST /oauth2/token", parented: true,
			attrs: map[string]string{"http.route": "/oauth2/token", "http.request.method": "POST", "url.path": "/oauth2/token",
				"http.response.status_code": "200", "oauth2.grant_type": "client_credentials", "client.address": "127.0.0.1"},
			children: []string{"store.GetClient", "cpu_gate.wait", "jwt.sign"},
		},
		{
			name: "token request without one starts a trace",
			do: func(t *testing.T, ts *testServer, id, sec string) {
				ts.post(t, "application/x-www-form-urlencoded", "grant_type=client_credentials", map[string]string{"Authorization": basic(id, sec)})
			},
			want:     "POST /oauth2/token",
			children: []string{"store.GetClient", "cpu_gate.wait", "jwt.sign"},
		},
		{
			name: "refused request",
			do: func(t *testing.T, ts *testServer, id, _ string) {
				ts.post(t, "application/x-www-form-urlencoded", "grant_type=client_credentials",
					map[string]string{"Authorization": basic(id, "wrong"), "traceparent": traceparent})
			},
			want: "POST /oauth2/token", parented: true,
			attrs: map[string]string{"http.response.status_code": "401", "oauth2.error": "invalid_client"},
			// The second read checks the store for a secret rotated since the first was cached.
			children: []string{"store.GetClient", "store.GetClient"},
		},
		{
			name: "admin route, named by its template",
			do: func(t *testing.T, ts *testServer, id, _ string) {
				ts.admin(t, "GET", "/admin/clients/"+id, "")
			},
			want:  "GET /admin/clients/:id",
			attrs: map[string]string{"http.route": "/admin/clients/:id"},
		},
		{
			name: "HEAD",
			do: func(t *testing.T, ts *testServer, _, _ string) {
				req, _ := http.NewRequest(http.MethodHead, ts.URL+"/.well-known/jwks.json", nil)
				send(t, req)
			},
			want: "HEAD /.well-known/jwks.json", attrs: map[string]string{"http.request.method": "HEAD"},
		},
		{
			name: "no route",
			do: func(t *testing.T, ts *testServer, _, _ string) {
				req, _ := http.NewRequest(http.MethodGet, ts.URL+"/no/such/path?secret=x", nil)
				send(t, req)
			},
			want:  "GET",
			attrs: map[string]string{"http.route": "", "url.path": "/no/such/path", "http.response.status_code": "404", "oauth2.error": "not_found"},
		},
		{
			name: "store down",
			do: func(t *testing.T, ts *testServer, id, sec string) {
				_ = ts.Store.Close()
				ts.post(t, "application/x-www-form-urlencoded", "grant_type=client_credentials", map[string]string{"Authorization": basic(id, sec)})
			},
			want: "POST /oauth2/token", failed: true, children: []string{"store.GetClient"},
			attrs: map[string]string{"http.response.status_code": "503", "error.type": "503", "oauth2.error": "temporarily_unavailable"},
		},
		{
			name: "probes are not traced",
			do: func(t *testing.T, ts *testServer, _, _ string) {
				for _, u := range []string{ts.URL + "/healthz", ts.URL + "/readyz", ts.AdminURL + "/healthz", ts.AdminURL + "/metrics"} {
					req, _ := http.NewRequest(http.MethodGet, u, nil)
					req.Header.Set("traceparent", traceparent)
					send(t, req)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts, rec := tracedServer(t)
			id, sec := ts.client(t, registry.ClientInput{})
			tc.do(t, ts, id, sec)
			spans := serverSpans(rec)
			if tc.want == "" {
				if len(spans) != 0 {
					t.Fatalf("%d server spans, want none", len(spans))
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("%d server spans, want one", len(spans))
			}
			s := spans[0]
			if s.Name() != tc.want {
				t.Errorf("span %q, want %q", s.Name(), tc.want)
			}
			for k, v := range tc.attrs {
				if got := attr(s, k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := attr(s, "url.query"); got != "" {
				t.Errorf("url.query recorded: %q", got)
			}
			parent := s.Parent()
			if tc.parented && (parent.TraceID().String() != callerTrace || parent.SpanID().String() != callerSpan || !parent.IsRemote()) {
				t.Errorf("parent %s/%s, want the caller's %s/%s", parent.TraceID(), parent.SpanID(), callerTrace, callerSpan)
			}
			if !tc.parented && parent.IsValid() {
				t.Errorf("parent %s/%s, want none", parent.TraceID(), parent.SpanID())
			}
			if failed := s.Status().Code == codes.Error; failed != tc.failed {
				t.Errorf("status %v, want failed %v", s.Status(), tc.failed)
			}
			var children []string
			for _, c := range rec.Ended() {
				if c.Parent().SpanID() == s.SpanContext().SpanID() {
					children = append(children, c.Name())
				}
			}
			if !slices.Equal(children, tc.children) {
				t.Errorf("children %v, want %v", children, tc.children)
			}
		})
	}
}

// The log lines and the audit events of a traced request carry its trace id; with tracing
// off, a traceparent changes nothing.
func TestTraceIDsInLogsAndAudit(t *testing.T) {
	t.Parallel()
	for _, traced := range []bool{true, false} {
		name := map[bool]string{true: "tracing on", false: "tracing off"}[traced]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var logs testlog.Buffer
			var ts *testServer
			var rec *tracetest.SpanRecorder
			if traced {
				ts, rec = tracedServer(t, withJSONLog(&logs))
			} else {
				ts = newTestServer(t, withJSONLog(&logs))
			}
			id, sec := ts.client(t, registry.ClientInput{})
			r := ts.post(t, "application/x-www-form-urlencoded", "grant_type=client_credentials",
				map[string]string{"Authorization": basic(id, sec), "traceparent": traceparent})
			if r.Status != http.StatusOK {
				t.Fatalf("token: %d %s", r.Status, r.RawBody)
			}
			wantTrace, wantSpan := "", ""
			if traced {
				wantTrace, wantSpan = callerTrace, serverSpans(rec)[0].SpanContext().SpanID().String()
			}
			var access map[string]any
			for _, l := range logLines(t, &logs) {
				if l["msg"] == "http" && l["path"] == "/oauth2/token" {
					access = l
				}
			}
			if access == nil {
				t.Fatalf("no access line in %s", logs.String())
			}
			if got, _ := access["trace_id"].(string); got != wantTrace {
				t.Errorf("access line trace_id %q, want %q", got, wantTrace)
			}
			if got, _ := access["span_id"].(string); got != wantSpan {
				t.Errorf("access line span_id %q, want %q", got, wantSpan)
			}
			_, events := ts.auditTrail(t)
			i := slices.IndexFunc(events, func(e audit.Event) bool { return e.Kind == audit.TokenIssued })
			if i < 0 {
				t.Fatalf("no token.issued event in %+v", events)
			}
			if got := events[i].TraceID; got != wantTrace {
				t.Errorf("audit event trace_id %q, want %q", got, wantTrace)
			}
		})
	}
}
