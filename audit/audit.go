package audit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokensmith/tokensmith/logging"
	"go.opentelemetry.io/otel/trace"
)

// Event kinds.
const (
	// TokenIssued is a newly minted access token (client_credentials, password).
	TokenIssued = "token.issued"
	// TokenReused is an earlier access token handed out again (token reuse).
	TokenReused = "token.reused"
	// TokenRefreshed is a refresh: a new pair for a refresh token, or the same new pair again
	// within the grace window.
	TokenRefreshed = "token.refreshed"
	// TokenExchanged is an access token issued for a personal token (RFC 8693).
	TokenExchanged = "token.exchanged"
	// TokenRefused is a refused token, revocation or introspection request, with the error
	// code and its description.
	TokenRefused = "token.refused"
	// TokenReplayed is a used refresh token presented after its grace window: its whole
	// login was revoked.
	TokenReplayed = "token.replayed"
	// TokenRevoked is a token revoked by its client or by the operator.
	TokenRevoked = "token.revoked"
	// AdminChange is a change made through the admin API.
	AdminChange = "admin.change"
)

// Event is one audit record. Empty fields are left out of its JSON.
type Event struct {
	Time time.Time `json:"time"`
	Kind string    `json:"event"`
	// RequestID and Remote identify the request; the Writer fills them from the context
	// (logging.Request) when the emitter leaves them empty.
	RequestID string `json:"request_id,omitempty"`
	Remote    string `json:"remote,omitempty"`
	// TraceID is the request's OpenTelemetry trace id when tracing is on, so an event leads to
	// the trace of its request; the Writer fills it from the context too.
	TraceID string `json:"trace_id,omitempty"`
	// Endpoint is token, revoke or introspect for refusals.
	Endpoint string `json:"endpoint,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Subject  string `json:"sub,omitempty"`
	// Username is the username a password grant or console sign-in was asked for, when it
	// names an existing user: a refused one may be a password typed into the wrong field.
	Username string `json:"username,omitempty"`
	// UsernameDigest is a keyed digest of the username of a refused sign-in, whether or not it
	// names a user: the same on every replica and after restarts, so repeated attempts with
	// one name correlate without the name being written down.
	UsernameDigest string `json:"username_digest,omitempty"`
	Grant          string `json:"grant,omitempty"`
	JTI            string `json:"jti,omitempty"`
	// ExternalIssuer and ExternalSubject are the workload that authenticated as the client with
	// a token its platform issued (federated workload identity): that token's iss and sub.
	ExternalIssuer  string `json:"external_iss,omitempty"`
	ExternalSubject string `json:"external_sub,omitempty"`
	// Family is the refresh-token family (login) a token belongs to; not a secret, every
	// access token of the login carries it in its jti.
	Family    string `json:"family,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Scope     string `json:"scope,omitempty"`
	ExpiresAt int64  `json:"exp,omitempty"`
	// Error and Reason are the RFC 6749 error code and description of a refusal.
	Error  string `json:"error,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Who made an admin change or revoked a token: "admin" (the admin token's holder),
	// "user:<id>" (an integrator in the console, WithActor) or the client id.
	Who string `json:"who,omitempty"`
	// What is the admin action (client.update, user.delete, …) and Target the id it acted on.
	What   string `json:"what,omitempty"`
	Target string `json:"target,omitempty"`
	// Before and After hold the fields an admin change changed, as the admin API shows them
	// (never a secret or a hash).
	Before map[string]any `json:"before,omitempty"`
	After  map[string]any `json:"after,omitempty"`
}

type actorKey struct{}

// WithActor says who makes the changes done with ctx, when it is not the admin token's holder:
// "user:<id>" for an integrator acting in the console.
func WithActor(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, actorKey{}, who)
}

// Actor is who WithActor named, or "" when nobody was.
func Actor(ctx context.Context) string {
	who, _ := ctx.Value(actorKey{}).(string)
	return who
}

// Recorder takes events. Implementations must not block.
type Recorder interface {
	Record(ctx context.Context, e Event)
}

// Discard records nothing.
var Discard Recorder = discard{}

type discard struct{}

func (discard) Record(context.Context, Event) {}

// Tee records every event with each of rs, in order.
func Tee(rs ...Recorder) Recorder { return tee(rs) }

type tee []Recorder

func (t tee) Record(ctx context.Context, e Event) {
	for _, r := range t {
		r.Record(ctx, e)
	}
}

// Sink is where a Writer puts events.
type Sink interface {
	// Write stores one batch, in order. It is called by one goroutine at a time.
	Write(ctx context.Context, batch []Event) error
	// Close flushes and releases the sink.
	Close() error
}

// Writer is the Recorder that queues events for a Sink. Run must be running for events to
// reach it.
type Writer struct {
	sink     Sink
	events   queue
	maxBatch int
	log      *slog.Logger
	hooks    Hooks
	dropped  atomic.Uint64
}

// Hooks tell metrics what the Writer does; every field may be nil.
type Hooks struct {
	// Written is called after a batch of n events reached the sink.
	Written func(n int)
	// Dropped is called for each event dropped because the buffer was full.
	Dropped func()
	// Failed is called for each failed write of a batch (it is retried).
	Failed func()
}

// Options configure a Writer.
type Options struct {
	// Buffer is how many events may wait for the sink (default 10,000); past it events are
	// dropped and counted.
	Buffer int
	// MaxBatch bounds one write (default 512).
	MaxBatch int
	// Log receives the sink's failures and recoveries (slog.Default if nil).
	Log   *slog.Logger
	Hooks Hooks
}

// NewWriter returns a Writer for sink.
func NewWriter(sink Sink, o Options) *Writer {
	if o.Buffer <= 0 {
		o.Buffer = 10_000
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Writer{sink: sink, events: queue{limit: o.Buffer, ready: make(chan struct{}, 1)}, maxBatch: o.MaxBatch, log: o.Log, hooks: o.Hooks}
}

// Record queues e for the sink, stamped with the time and, unless set, the request id, caller
// address and trace id of ctx. It never blocks: with the buffer full, e is dropped and
// counted.
func (w *Writer) Record(ctx context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if req, ok := logging.RequestFrom(ctx); ok {
		if e.RequestID == "" {
			e.RequestID = req.ID
		}
		if e.Remote == "" {
			e.Remote = req.Remote
		}
	}
	if e.TraceID == "" {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			e.TraceID = sc.TraceID().String()
		}
	}
	if !w.events.push(e) {
		w.dropped.Add(1)
		if w.hooks.Dropped != nil {
			w.hooks.Dropped()
		}
	}
}

// queue holds the events waiting for the sink, up to limit. Its memory follows what waits:
// a channel of the same bound would hold 10,000 events' worth (3.3 MB) from the start, most
// of the live heap of a server that otherwise needs about 3 MB, and so a good part of its
// resident set once the collector's headroom is added.
type queue struct {
	mu    sync.Mutex
	items []Event
	limit int
	// ready holds a signal while events may be waiting.
	ready chan struct{}
}

// push queues e unless limit events are waiting; it never blocks on the sink.
func (q *queue) push(e Event) bool {
	q.mu.Lock()
	if len(q.items) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take moves the oldest waiting events to batch until it holds n.
func (q *queue) take(batch []Event, n int) []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(max(n-len(batch), 0), len(q.items))
	batch = append(batch, q.items[:k]...)
	rest := copy(q.items, q.items[k:])
	clear(q.items[rest:])
	q.items = q.items[:rest]
	if rest == 0 && cap(q.items) > queueKeep {
		q.items = nil // a burst's backlog is not kept for good
	}
	return batch
}

// len is how many events wait.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// queueKeep is the capacity an emptied queue keeps: a busy server's batches.
const queueKeep = 1024

// Dropped is how many events were dropped so far.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Run writes queued events to the sink until ctx ends, then writes what is still queued
// (giving up after shutdownGrace) and closes the sink. A batch is whatever queued up while
// the previous one was being written, so a busy server writes few large batches and a quiet
// one writes each event at once. A failed write is retried with backoff; meanwhile new events
// queue up to the buffer's size.
func (w *Writer) Run(ctx context.Context) {
	defer func() {
		if err := w.sink.Close(); err != nil {
			w.log.Warn("audit: closing the sink failed", "error", err)
		}
	}()
	var batch []Event
	for {
		select {
		case <-w.events.ready:
			for {
				if batch = w.fill(batch[:0]); len(batch) == 0 {
					break
				}
				if !w.write(ctx, batch) {
					w.drain(batch)
					return
				}
			}
		case <-ctx.Done():
			w.drain(nil)
			return
		}
	}
}

// shutdownGrace bounds the final write of queued events when the server stops.
const shutdownGrace = 2 * time.Second

// drain writes pending and then everything still queued, within shutdownGrace.
func (w *Writer) drain(pending []Event) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	batch := append(make([]Event, 0, w.maxBatch+len(pending)), pending...)
	for ctx.Err() == nil {
		batch = w.fill(batch)
		if len(batch) == 0 {
			return
		}
		if err := w.sink.Write(ctx, batch); err != nil {
			w.log.Warn("audit: events lost at shutdown; the sink failed", "events", len(batch)+w.events.len(), "error", err)
			return
		}
		w.written(len(batch))
		batch = batch[:0]
	}
}

// fill adds what is queued, without waiting, until batch holds maxBatch events.
func (w *Writer) fill(batch []Event) []Event { return w.events.take(batch, w.maxBatch) }

// write stores batch, retrying with backoff while the sink fails. It reports false when ctx
// ended first, with batch still unwritten.
func (w *Writer) write(ctx context.Context, batch []Event) bool {
	backoff := 100 * time.Millisecond
	for failing := false; ; {
		err := w.sink.Write(ctx, batch)
		if err == nil {
			if failing {
				w.log.Info("audit: the sink works again")
			}
			w.written(len(batch))
			return true
		}
		if w.hooks.Failed != nil {
			w.hooks.Failed()
		}
		if !failing {
			w.log.Warn("audit: writing to the sink failed; retrying while events queue up", "error", err)
			failing = true
		}
		select {
		case <-time.After(backoff):
			backoff = min(backoff*2, 5*time.Second)
		case <-ctx.Done():
			return false
		}
	}
}

func (w *Writer) written(n int) {
	if w.hooks.Written != nil {
		w.hooks.Written(n)
	}
}
