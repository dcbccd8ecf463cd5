package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/replica"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// env is a registry over a fresh memory store, wired as serve wires it: changes go through a
// replica.Bus (whose handler keeps them here), events to an auditor that keeps them here, and
// time comes from a clock the test moves.
type env struct {
	reg   *registry.Service
	store *embedded.Store

	mu      sync.Mutex
	now     time.Time
	changes []storage.Change
	events  []audit.Event
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// The wall clock, to the second: View compares a secret's grace with time.Now.
	e := &env{store: store, now: time.Now().UTC().Truncate(time.Second)}
	bus := replica.NewBus(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	bus.Handle(func(c storage.Change) {
		e.mu.Lock()
		e.changes = append(e.changes, c)
		e.mu.Unlock()
	})
	e.reg = registry.New(store, bus, registry.WithClock(e.clock), registry.WithAuditor(e))
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// Record implements registry.Auditor.
func (e *env) Record(_ context.Context, ev audit.Event) {
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
}

// takeChanges returns the changes announced since the last call.
func (e *env) takeChanges() []storage.Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.changes
	e.changes = nil
	return c
}

// takeEvents returns the audit events recorded since the last call.
func (e *env) takeEvents() []audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := e.events
	e.events = nil
	return ev
}

// decodeStrict decodes an admin API body as the admin API does: unknown fields refused.
func decodeStrict(body string, v any) error {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// clientInput decodes a POST or PATCH /admin/clients body.
func clientInput(t *testing.T, body string) registry.ClientInput {
	t.Helper()
	var in registry.ClientInput
	if err := decodeStrict(body, &in); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return in
}

// jsonObject renders v as the admin API shows it: its JSON object.
func jsonObject(t *testing.T, v any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkFields compares the named fields of an admin view's JSON; a nil want means the field
// is left out of the JSON.
func checkFields(t *testing.T, v any, want map[string]any) {
	t.Helper()
	got := jsonObject(t, v)
	for k, w := range want {
		g, present := got[k]
		switch {
		case w == nil && present:
			t.Errorf("%s: got %v, want it left out", k, g)
		case w != nil && !present:
			t.Errorf("%s: left out, want %v", k, w)
		case w != nil && !jsonEqual(t, g, w):
			t.Errorf("%s: got %v, want %v", k, g, w)
		}
	}
}

// jsonEqual compares two values by their JSON.
func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ra, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ra, rb)
}

// wantError checks that err is a protocol error with code whose description contains desc.
func wantError(t *testing.T, err error, code, desc string) {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error: got %v, want a protocol error %s", err, code)
	}
	if pe.Code != code {
		t.Errorf("error code: got %q (%v), want %q", pe.Code, pe, code)
	}
	if !strings.Contains(pe.Description, desc) {
		t.Errorf("error description: got %q, want it to contain %q", pe.Description, desc)
	}
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// nilIfEmpty is m, or nil when m is empty: an event's JSON leaves an empty side out.
func nilIfEmpty(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	return m
}

// user stores a user directly, without the registry's bcrypt (slow under -race), for tests
// that need only that the user exists.
func (e *env) user(t *testing.T, id string, scopes ...string) string {
	t.Helper()
	u := storage.User{ID: id, Username: "user-" + id, Scopes: scopes, CreatedAt: e.clock()}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return id
}

// jsonString is v's JSON.
func jsonString(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
