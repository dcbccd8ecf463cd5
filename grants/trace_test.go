package grants

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// recorder is an SDK tracer provider that keeps the spans it ends, in memory.
func recorder(t testing.TB) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

// childSpans are the names of the spans ended under parent, in the order they started; it
// fails the test if one of them is not parent's direct child.
func childSpans(t *testing.T, rec *tracetest.SpanRecorder, parent trace.SpanContext) []string {
	t.Helper()
	spans := rec.Ended()
	slices.SortStableFunc(spans, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	var names []string
	for _, s := range spans {
		if s.SpanContext().SpanID() == parent.SpanID() {
			continue
		}
		if s.Parent().SpanID() != parent.SpanID() || s.SpanContext().TraceID() != parent.TraceID() {
			t.Errorf("span %s: parent %s in trace %s, want the request's span %s in trace %s",
				s.Name(), s.Parent().SpanID(), s.SpanContext().TraceID(), parent.SpanID(), parent.TraceID())
		}
		names = append(names, s.Name())
	}
	return names
}

// Each step of a token request is a span under the request's: every store call, the wait for
// the CPU gate, the signature and the password check.
func TestTokenRequestSpans(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		request func(t *testing.T, e *testEnv) *Request
		want    []string
	}{
		{
			name: "client_credentials",
			request: func(t *testing.T, e *testEnv) *Request {
				id, sec := e.client(t, storage.Client{})
				return req(id, sec, protocol.GrantClientCredentials)
			},
			want: []string{"store.GetClient", "cpu_gate.wait", "jwt.sign"},
		},
		{
			name: "password with a refresh token",
			request: func(t *testing.T, e *testEnv) *Request {
				id, sec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantPassword, protocol.GrantRefreshToken}})
				e.user(t, "ada", "ada-password")
				return loginReq(id, sec, "ada")
			},
			want: []string{"store.GetClient", "store.Login", "cpu_gate.wait", "password.verify",
				"cpu_gate.wait", "jwt.sign", "store.CreateRefreshToken"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tp, rec := recorder(t)
			e := newEnv(t, nil, WithTracerProvider(tp))
			r := tc.request(t, e)
			ctx, parent := tp.Tracer("test").Start(context.Background(), "POST /oauth2/token")
			if _, err := e.svc.Token(ctx, r); err != nil {
				t.Fatal(err)
			}
			parent.End()
			if got := childSpans(t, rec, parent.SpanContext()); !slices.Equal(got, tc.want) {
				t.Errorf("spans %v, want %v", got, tc.want)
			}
		})
	}
}

// A store call's span fails for a failure of the store, not for an answer such as "not found".
func TestStoreSpanStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		stall bool
		want  codes.Code
	}{
		{"not found", false, codes.Unset},
		{"timed out", true, codes.Error},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tp, rec := recorder(t)
			s := guardedStore{next: &stallingStore{Store: memoryStore(t), stall: tc.stall}, timeout: 10 * time.Millisecond,
				spans: spans{tp.Tracer(TracerName)}}
			if _, err := s.GetClient(context.Background(), "no-such-client"); err == nil {
				t.Fatal("found a client that does not exist")
			}
			ended := rec.Ended()
			if len(ended) != 1 || ended[0].Name() != "store.GetClient" {
				t.Fatalf("%d spans, want one store.GetClient", len(ended))
			}
			if got := ended[0].Status().Code; got != tc.want {
				t.Errorf("status %v (%q), want %v", got, ended[0].Status().Description, tc.want)
			}
		})
	}
}

// A request that gives up waiting for the CPU gate has a failed wait span and no work span.
func TestCPUGateSpans(t *testing.T) {
	t.Parallel()
	tp, rec := recorder(t)
	g := newCPUGate(1)
	g.spans = spans{tp.Tracer(TracerName)}
	if err := g.do(context.Background(), spanSign, func() {}); err != nil {
		t.Fatal(err)
	}
	hold, held := make(chan struct{}), make(chan struct{})
	go func() { _ = g.do(context.Background(), "holder", func() { close(held); <-hold }) }()
	<-held
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.do(ctx, spanSign, func() { t.Error("ran after its caller gave up") }); !errors.Is(err, ErrBusy) {
		t.Fatalf("err %v, want ErrBusy", err)
	}
	close(hold)
	var got []string
	for _, s := range rec.Ended() {
		got = append(got, s.Name()+":"+s.Status().Code.String())
	}
	// The holder's work span ends last, after the test stops waiting for it; only the spans
	// that have ended count.
	got = slices.DeleteFunc(got, func(s string) bool { return strings.HasPrefix(s, "holder") })
	want := []string{"cpu_gate.wait:Unset", "jwt.sign:Unset", "cpu_gate.wait:Unset", "cpu_gate.wait:Error"}
	if !slices.Equal(got, want) {
		t.Errorf("spans %v, want %v", got, want)
	}
}
