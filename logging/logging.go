package logging

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// New returns a logger writing format ("text" or "json") at level ("debug", "info", "warn",
// "error"; info if unknown) to w.
func New(w io.Writer, format, level string) *slog.Logger {
	var l slog.Level
	if l.UnmarshalText([]byte(level)) != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l, ReplaceAttr: redact}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(contextHandler{h})
}

// Redacted replaces the value of an attribute whose name looks like it holds a secret.
const Redacted = "[REDACTED]"

// sensitive are the name parts that mark an attribute as secret. Identifiers of such things
// (an attribute named personal_token_id, token_type) are not secret and stay readable.
var sensitive = []string{"secret", "password", "passwd", "token", "authorization", "cookie", "credential", "private"}

// redact is the handlers' ReplaceAttr.
func redact(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup || !Sensitive(a.Key) {
		return a
	}
	return slog.String(a.Key, Redacted)
}

// Sensitive reports whether an attribute named key is masked in logs.
func Sensitive(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "_id") || strings.HasSuffix(k, "_type") || strings.HasSuffix(k, "_count") {
		return false
	}
	for _, s := range sensitive {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Request is what a request's context says about it.
type Request struct {
	// ID identifies the request in every log line and audit event, and in the X-Request-Id
	// answer header.
	ID string
	// Remote is the caller's address: the TCP peer, or what a trusted proxy says it is
	// (the listener's trusted_proxies, through gin's ClientIP).
	Remote string
}

type requestKey struct{}

// WithRequest returns ctx carrying r.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the Request ctx carries, if any.
func RequestFrom(ctx context.Context) (Request, bool) {
	r, ok := ctx.Value(requestKey{}).(Request)
	return r, ok
}

// MaxRequestIDLen is the longest X-Request-Id accepted from a caller.
const MaxRequestIDLen = 128

// ValidRequestID reports whether a caller's X-Request-Id is safe to adopt: 1 to
// MaxRequestIDLen characters among letters, digits and - _ . : / + = @ (UUIDs, trace ids, base64).
// Anything else is replaced by a generated id, so a caller cannot inject text into log lines.
func ValidRequestID(s string) bool {
	if s == "" || len(s) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case strings.IndexByte("-_.:/+=@", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a new request id: 64 random bits in hex. Request ids only need to be
// unique, not unguessable, so they come from the runtime's fast per-thread generator.
func NewRequestID() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// contextHandler adds the request id of the context a record is logged with, and its trace
// and span ids when tracing is on, so every line of a request carries them whichever package
// logs it (LogAttrs, InfoContext, …), and a line leads to the request's trace.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if req, ok := RequestFrom(ctx); ok && req.ID != "" {
		r.AddAttrs(slog.String("request_id", req.ID))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
