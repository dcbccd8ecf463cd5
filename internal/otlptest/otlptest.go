// Package otlptest is the trace collector of tests: an OTLP/HTTP receiver on loopback that
// decodes the protobuf export requests a server sends it and keeps their spans, as an
// OpenTelemetry collector would receive them. Only tests import it.
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, with ids in hex as logs and audit events carry them.
type Span struct {
	TraceID, SpanID, ParentSpanID string
	Name                          string
	// Kind is "server", "client" or "internal".
	Kind string
	// Failed: the span's status is an error.
	Failed bool
	// Attributes are the span's attributes, as strings.
	Attributes map[string]string
	// Resource are the resource attributes of the span's service, as strings.
	Resource map[string]string
	// Scope is the instrumentation scope's name (the tracer's).
	Scope string
}

// Receiver collects the spans exported to its URL (OTEL_EXPORTER_OTLP_ENDPOINT).
type Receiver struct {
	// URL is the receiver's base URL; traces are posted to URL + "/v1/traces".
	URL string

	mu       sync.Mutex
	spans    []Span
	requests int
	errs     []error
}

// Start starts a receiver on loopback, closed when the test ends; a request it cannot decode
// fails the test.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, err := range r.errs {
			t.Errorf("otlptest: %v", err)
		}
	})
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	spans, err := decode(req)
	r.mu.Lock()
	r.requests++
	if err != nil {
		r.errs = append(r.errs, err)
	}
	r.spans = append(r.spans, spans...)
	r.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func decode(req *http.Request) ([]Span, error) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		return nil, fmt.Errorf("%s %s, want POST /v1/traces", req.Method, req.URL.Path)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		return nil, fmt.Errorf("content type %q, want application/x-protobuf", ct)
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	var export coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &export); err != nil {
		return nil, fmt.Errorf("decoding an export request: %w", err)
	}
	return spansOf(&export), nil
}

// spansOf are the spans of an export request.
func spansOf(export *coltracepb.ExportTraceServiceRequest) []Span {
	var spans []Span
	for _, rs := range export.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				spans = append(spans, Span{
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(),
					Kind:       strings.ToLower(strings.TrimPrefix(s.GetKind().String(), "SPAN_KIND_")),
					Failed:     s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
					Attributes: attrs(s.GetAttributes()), Resource: res, Scope: ss.GetScope().GetName(),
				})
			}
		}
	}
	return spans
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.GetStringValue()
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetIntValue())
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetBoolValue())
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetDoubleValue())
		default:
			m[kv.GetKey()] = v.String()
		}
	}
	return m
}

// StartGRPC starts a receiver of OTLP over gRPC on loopback, stopped when the test ends. Its
// URL is http://127.0.0.1:port: the scheme tells the gRPC exporter not to use TLS.
func StartGRPC(t testing.TB) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{URL: "http://" + ln.Addr().String()}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, grpcService{r: r})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return r
}

type grpcService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (g grpcService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	g.r.requests++
	g.r.spans = append(g.r.spans, spansOf(req)...)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Requests is how many export requests arrived.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Trace waits up to timeout until the spans of trace id include every name in want, and
// returns all of the trace's spans received by then.
func (r *Receiver) Trace(traceID string, timeout time.Duration, want ...string) []Span {
	deadline := time.Now().Add(timeout)
	for {
		var got []Span
		for _, s := range r.Spans() {
			if s.TraceID == traceID {
				got = append(got, s)
			}
		}
		complete := true
		for _, name := range want {
			complete = complete && slices.ContainsFunc(got, func(s Span) bool { return s.Name == name })
		}
		if complete || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}
