package registry_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// TestCreatePersonalToken decodes each POST /admin/users/{id}/tokens body as the admin API
// does and checks the refusal or the token made, for a user whose scopes are read and write.
func TestCreatePersonalToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		userID string
		body   string
		// decodeErr is a refusal of the body itself (expires_in that is no lifetime).
		decodeErr  string
		code, desc string
		wantName   string
		wantScopes []string
		// wantLife is expires_at minus now; 0: the token does not expire.
		wantLife time.Duration
	}{
		{name: "no scopes, no expiry", body: `{"name":"ci"}`, wantName: "ci", wantScopes: []string{}},
		{name: "name trimmed", body: `{"name":"  deploy bot  "}`, wantName: "deploy bot", wantScopes: []string{}},
		{name: "name 100 runes", body: `{"name":"` + strings.Repeat("ж", 100) + `"}`, wantName: strings.Repeat("ж", 100), wantScopes: []string{}},
		{name: "scopes among the user's", body: `{"name":"ci","scopes":["write","read","write"]}`, wantName: "ci", wantScopes: []string{"write", "read"}},
		{name: "expires_in seconds", body: `{"name":"ci","expires_in":3600}`, wantName: "ci", wantScopes: []string{}, wantLife: time.Hour},
		{name: "expires_in 1 second", body: `{"name":"ci","expires_in":1}`, wantName: "ci", wantScopes: []string{}, wantLife: time.Second},
		{name: "expires_in days", body: `{"name":"ci","expires_in":"90d"}`, wantName: "ci", wantScopes: []string{}, wantLife: 90 * 24 * time.Hour},
		{name: "expires_in Go duration", body: `{"name":"ci","expires_in":"12h"}`, wantName: "ci", wantScopes: []string{}, wantLife: 12 * time.Hour},
		{name: "expires_in null", body: `{"name":"ci","expires_in":null}`, wantName: "ci", wantScopes: []string{}},

		{name: "name empty", body: `{"name":""}`, code: protocol.InvalidRequest, desc: "name must be 1 to 100 printable characters"},
		{name: "name blank", body: `{"name":"   "}`, code: protocol.InvalidRequest, desc: "name must be 1 to 100 printable characters"},
		{name: "name 101 runes", body: `{"name":"` + strings.Repeat("ж", 101) + `"}`, code: protocol.InvalidRequest, desc: "name must be 1 to 100 printable characters"},
		{name: "name control", body: `{"name":"ci\u0000"}`, code: protocol.InvalidRequest, desc: "name must be 1 to 100 printable characters"},
		{name: "scope not the user's", body: `{"name":"ci","scopes":["read","admin"]}`, code: protocol.InvalidRequest, desc: `scopes: "admin" is not one of the user's scopes (read write)`},
		{name: "scope malformed", body: `{"name":"ci","scopes":["re ad"]}`, code: protocol.InvalidRequest, desc: `scopes: "re ad" has characters`},
		{name: "expires_in zero", body: `{"name":"ci","expires_in":0}`, code: protocol.InvalidRequest, desc: "expires_in must be at least 1s"},
		{name: "expires_in under a second", body: `{"name":"ci","expires_in":"500ms"}`, code: protocol.InvalidRequest, desc: "expires_in must be at least 1s"},
		{name: "expires_in negative duration", body: `{"name":"ci","expires_in":"-1h"}`, code: protocol.InvalidRequest, desc: "expires_in must be at least 1s"},
		{name: "unknown user", userID: "ghost", body: `{"name":"ci"}`, code: protocol.NotFound, desc: "user ghost not found"},

		{name: "expires_in negative seconds", body: `{"name":"ci","expires_in":-1}`, decodeErr: "expires_in is out of range"},
		{name: "expires_in beyond the maximum", body: fmt.Sprintf(`{"name":"ci","expires_in":%d}`, int64(100*365*24*3600)+1), decodeErr: "expires_in is out of range"},
		{name: "expires_in fraction", body: `{"name":"ci","expires_in":1.5}`, decodeErr: `expires_in must be a number of seconds or a duration such as "90d"`},
		{name: "expires_in bool", body: `{"name":"ci","expires_in":true}`, decodeErr: `expires_in must be a number of seconds or a duration such as "90d"`},
		{name: "expires_in garbage", body: `{"name":"ci","expires_in":"soon"}`, decodeErr: `invalid duration "soon"`},
		{name: "unknown field", body: `{"name":"ci","token":"chosen"}`, decodeErr: `unknown field "token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			e.user(t, "u1", "read", "write")
			var in registry.PersonalTokenInput
			err := decodeStrict(tt.body, &in)
			if tt.decodeErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.decodeErr) {
					t.Fatalf("decode: got %v, want an error containing %q", err, tt.decodeErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			userID := "u1"
			if tt.userID != "" {
				userID = tt.userID
			}
			v, err := e.reg.CreatePersonalToken(ctx, userID, in)
			if tt.code != "" {
				wantError(t, err, tt.code, tt.desc)
				if list, _ := e.store.ListPersonalTokens(ctx, "u1"); len(list) != 0 {
					t.Errorf("tokens after a refusal: got %v, want none", list)
				}
				if ev := e.takeEvents(); len(ev) != 0 {
					t.Errorf("audit: got %v, want nothing", ev)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id, ok := secret.ParsePersonalToken(v.Token); !ok || id != v.ID {
				t.Errorf("token: got %q, want a well-formed personal token with id %q", v.Token, v.ID)
			}
			var wantExpires time.Time
			if tt.wantLife > 0 {
				wantExpires = e.clock().Add(tt.wantLife)
			}
			if v.UserID != "u1" || v.Name != tt.wantName || !slices.Equal(v.Scopes, tt.wantScopes) ||
				!v.CreatedAt.Equal(e.clock()) || !v.ExpiresAt.Equal(wantExpires) || !v.LastUsedAt.IsZero() {
				t.Errorf("got %+v, want name %q, scopes %v, created %v, expires %v", v, tt.wantName, tt.wantScopes, e.clock(), wantExpires)
			}
			checkFields(t, v, map[string]any{"scopes": tt.wantScopes, "last_used_at": nil})
			if tt.wantLife == 0 {
				checkFields(t, v, map[string]any{"expires_at": nil})
			}
			stored, err := e.store.ListPersonalTokens(ctx, "u1")
			if err != nil {
				t.Fatal(err)
			}
			if len(stored) != 1 || !secret.Matches(v.Token, stored[0].Hash) {
				t.Errorf("stored: got %+v, want one token whose hash matches the value answered", stored)
			}
			ev := e.takeEvents()
			if len(ev) != 1 || ev[0].What != registry.ActionPersonalTokenCreate || ev[0].Target != v.ID {
				t.Fatalf("audit: got %+v, want one personal_token.create of %s", ev, v.ID)
			}
			if strings.Contains(jsonString(t, ev), v.Token) {
				t.Errorf("audit has the token: %s", jsonString(t, ev))
			}
		})
	}
}

// TestPersonalTokenCap: a user holds at most MaxPersonalTokens; deleting one makes room.
func TestPersonalTokenCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.user(t, "u1")
	var last registry.PersonalTokenView
	for i := range registry.MaxPersonalTokens {
		v, err := e.reg.CreatePersonalToken(ctx, "u1", registry.PersonalTokenInput{Name: fmt.Sprint("t", i)})
		if err != nil {
			t.Fatalf("token %d: %v", i+1, err)
		}
		last = v
	}
	_, err := e.reg.CreatePersonalToken(ctx, "u1", registry.PersonalTokenInput{Name: "one too many"})
	wantError(t, err, protocol.InvalidRequest, "a user may hold at most 100 personal tokens; delete one first")
	if err := e.reg.DeletePersonalToken(ctx, "u1", last.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.CreatePersonalToken(ctx, "u1", registry.PersonalTokenInput{Name: "room again"}); err != nil {
		t.Errorf("after deleting one: %v", err)
	}
}

func TestListAndDeletePersonalTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.user(t, "u1", "read")
	e.user(t, "u2")
	var made []registry.PersonalTokenView
	for _, name := range []string{"first", "second", "third"} {
		v, err := e.reg.CreatePersonalToken(ctx, "u1", registry.PersonalTokenInput{Name: name, Scopes: []string{"read"}})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, v)
		e.advance(time.Minute)
	}
	list, err := e.reg.ListPersonalTokens(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range list {
		names = append(names, v.Name)
		if v.Token != "" {
			t.Errorf("listed %s with its value %q, want the value shown only at creation", v.Name, v.Token)
		}
	}
	if want := []string{"third", "second", "first"}; !slices.Equal(names, want) {
		t.Errorf("ListPersonalTokens: got %v, want %v (newest first)", names, want)
	}
	if list, err := e.reg.ListPersonalTokens(ctx, "u2"); err != nil || len(list) != 0 {
		t.Errorf("another user's tokens: got %v, %v; want none", list, err)
	}
	_, err = e.reg.ListPersonalTokens(ctx, "ghost")
	wantError(t, err, protocol.NotFound, "user ghost not found")

	e.takeChanges()
	e.takeEvents()
	// A token is deleted only through its own user.
	err = e.reg.DeletePersonalToken(ctx, "u2", made[1].ID)
	wantError(t, err, protocol.NotFound, "personal token "+made[1].ID+" not found")
	if err := e.reg.DeletePersonalToken(ctx, "u1", made[1].ID); err != nil {
		t.Fatal(err)
	}
	if got, want := e.takeChanges(), []storage.Change{{Kind: storage.ChangePersonalToken, ID: made[1].ID}}; !slices.Equal(got, want) {
		t.Errorf("announced: got %v, want %v", got, want)
	}
	ev := e.takeEvents()
	if len(ev) != 1 || ev[0].What != registry.ActionPersonalTokenDelete || ev[0].Target != made[1].ID || ev[0].Before["user_id"] != "u1" {
		t.Errorf("audit: got %+v, want one personal_token.delete of %s of u1", ev, made[1].ID)
	}
	err = e.reg.DeletePersonalToken(ctx, "u1", made[1].ID)
	wantError(t, err, protocol.NotFound, "personal token "+made[1].ID+" not found")
	list, err = e.reg.ListPersonalTokens(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != made[2].ID || list[1].ID != made[0].ID {
		t.Errorf("after deleting %s: got %+v", made[1].ID, list)
	}
}
