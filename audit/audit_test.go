package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
	"go.opentelemetry.io/otel/trace"
)

// memorySink keeps what it is given; failures, while positive, makes that many writes fail.
type memorySink struct {
	mu       sync.Mutex
	batches  [][]audit.Event
	failures int
	closed   bool
}

func (s *memorySink) Write(_ context.Context, b []audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return errors.New("sink down")
	}
	s.batches = append(s.batches, append([]audit.Event(nil), b...))
	return nil
}

func (s *memorySink) Close() error { s.mu.Lock(); s.closed = true; s.mu.Unlock(); return nil }

func (s *memorySink) events() []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Event
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func run(t *testing.T, w *audit.Writer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func TestWriterDeliversInOrderWithTheRequestsContext(t *testing.T) {
	sink := &memorySink{}
	var written atomic.Int64
	w := audit.NewWriter(sink, audit.Options{Log: quiet, Hooks: audit.Hooks{Written: func(n int) { written.Add(int64(n)) }}})
	stop := run(t, w)
	ctx := logging.WithRequest(context.Background(), logging.Request{ID: "req-1", Remote: "192.0.2.7"})
	tid := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}}))
	for i := range 1000 {
		w.Record(ctx, audit.Event{Kind: audit.TokenIssued, JTI: string(rune('a' + i%26))})
	}
	w.Record(context.Background(), audit.Event{Kind: audit.AdminChange, RequestID: "own", Remote: "own"})
	stop()
	got := sink.events()
	if len(got) != 1001 || written.Load() != 1001 || !sink.closed {
		t.Fatalf("%d events written (hook %d), closed %v; want 1001, closed", len(got), written.Load(), sink.closed)
	}
	for i, e := range got[:1000] {
		if e.JTI != string(rune('a'+i%26)) || e.RequestID != "req-1" || e.Remote != "192.0.2.7" || e.Time.IsZero() ||
			e.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	if last := got[1000]; last.RequestID != "own" || last.Remote != "own" || last.TraceID != "" {
		t.Fatalf("the emitter's own request id and address were replaced: %+v", last)
	}
}

func TestWriterNeverBlocksAndCountsDrops(t *testing.T) {
	sink := &memorySink{}
	var dropped atomic.Int64
	w := audit.NewWriter(sink, audit.Options{Buffer: 10, Log: quiet, Hooks: audit.Hooks{Dropped: func() { dropped.Add(1) }}})
	// Not running: nothing drains the buffer, so all but 10 events must be dropped at once.
	done := make(chan struct{})
	go func() {
		for range 1000 {
			w.Record(context.Background(), audit.Event{Kind: audit.TokenIssued})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked")
	}
	if w.Dropped() != 990 || dropped.Load() != 990 {
		t.Fatalf("dropped %d (hook %d), want 990", w.Dropped(), dropped.Load())
	}
	run(t, w)()
	if n := len(sink.events()); n != 10 {
		t.Fatalf("%d events written, want the 10 buffered", n)
	}
}

func TestWriterRetriesAFailingSink(t *testing.T) {
	sink := &memorySink{failures: 2}
	var failed atomic.Int64
	w := audit.NewWriter(sink, audit.Options{Log: quiet, Hooks: audit.Hooks{Failed: func() { failed.Add(1) }}})
	stop := run(t, w)
	w.Record(context.Background(), audit.Event{Kind: audit.TokenRevoked})
	for deadline := time.Now().Add(5 * time.Second); len(sink.events()) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if n := len(sink.events()); n != 1 || failed.Load() != 2 {
		t.Fatalf("%d events after 2 failures (%d counted), want 1 event", n, failed.Load())
	}
}

func TestFileSinkWritesJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(sink, audit.Options{Log: quiet})
	stop := run(t, w)
	want := []audit.Event{
		{Kind: audit.TokenIssued, ClientID: "c1", JTI: "j1", ExpiresAt: 42},
		{Kind: audit.AdminChange, Who: "admin", What: "client.update", Target: "c1",
			Before: map[string]any{"reuse": false}, After: map[string]any{"reuse": true}},
	}
	for _, e := range want {
		w.Record(context.Background(), e)
	}
	stop()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("audit file mode %v (%v), want 0600", st.Mode(), err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var got []audit.Event
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].JTI != "j1" || got[1].After["reuse"] != true || got[1].Before["reuse"] != false {
		t.Fatalf("read back %+v", got)
	}
}

