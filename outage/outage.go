// Package outage reports store outages the way an operator wants to read them: one WARN line
// when the first request fails for want of the store, and one WARN line with the number of
// requests that failed when the store answers again, instead of a line per failed request.
package outage

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Pinger reaches the store.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Tracker notices outages through Failed and their end by pinging the store while one lasts.
// An outage ends when the store answers and no request has failed for settle: requests that
// were already waiting on the dead store, or a client library still failing fast on its last
// dial error, fail for a moment after the first answer, and would otherwise start a second
// outage at once.
type Tracker struct {
	store  Pinger
	log    *slog.Logger
	every  time.Duration
	settle time.Duration
	wake   chan struct{}

	mu       sync.Mutex
	down     bool
	since    time.Time
	lastFail time.Time
	failed   int64
}

// New returns a Tracker; Run must run for outages to be seen to end.
func New(store Pinger, log *slog.Logger) *Tracker {
	return &Tracker{store: store, log: log, every: 500 * time.Millisecond, settle: time.Second, wake: make(chan struct{}, 1)}
}

// Failed records one request answered 503 because the store did not answer. The first of an
// outage logs it with its cause (a backend error, never request data).
func (t *Tracker) Failed(cause error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed++
	t.lastFail = time.Now()
	if t.down {
		return
	}
	t.down, t.since = true, t.lastFail
	t.log.Warn("store unavailable: requests that need it are answered 503 until it is back", "cause", cause)
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Down reports whether an outage is in progress.
func (t *Tracker) Down() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.down
}

// Run pings the store during each outage until it answers, then logs the outage's end, until
// ctx ends. An outage still in progress then is logged as such, with its count.
func (t *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		}
		for !t.probe(ctx) {
			select {
			case <-ctx.Done():
				t.end("store still unavailable at shutdown")
				return
			case <-tick.C:
			}
		}
	}
}

// probe reports whether the outage is over (the store answered and requests stopped
// failing), ending it if it is.
func (t *Tracker) probe(ctx context.Context) bool {
	pctx, cancel := context.WithTimeout(ctx, t.every)
	err := t.store.Ping(pctx)
	cancel()
	if err != nil {
		return false
	}
	t.mu.Lock()
	settled := time.Since(t.lastFail) >= t.settle
	t.mu.Unlock()
	if settled {
		t.end("store available again")
	}
	return settled
}

func (t *Tracker) end(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.log.Warn(msg, "failed_requests", t.failed, "duration", time.Since(t.since).Round(time.Millisecond).String())
	t.down, t.failed = false, 0
}
