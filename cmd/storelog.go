package cmd

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// quietHandler lowers records below WARN to DEBUG while quiet says so. go-redis's own
// messages go through it: before the store first answers they would add lines to a failed
// start's one line, and during an outage go-redis says "failed to dial" for every connection
// attempt, which the outage's two WARN lines already cover.
type quietHandler struct {
	slog.Handler
	quiet func() bool
}

func (h quietHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.Handler.Enabled(ctx, level) || h.Handler.Enabled(ctx, slog.LevelDebug)
}

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn && h.quiet() {
		r.Level = slog.LevelDebug
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as), h.quiet}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name), h.quiet}
}

// storeQuiet is the switch of the store's own log: quiet until the store has answered once,
// then whenever down reports an outage.
type storeQuiet struct {
	down atomic.Pointer[func() bool]
}

func (q *storeQuiet) quiet() bool {
	d := q.down.Load()
	return d == nil || (*d)()
}

// follow makes the log quiet exactly while down reports an outage.
func (q *storeQuiet) follow(down func() bool) { q.down.Store(&down) }
