package grants

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// Span names of grants' own steps, each a child of the request's span. A store call's span is
// "store." and the Store method's name (store.GetClient, store.Admit, …).
const (
	// spanGate is the wait for a slot of the CPU gate: long when the server is saturated.
	spanGate = "cpu_gate.wait"
	// spanSign is the signature of an access token.
	spanSign = "jwt.sign"
	// spanPassword is the bcrypt comparison of a password grant or a console sign-in.
	spanPassword = "password.verify"
	spanStore    = "store."
)

// TracerName names grants' tracer (the instrumentation scope of its spans).
const TracerName = "github.com/tokensmith/tokensmith/grants"

// WithTracerProvider records a span for each store call, each wait for the CPU gate, each
// signature and each password check, with tp (tracing.Open). Without it, or with a nil tp,
// no span is started at all.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *core) {
		if tp != nil {
			c.spans = spans{tp.Tracer(TracerName)}
		}
	}
}

// spans starts grants' spans. Its zero value (tracing off) starts none, at the cost of a nil
// check: not even a no-op span's context is made.
type spans struct{ tracer trace.Tracer }

// start starts the span name as a child of ctx's.
func (s spans) start(ctx context.Context, name string) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, noSpan
	}
	return s.tracer.Start(ctx, name)
}

// noSpan records nothing (the API's no-op span).
var noSpan = trace.SpanFromContext(context.Background())
