package registry_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/crypto/bcrypt"
)

// TestCreateUserRefusals: every rule on a new user, checked before the (slow) password hash.
func TestCreateUserRefusals(t *testing.T) {
	t.Parallel()
	const pw = "correct horse"
	tests := []struct {
		name       string
		in         registry.UserInput
		code, desc string
	}{
		{name: "username empty", in: registry.UserInput{Password: pw}, code: protocol.InvalidRequest,
			desc: "username must be 1 to 128 bytes of printable characters without spaces"},
		{name: "username 129 bytes", in: registry.UserInput{Username: strings.Repeat("a", 129), Password: pw}, code: protocol.InvalidRequest, desc: "username must be 1 to 128 bytes"},
		// 65 two-byte runes: 130 bytes, the limit is in bytes.
		{name: "username 130 bytes in 65 runes", in: registry.UserInput{Username: strings.Repeat("ж", 65), Password: pw}, code: protocol.InvalidRequest, desc: "username must be 1 to 128 bytes"},
		{name: "username space", in: registry.UserInput{Username: "bob smith", Password: pw}, code: protocol.InvalidRequest, desc: "without spaces"},
		{name: "username tab", in: registry.UserInput{Username: "bob\tsmith", Password: pw}, code: protocol.InvalidRequest, desc: "without spaces"},
		{name: "username no-break space", in: registry.UserInput{Username: "bob\u00a0smith", Password: pw}, code: protocol.InvalidRequest, desc: "without spaces"},
		// U+00A8 is printable, but normalises to a space and a combining diaeresis.
		{name: "username normalising to a space", in: registry.UserInput{Username: "bob¨smith", Password: pw}, code: protocol.InvalidRequest, desc: "without spaces"},
		{name: "username escape", in: registry.UserInput{Username: "bob\x1b[2J", Password: pw}, code: protocol.InvalidRequest, desc: "printable characters"},
		{name: "username invalid UTF-8", in: registry.UserInput{Username: "bob\xff", Password: pw}, code: protocol.InvalidRequest, desc: "printable characters"},
		{name: "password empty", in: registry.UserInput{Username: "bob"}, code: protocol.InvalidRequest, desc: "password must be at least 8 characters"},
		{name: "password 7", in: registry.UserInput{Username: "bob", Password: "1234567"}, code: protocol.InvalidRequest, desc: "password must be at least 8 characters"},
		{name: "password 73 bytes", in: registry.UserInput{Username: "bob", Password: strings.Repeat("p", 73)}, code: protocol.InvalidRequest, desc: "password must be at most 72 bytes"},
		{name: "scopes bad", in: registry.UserInput{Username: "bob", Password: pw, Scopes: []string{"a b"}}, code: protocol.InvalidRequest, desc: `scopes: "a b" has characters RFC 6749 §3.3 does not allow`},
		{name: "scopes blank", in: registry.UserInput{Username: "bob", Password: pw, Scopes: []string{""}}, code: protocol.InvalidRequest, desc: "scopes: values must be non-empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, err := e.reg.CreateUser(context.Background(), tt.in)
			wantError(t, err, tt.code, tt.desc)
			if all, _ := e.reg.ListUsers(context.Background()); len(all) != 0 {
				t.Errorf("users after a refusal: got %v, want none", all)
			}
			if ev := e.takeEvents(); len(ev) != 0 {
				t.Errorf("audit after a refusal: got %v, want nothing", ev)
			}
		})
	}
}

