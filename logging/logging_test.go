package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestSensitiveNames(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"client_secret", true},
		{"password", true},
		{"Authorization", true},
		{"refresh_token", true},
		{"access_token", true},
		{"token", true},
		{"admin_token", true},
		{"cookie", true},
		{"private_pem", true},
		{"personal_token_id", false},
		{"token_type", false},
		{"client_id", false},
		{"request_id", false},
		{"jti", false},
		{"path", false},
		{"error", false},
	}
	for _, tc := range tests {
		if got := Sensitive(tc.key); got != tc.want {
			t.Errorf("Sensitive(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestLoggerMasksSecretsAndAddsTheRequestID(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log := New(&buf, format, "info")
			ctx := WithRequest(context.Background(), Request{ID: "req-42", Remote: "192.0.2.1"})
			ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{0x4b, 0xf9, 15: 0x36}, SpanID: trace.SpanID{0x00, 0xf0, 7: 0xb7}}))
			log.InfoContext(ctx, "hello", "client_secret", "s3cr3t-value", "password", "hunter2-value", "client_id", "abc")
			log.With("authorization", "Basic Zm9vOmJhcg==").Info("no context")
			log.Debug("below the level", "x", 1)
			out := buf.String()
			for _, leaked := range []string{"s3cr3t-value", "hunter2-value", "Zm9vOmJhcg=="} {
				if strings.Contains(out, leaked) {
					t.Errorf("log shows %q:\n%s", leaked, out)
				}
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 {
				t.Fatalf("%d lines, want 2:\n%s", len(lines), out)
			}
			if !strings.Contains(lines[0], "req-42") || !strings.Contains(lines[0], "abc") || !strings.Contains(lines[0], Redacted) ||
				!strings.Contains(lines[0], "4bf90000000000000000000000000036") || !strings.Contains(lines[0], "00f00000000000b7") {
				t.Errorf("first line lacks the request id, the trace and span ids, the client id or the mask: %s", lines[0])
			}
			if strings.Contains(lines[1], "request_id") || strings.Contains(lines[1], "trace_id") {
				t.Errorf("a line without a request context has a request or trace id: %s", lines[1])
			}
			if format == "json" {
				var m map[string]any
				if err := json.Unmarshal([]byte(lines[0]), &m); err != nil || m["request_id"] != "req-42" ||
					m["trace_id"] != "4bf90000000000000000000000000036" || m["span_id"] != "00f00000000000b7" {
					t.Errorf("JSON line %s: %v, request_id %v", lines[0], err, m["request_id"])
				}
			}
		})
	}
}

func TestRequestIDs(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"Root=1-5759e988-bd862e3fe1be46a994272793", true},
		{"abc_DEF.123:/+=@", true},
		{"", false},
		{strings.Repeat("a", MaxRequestIDLen), true},
		{strings.Repeat("a", MaxRequestIDLen+1), false},
		{"has space", false},
		{"new\nline", false},
		{`quote"`, false},
		{"ünïcode", false},
	}
	for _, tc := range tests {
		if got := ValidRequestID(tc.id); got != tc.want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
	seen := map[string]bool{}
	for range 1000 {
		id := NewRequestID()
		if !ValidRequestID(id) || len(id) != 16 || seen[id] {
			t.Fatalf("generated id %q: valid %v, length %d, repeated %v", id, ValidRequestID(id), len(id), seen[id])
		}
		seen[id] = true
	}
}

// BenchmarkAccessLine logs a line shaped like the server's access line, with a request id
// from the context.
func BenchmarkAccessLine(b *testing.B) {
	log := New(io.Discard, "text", "info")
	ctx := WithRequest(context.Background(), Request{ID: NewRequestID(), Remote: "192.0.2.1"})
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "http", slog.String("method", "POST"), slog.String("path", "/oauth2/token"),
			slog.Int("status", 200), slog.Int("bytes", 1012), slog.String("remote", "192.0.2.1"), slog.Duration("duration", 1234567))
	}
}
