package tracing

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/internal/otlptest"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// The tests here set environment variables, so none runs in parallel.

// otelVars are every variable that turns tracing on or off or picks the exporter.
var otelVars = []string{envDisabled, envExporter, envEndpoint, envTracesEndpoint, envProtocol, envTracesProtocol,
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"}

// setEnv clears every OTEL_* variable that matters here, then sets kv (names and values).
func setEnv(t *testing.T, kv ...string) {
	t.Helper()
	for _, k := range otelVars {
		t.Setenv(k, "")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestExporterNames(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		want []string
		err  string
	}{
		{name: "nothing set: off"},
		{name: "an endpoint: otlp", env: []string{envEndpoint, "http://collector:4318"}, want: []string{"otlp"}},
		{name: "a traces endpoint: otlp", env: []string{envTracesEndpoint, "http://collector:4318/v1/traces"}, want: []string{"otlp"}},
		{name: "the exporter alone: otlp to localhost", env: []string{envExporter, "otlp"}, want: []string{"otlp"}},
		{name: "console", env: []string{envExporter, "console"}, want: []string{"console"}},
		{name: "a list", env: []string{envExporter, " OTLP , console,otlp"}, want: []string{"otlp", "console"}},
		{name: "none beats an endpoint", env: []string{envExporter, "none", envEndpoint, "http://collector:4318"}},
		{name: "disabled beats everything", env: []string{envDisabled, "true", envExporter, "otlp", envEndpoint, "http://c:4318"}},
		{name: "not disabled", env: []string{envDisabled, "false", envEndpoint, "http://c:4318"}, want: []string{"otlp"}},
		{name: "other settings alone: off", env: []string{"OTEL_SERVICE_NAME", "auth", envProtocol, "grpc"}},
		{name: "unknown exporter", env: []string{envExporter, "zipkin"}, err: `OTEL_TRACES_EXPORTER="zipkin": unknown exporter "zipkin"`},
		{name: "none among others", env: []string{envExporter, "otlp,none"}, err: "none cannot be combined"},
		{name: "disabled is not a bool", env: []string{envDisabled, "yes please"}, err: "OTEL_SDK_DISABLED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env...)
			got, err := exporterNames()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// sdkGoroutines are the goroutines running OpenTelemetry SDK code (the batch span processor,
// an exporter's connection).
func sdkGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "go.opentelemetry.io/otel/sdk") || strings.Contains(g, "google.golang.org/grpc") {
			n++
		}
	}
	return n
}

// Off, nothing of the SDK is built or started: no provider, no goroutine.
func TestOpenOff(t *testing.T) {
	setEnv(t, "OTEL_SERVICE_NAME", "auth")
	before := sdkGoroutines()
	tr, err := Open(context.Background(), "test", discard)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled() || tr.Provider != nil || tr.Summary != "off" {
		t.Errorf("enabled %v, provider %v, summary %q; want off", tr.Enabled(), tr.Provider, tr.Summary)
	}
	if after := sdkGoroutines(); after != before {
		t.Errorf("%d SDK goroutines after Open, %d before", after, before)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// On, spans reach the collector over the protocol asked for, with the service named as the
// variables say, and Shutdown sends what is queued.
func TestOpenExports(t *testing.T) {
	cases := []struct {
		name    string
		grpc    bool
		env     func(url string) []string
		service string
		summary string
	}{
		{name: "endpoint, http/protobuf by default", env: func(u string) []string { return []string{envEndpoint, u} },
			service: "tokensmith", summary: "otlp http/protobuf http://127.0.0.1:"},
		{name: "traces endpoint as is", env: func(u string) []string {
			return []string{envTracesEndpoint, u + "/v1/traces", "OTEL_SERVICE_NAME", "auth-eu"}
		}, service: "auth-eu", summary: "/v1/traces"},
		{name: "credentials in the URL are not logged", env: func(u string) []string {
			return []string{envEndpoint, strings.Replace(u, "http://", "http://user:pw@", 1) + "?key=k"}
		}, service: "tokensmith", summary: "otlp http/protobuf http://127.0.0.1:"},
		{name: "grpc", grpc: true, env: func(u string) []string {
			return []string{envEndpoint, u, envProtocol, "grpc", "OTEL_RESOURCE_ATTRIBUTES", "service.name=auth-grpc,deployment.environment=test"}
		}, service: "auth-grpc", summary: "otlp grpc"},
		{name: "grpc for traces only", grpc: true, env: func(u string) []string {
			return []string{envEndpoint, u, envProtocol, "http/protobuf", envTracesProtocol, "grpc"}
		}, service: "tokensmith", summary: "otlp grpc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rcv *otlptest.Receiver
			if tc.grpc {
				rcv = otlptest.StartGRPC(t)
			} else {
				rcv = otlptest.Start(t)
			}
			setEnv(t, tc.env(rcv.URL)...)
			tr, err := Open(context.Background(), "v1.2.3", discard)
			if err != nil {
				t.Fatal(err)
			}
			if !tr.Enabled() || !strings.Contains(tr.Summary, tc.summary) || strings.Contains(tr.Summary, "pw") || strings.Contains(tr.Summary, "key=") {
				t.Errorf("enabled %v, summary %q; want on, containing %q", tr.Enabled(), tr.Summary, tc.summary)
			}
			_, span := tr.Provider.Tracer("test").Start(context.Background(), "work")
			span.End()
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			spans := rcv.Spans()
			if len(spans) != 1 || spans[0].Name != "work" {
				t.Fatalf("received %+v, want the span work", spans)
			}
			if res := spans[0].Resource; res["service.name"] != tc.service || res["service.version"] != "v1.2.3" {
				t.Errorf("resource %v, want service.name %s, service.version v1.2.3", res, tc.service)
			}
		})
	}
}

// A setting the SDK would ignore with a warning stops the start instead.
func TestOpenRefusesWhatItCannotHonour(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		err  string
	}{
		{"http/json", []string{envEndpoint, "http://127.0.0.1:1", envProtocol, "http/json"}, `OTEL_EXPORTER_OTLP_PROTOCOL="http/json"`},
		{"unknown traces protocol", []string{envEndpoint, "http://127.0.0.1:1", envTracesProtocol, "udp"}, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="udp"`},
		{"unknown sampler", []string{envEndpoint, "http://127.0.0.1:1", "OTEL_TRACES_SAMPLER", "sometimes"}, "unsupported sampler: sometimes"},
		{"sampler ratio out of range", []string{envEndpoint, "http://127.0.0.1:1", "OTEL_TRACES_SAMPLER", "traceidratio",
			"OTEL_TRACES_SAMPLER_ARG", "2"}, "greater than 1.0"},
		{"malformed resource", []string{envEndpoint, "http://127.0.0.1:1", "OTEL_RESOURCE_ATTRIBUTES", "tier"}, "OTEL_RESOURCE_ATTRIBUTES"},
		{"endpoint without a scheme", []string{envEndpoint, "otel-collector:4318"}, `OTEL_EXPORTER_OTLP_ENDPOINT="otel-collector:4318": want a URL`},
		{"traces endpoint not a URL", []string{envTracesEndpoint, "http://[::1"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env...)
			before := sdkGoroutines()
			tr, err := Open(context.Background(), "test", discard)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want one containing %q", err, tc.err)
			}
			if tr != nil {
				t.Errorf("got tracing %q along with the error", tr.Summary)
			}
			// Whatever had started is stopped (the batch processor's goroutine ends shortly).
			for deadline := time.Now().Add(2 * time.Second); sdkGoroutines() > before && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if after := sdkGoroutines(); after > before {
				t.Errorf("%d SDK goroutines left running, %d before", after, before)
			}
		})
	}
}

// Redis commands are spans inside a traced request, and nothing outside one.
func TestInstrumentRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	if err := InstrumentRedis(rdb, tp); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rdb.Set(ctx, "background", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rctx, parent := tp.Tracer("test").Start(ctx, "request")
	if err := rdb.Get(rctx, "background").Err(); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var got []string
	for _, s := range rec.Ended() {
		if s.Name() == "request" {
			continue
		}
		got = append(got, s.Name())
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %s is not the request's child", s.Name())
		}
		if s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %s: kind %v, want client", s.Name(), s.SpanKind())
		}
		for _, a := range s.Attributes() {
			if a.Key == "db.statement" || a.Key == "db.query.text" || strings.HasPrefix(string(a.Key), "code.") {
				t.Errorf("span %s records %s", s.Name(), a.Key)
			}
		}
	}
	if !slices.Equal(got, []string{"get"}) {
		t.Errorf("spans %v, want [get]: the request's command, not the background one", got)
	}
}