func TestLogSink(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "json", "info")
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	err := audit.LogSink{Log: log}.Write(context.Background(), []audit.Event{
		{Time: at, Kind: audit.TokenRefused, ClientID: "c1", Error: "invalid_client", TokenType: "access_token", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%s: %v", buf.String(), err)
	}
	if m["msg"] != "audit" || m["event"] != audit.TokenRefused || m["client_id"] != "c1" || m["error"] != "invalid_client" ||
		m["token_type"] != "access_token" || m["time"] != "2026-11-25T03:00:00Z" || m["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("log line %s", buf.String())
	}
}

// TestLogSinkChangedFields: an admin change's before and after are JSON in both log formats,
// not Go's map notation.
func TestLogSinkChangedFields(t *testing.T) {
	change := audit.Event{Kind: audit.AdminChange, Who: "admin", What: "client.update", Target: "c1",
		Before: map[string]any{"daily_limit": 0}, After: map[string]any{"daily_limit": 1000}}
	tests := []struct{ format, want string }{
		{"json", `"before":{"daily_limit":0},"after":{"daily_limit":1000}`},
		{"text", `before="{\"daily_limit\":0}" after="{\"daily_limit\":1000}"`},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		if err := (audit.LogSink{Log: logging.New(&buf, tc.format, "info")}).Write(context.Background(), []audit.Event{change}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), tc.want) || strings.Contains(buf.String(), "map[") {
			t.Errorf("%s: %s\nwant %s", tc.format, buf.String(), tc.want)
		}
	}
}

func TestRedisSinkAppendsToABoundedStream(t *testing.T) {
	srv := redistest.Start(t)
	const stream = "ts:audit-test"
	sink := audit.NewRedisSink(goredis.NewClient(&goredis.Options{Addr: srv.Addr}), stream, 1000)
	w := audit.NewWriter(sink, audit.Options{Log: quiet})
	stop := run(t, w)
	for i := range 5000 {
		w.Record(context.Background(), audit.Event{Kind: audit.TokenIssued, ExpiresAt: int64(i)})
	}
	stop()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	n, err := rdb.XLen(ctx, stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole radix-tree nodes (100 entries each by default): about 1000 stay.
	if n < 1000 || n > 1200 {
		t.Fatalf("stream holds %d events, want about 1000", n)
	}
	last, err := rdb.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("last entry: %v %v", last, err)
	}
	var e audit.Event
	if err := json.Unmarshal([]byte(last[0].Values["event"].(string)), &e); err != nil || e.ExpiresAt != 4999 || e.Kind != audit.TokenIssued {
		t.Fatalf("last entry %v: %+v %v", last[0].Values, e, err)
	}
	if !strings.Contains(last[0].Values["event"].(string), `"event":"token.issued"`) {
		t.Fatalf("entry %v", last[0].Values)
	}
}

// TestWriterMemoryFollowsTheBacklog: a Writer bounded at 10,000 events holds memory for the
// events that wait, not for its bound (which took 3.3 MB of a 6.5 MB live heap), and gives a
// burst's memory back once the burst is written.
func TestWriterMemoryFollowsTheBacklog(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	sink := &memorySink{}
	before := heap()
	w := audit.NewWriter(sink, audit.Options{Log: quiet})
	if grown := int64(heap()) - int64(before); grown > 256<<10 {
		t.Errorf("a new Writer holds %d KiB before any event", grown>>10)
	}
	for range 5000 {
		w.Record(context.Background(), audit.Event{Kind: audit.TokenIssued})
	}
	if grown := int64(heap()) - int64(before); grown < 1<<20 {
		t.Errorf("5,000 waiting events take %d KiB: the heap measure does not see them", grown>>10)
	}
	stop := run(t, w)
	for deadline := time.Now().Add(10 * time.Second); len(sink.events()) < 5000 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	sink.mu.Lock()
	sink.batches = nil // the sink's own copy is not the Writer's
	sink.mu.Unlock()
	if grown := int64(heap()) - int64(before); grown > 512<<10 {
		t.Errorf("after the burst was written the Writer still holds %d KiB", grown>>10)
	}
	stop()
	runtime.KeepAlive(w)
}
