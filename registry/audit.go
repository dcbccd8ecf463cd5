package registry

import (
	"context"
	"encoding/json"
	"reflect"

	"github.com/tokensmith/tokensmith/audit"
)

// Auditor takes audit events (audit.Writer implements it); it must not block.
type Auditor interface {
	Record(ctx context.Context, e audit.Event)
}

// WithAuditor records every change the registry makes as an admin.change event.
func WithAuditor(a Auditor) Option { return func(s *Service) { s.audit = a } }

// Admin actions named in audit events.
const (
	ActionClientCreate        = "client.create"
	ActionClientUpdate        = "client.update"
	ActionClientDelete        = "client.delete"
	ActionClientRotateSecret  = "client.rotate_secret"
	ActionUserCreate          = "user.create"
	ActionUserUpdate          = "user.update"
	ActionUserDelete          = "user.delete"
	ActionPersonalTokenCreate = "personal_token.create"
	ActionPersonalTokenDelete = "personal_token.delete"
)

// who makes a change: the holder of the admin token, unless the context names an integrator
// acting in the console (audit.WithActor).
func who(ctx context.Context) string {
	if w := audit.Actor(ctx); w != "" {
		return w
	}
	return "admin"
}

// recordChange records an admin change. before and after are admin API views (ClientView,
// UserView, PersonalTokenView): they never hold a hash, and the secret or token they show
// once is removed here; only the fields that differ between them are kept.
func (s *Service) recordChange(ctx context.Context, what, target string, before, after any) {
	b, a := fields(before), fields(after)
	for k, v := range b {
		if av, ok := a[k]; ok && reflect.DeepEqual(v, av) {
			delete(a, k)
			delete(b, k)
		}
	}
	s.audit.Record(ctx, audit.Event{Kind: audit.AdminChange, Who: who(ctx), What: what, Target: target, Before: b, After: a})
}

// fields renders an admin view as its JSON object, without what must never be in the trail.
func fields(v any) map[string]any {
	if v == nil {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	// Shown once at creation or rotation; never recorded.
	delete(m, "client_secret")
	delete(m, "token")
	// Changes with every change; the event's own time says when.
	delete(m, "updated_at")
	if len(m) == 0 {
		return nil
	}
	return m
}