// TestCreateUser covers what a user accepted looks like: the edges of the limits, the password
// kept only as its bcrypt hash, scopes without repeats, and usernames unique regardless of
// case.
func TestCreateUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tests := []struct {
		username, password string
		scopes             []string
		wantScopes         []string
	}{
		{username: "Zoë", password: "12345678", wantScopes: []string{}},
		{username: strings.Repeat("u", 128), password: strings.Repeat("p", 72), scopes: []string{"read", "write", "read"}, wantScopes: []string{"read", "write"}},
	}
	for _, tt := range tests {
		v, err := e.reg.CreateUser(ctx, registry.UserInput{Username: tt.username, Password: tt.password, Scopes: tt.scopes})
		if err != nil {
			t.Fatalf("%q: %v", tt.username, err)
		}
		if len(v.ID) != 12 || v.Username != tt.username || !slices.Equal(v.Scopes, tt.wantScopes) || !v.CreatedAt.Equal(e.clock()) {
			t.Errorf("got %+v, want a 12-character id, username %q, scopes %v, created at %v", v, tt.username, tt.wantScopes, e.clock())
		}
		checkFields(t, v, map[string]any{"scopes": tt.wantScopes})
		if _, ok := jsonObject(t, v)["password"]; ok {
			t.Error("the user's JSON has a password")
		}
		stored, err := e.store.GetUser(ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := bcrypt.CompareHashAndPassword(stored.PasswordHash, []byte(tt.password)); err != nil {
			t.Errorf("stored hash does not match the password: %v", err)
		}
		ev := e.takeEvents()
		if len(ev) != 1 || ev[0].What != registry.ActionUserCreate || ev[0].Target != v.ID || ev[0].After["username"] != tt.username {
			t.Errorf("audit: got %+v, want one user.create of %s", ev, v.ID)
		}
		if strings.Contains(strings.ToLower(jsonString(t, ev)), "password") {
			t.Errorf("audit mentions the password: %s", jsonString(t, ev))
		}
	}

	_, err := e.reg.CreateUser(ctx, registry.UserInput{Username: "ZOË", Password: "12345678"})
	wantError(t, err, protocol.AlreadyExists, `a user named "ZOË" already exists (usernames are compared case-insensitively, after Unicode normalisation)`)

	for _, name := range []string{"zoë", "ZOË", "Zoë"} {
		v, err := e.reg.FindUser(ctx, name)
		if err != nil || v.Username != "Zoë" {
			t.Errorf("FindUser(%q): got %+v, %v; want Zoë", name, v, err)
		}
	}
	_, err = e.reg.FindUser(ctx, "zoe")
	wantError(t, err, protocol.NotFound, "user zoe not found")

	all, err := e.reg.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range all {
		names = append(names, u.Username)
	}
	if want := []string{"Zoë", strings.Repeat("u", 128)}; !slices.Equal(names, want) {
		t.Errorf("ListUsers: got %v, want %v (by username)", names, want)
	}
	got, err := e.reg.GetUser(ctx, all[0].ID)
	if err != nil || !jsonEqual(t, got, all[0]) {
		t.Errorf("GetUser: got %+v, %v; want %+v", got, err, all[0])
	}
	_, err = e.reg.GetUser(ctx, "nope")
	wantError(t, err, protocol.NotFound, "user nope not found")
}

func TestListUsersOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{"c", "a", "b"} {
		e.user(t, id)
	}
	all, err := e.reg.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range all {
		names = append(names, u.Username)
	}
	if want := []string{"user-a", "user-b", "user-c"}; !slices.Equal(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		id         string
		in         registry.UserUpdate
		code, desc string
	}{
		{name: "nothing", id: "u1", in: registry.UserUpdate{}, code: protocol.InvalidRequest, desc: "nothing to change: give password"},
		{name: "short password", id: "u1", in: registry.UserUpdate{Password: ptr("short")}, code: protocol.InvalidRequest, desc: "password must be at least 8 characters"},
		{name: "long password", id: "u1", in: registry.UserUpdate{Password: ptr(strings.Repeat("p", 73))}, code: protocol.InvalidRequest, desc: "password must be at most 72 bytes"},
		{name: "unknown user", id: "nope", in: registry.UserUpdate{Password: ptr("new password")}, code: protocol.NotFound, desc: "user nope not found"},
		{name: "new password", id: "u1", in: registry.UserUpdate{Password: ptr("new password")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			e.user(t, "u1", "read")
			e.advance(time.Hour)
			v, err := e.reg.UpdateUser(ctx, tt.id, tt.in)
			stored, _ := e.store.GetUser(ctx, "u1")
			if tt.code != "" {
				wantError(t, err, tt.code, tt.desc)
				if len(stored.PasswordHash) != 0 || !stored.NotBefore.IsZero() {
					t.Error("a refused update changed the user")
				}
				if c := e.takeChanges(); len(c) != 0 {
					t.Errorf("announced: got %v, want nothing", c)
				}
				if ev := e.takeEvents(); len(ev) != 0 {
					t.Errorf("audit: got %v, want nothing", ev)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.ID != "u1" || v.Username != "user-u1" || !slices.Equal(v.Scopes, []string{"read"}) {
				t.Errorf("got %+v, want u1 unchanged but for its password", v)
			}
			if err := bcrypt.CompareHashAndPassword(stored.PasswordHash, []byte(*tt.in.Password)); err != nil {
				t.Errorf("stored hash does not match the new password: %v", err)
			}
			// Logins made with the old password end now.
			if !stored.NotBefore.Equal(e.clock()) {
				t.Errorf("not before: got %v, want %v", stored.NotBefore, e.clock())
			}
			if got, want := e.takeChanges(), []storage.Change{{Kind: storage.ChangeUser, ID: "u1"}}; !slices.Equal(got, want) {
				t.Errorf("announced: got %v, want %v", got, want)
			}
			ev := e.takeEvents()
			if len(ev) != 1 || ev[0].What != registry.ActionUserUpdate || ev[0].After["password"] != "changed" {
				t.Fatalf("audit: got %+v, want one user.update saying the password changed", ev)
			}
			if strings.Contains(jsonString(t, ev), *tt.in.Password) {
				t.Errorf("audit has the password: %s", jsonString(t, ev))
			}
		})
	}
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.user(t, "u1", "read")
	e.takeEvents()
	if err := e.reg.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	_, err := e.reg.GetUser(ctx, "u1")
	wantError(t, err, protocol.NotFound, "user u1 not found")
	if got, want := e.takeChanges(), []storage.Change{{Kind: storage.ChangeUser, ID: "u1"}}; !slices.Equal(got, want) {
		t.Errorf("announced: got %v, want %v", got, want)
	}
	ev := e.takeEvents()
	if len(ev) != 1 || ev[0].What != registry.ActionUserDelete || ev[0].Target != "u1" || ev[0].Before["username"] != "user-u1" || ev[0].After != nil {
		t.Errorf("audit: got %+v, want one user.delete of u1 with the user before", ev)
	}
	err = e.reg.DeleteUser(ctx, "u1")
	wantError(t, err, protocol.NotFound, "user u1 not found")
	if c := e.takeChanges(); len(c) != 0 {
		t.Errorf("announced for a user not found: got %v, want nothing", c)
	}
}

func TestUserInputJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		v       any
		wantErr string
	}{
		{name: "user", body: `{"username":"bob","password":"12345678","scopes":["a"]}`, v: &registry.UserInput{}},
		{name: "user with id", body: `{"username":"bob","password":"12345678","id":"x"}`, v: &registry.UserInput{}, wantErr: `unknown field "id"`},
		{name: "user with hash", body: `{"username":"bob","password_hash":"x"}`, v: &registry.UserInput{}, wantErr: `unknown field "password_hash"`},
		{name: "update", body: `{"password":"12345678"}`, v: &registry.UserUpdate{}},
		{name: "update username", body: `{"username":"eve"}`, v: &registry.UserUpdate{}, wantErr: `unknown field "username"`},
		{name: "update scopes", body: `{"scopes":["a"]}`, v: &registry.UserUpdate{}, wantErr: `unknown field "scopes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := decodeStrict(tt.body, tt.v)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
