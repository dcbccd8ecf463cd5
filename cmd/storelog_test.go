package cmd

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestStoreLogQuietUntilTheStoreAnswersAndDuringOutages(t *testing.T) {
	var buf bytes.Buffer
	q := &storeQuiet{}
	log := slog.New(quietHandler{slog.NewTextHandler(&buf, nil), q.quiet})
	down := false
	for _, tc := range []struct {
		name    string
		setup   func()
		level   slog.Level
		printed bool
	}{
		{"before the store answered", func() {}, slog.LevelInfo, false},
		{"a warning before it answered", func() {}, slog.LevelWarn, true},
		{"store up", func() { q.follow(func() bool { return down }) }, slog.LevelInfo, true},
		{"during an outage", func() { down = true }, slog.LevelInfo, false},
		{"a warning during an outage", func() {}, slog.LevelWarn, true},
		{"after the outage", func() { down = false }, slog.LevelInfo, true},
	} {
		tc.setup()
		buf.Reset()
		log.Log(t.Context(), tc.level, "redis: connection pool: failed to dial after 5 attempts")
		if got := strings.Contains(buf.String(), "failed to dial"); got != tc.printed {
			t.Errorf("%s: printed=%v, want %v (%q)", tc.name, got, tc.printed, buf.String())
		}
	}
}
