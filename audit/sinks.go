package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	goredis "github.com/redis/go-redis/v9"
)

// LogSink writes each event as one log record, message "audit", at the event's time: a JSON
// line with the server's log_format json, a text line otherwise.
type LogSink struct{ Log *slog.Logger }

// Write implements Sink.
func (s LogSink) Write(ctx context.Context, batch []Event) error {
	h := s.Log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return nil
	}
	for _, e := range batch {
		r := slog.NewRecord(e.Time, slog.LevelInfo, "audit", 0)
		r.AddAttrs(e.attrs()...)
		if err := h.Handle(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Sink.
func (LogSink) Close() error { return nil }

// attrs are the event's non-empty fields as log attributes, named as in its JSON.
func (e Event) attrs() []slog.Attr {
	as := make([]slog.Attr, 0, 12)
	add := func(k, v string) {
		if v != "" {
			as = append(as, slog.String(k, v))
		}
	}
	add("event", e.Kind)
	add("request_id", e.RequestID)
	add("remote", e.Remote)
	add("trace_id", e.TraceID)
	add("endpoint", e.Endpoint)
	add("client_id", e.ClientID)
	add("sub", e.Subject)
	add("username", e.Username)
	add("username_digest", e.UsernameDigest)
	add("grant", e.Grant)
	add("jti", e.JTI)
	add("family", e.Family)
	add("token_type", e.TokenType)
	add("scope", e.Scope)
	if e.ExpiresAt != 0 {
		as = append(as, slog.Int64("exp", e.ExpiresAt))
	}
	add("error", e.Error)
	add("reason", e.Reason)
	add("who", e.Who)
	add("what", e.What)
	add("target", e.Target)
	if e.Before != nil {
		as = append(as, slog.Any("before", fields(e.Before)))
	}
	if e.After != nil {
		as = append(as, slog.Any("after", fields(e.After)))
	}
	return as
}

// fields are an admin change's before or after in a log line: a JSON object with the JSON
// handler, and the same JSON as the value with the text handler (which would otherwise print
// Go's map[…] notation).
type fields map[string]any

// MarshalJSON implements json.Marshaler.
func (f fields) MarshalJSON() ([]byte, error) { return json.Marshal(map[string]any(f)) }

// MarshalText implements encoding.TextMarshaler, which the text handler uses.
func (f fields) MarshalText() ([]byte, error) { return f.MarshalJSON() }

// FileSink appends events as JSON lines to a file (mode 0600), flushed after every batch.
type FileSink struct {
	f   *os.File
	buf *bufio.Writer
	enc *json.Encoder
}

// OpenFile opens (or creates) path for appending.
func OpenFile(path string) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	buf := bufio.NewWriterSize(f, 64<<10)
	return &FileSink{f: f, buf: buf, enc: json.NewEncoder(buf)}, nil
}

// Write implements Sink.
func (s *FileSink) Write(_ context.Context, batch []Event) error {
	for _, e := range batch {
		// Encode writes the event and a newline: one JSON line.
		if err := s.enc.Encode(e); err != nil {
			return err
		}
	}
	return s.buf.Flush()
}

// Close implements Sink.
func (s *FileSink) Close() error {
	ferr := s.buf.Flush()
	if err := s.f.Close(); err != nil {
		return err
	}
	return ferr
}

// DefaultStream and DefaultMaxLen are the Redis stream events go to and about how many it
// keeps.
const (
	DefaultStream = "ts:audit"
	DefaultMaxLen = 1_000_000
)

// RedisSink appends events to a Redis stream that every replica writes to, one pipeline of
// XADDs per batch, each event as the field "event" holding its JSON. The stream is trimmed
// to about MaxLen entries as it grows (XADD MAXLEN ~), so it never outgrows Redis; read it
// with XRANGE or a consumer group.
type RedisSink struct {
	rdb    goredis.UniversalClient
	stream string
	maxLen int64
}

// NewRedisSink writes to stream on rdb, keeping about maxLen entries; it owns rdb and closes
// it with the sink.
func NewRedisSink(rdb goredis.UniversalClient, stream string, maxLen int64) *RedisSink {
	if stream == "" {
		stream = DefaultStream
	}
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	return &RedisSink{rdb: rdb, stream: stream, maxLen: maxLen}
}

// Write implements Sink.
func (s *RedisSink) Write(ctx context.Context, batch []Event) error {
	pipe := s.rdb.Pipeline()
	for _, e := range batch {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		pipe.XAdd(ctx, &goredis.XAddArgs{Stream: s.stream, MaxLen: s.maxLen, Approx: true, Values: []any{"event", b}})
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Close implements Sink.
func (s *RedisSink) Close() error { return s.rdb.Close() }
