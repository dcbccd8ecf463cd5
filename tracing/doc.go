// Package tracing sets up OpenTelemetry tracing for the server from the standard OTEL_*
// environment variables, and only from them: it decides whether tracing is on, builds the
// OpenTelemetry SDK's tracer provider with the exporters those variables name (OTLP over HTTP
// or gRPC, the console), and flushes it when the server stops. It is the one package that
// imports the SDK; the rest of Tokensmith sees a go.opentelemetry.io/otel/trace
// TracerProvider, or nil when tracing is off, and starts no span at all then.
package tracing
