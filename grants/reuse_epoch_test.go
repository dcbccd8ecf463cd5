package grants

import (
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/crypto/bcrypt"
)

// TestReuseNeverHandsOutAnInactiveToken: after each way a pooled login token can end (a
// password change, the user's deletion, its revocation, its family's revocation), the next
// login of a reuse client is never handed that token, and what it gets introspects active.
func TestReuseNeverHandsOutAnInactiveToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// end ends the pooled login (tok) and returns the password the next login uses, or
		// "" when no login can succeed any more.
		end func(t *testing.T, e *testEnv, id, sec, userID string, tok *Token) string
	}{
		{"password change", func(t *testing.T, e *testEnv, _, _, userID string, _ *Token) string {
			hash, err := bcrypt.GenerateFromPassword([]byte("new-password"), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			// As the registry changes a password.
			if _, err := e.store.UpdateUser(ctx, userID, func(u *storage.User) error {
				u.PasswordHash, u.NotBefore = hash, e.clock.Now()
				u.Epoch++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			e.svc.Forget(storage.Change{Kind: storage.ChangeUser, ID: userID})
			return "new-password"
		}},
		{"user deletion", func(t *testing.T, e *testEnv, _, _, userID string, _ *Token) string {
			if err := e.store.DeleteUser(ctx, userID); err != nil {
				t.Fatal(err)
			}
			e.svc.Forget(storage.Change{Kind: storage.ChangeUser, ID: userID})
			return ""
		}},
		{"access token revoked", func(t *testing.T, e *testEnv, id, sec, _ string, tok *Token) string {
			if err := e.svc.Revoke(ctx, req(id, sec, "", protocol.ParamToken, tok.AccessToken)); err != nil {
				t.Fatal(err)
			}
			return "erin-password"
		}},
		{"family revoked", func(t *testing.T, e *testEnv, id, sec, _ string, tok *Token) string {
			if err := e.svc.Revoke(ctx, req(id, sec, "", protocol.ParamToken, tok.RefreshToken)); err != nil {
				t.Fatal(err)
			}
			return "erin-password"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			id, sec := e.client(t, storage.Client{Reuse: true, GrantTypes: []string{protocol.GrantPassword, protocol.GrantRefreshToken}})
			userID := e.user(t, "erin", "erin-password")
			first := e.token(t, loginReq(id, sec, "erin"))
			if again := e.token(t, loginReq(id, sec, "erin")); again.AccessToken != first.AccessToken {
				t.Fatal("reuse is off: a second login got a new token")
			}
			if first.RefreshToken == "" {
				t.Fatal("the first login has no refresh token")
			}
			e.clock.Advance(time.Second)
			pw := tc.end(t, e, id, sec, userID, first)
			if e.active(t, first.AccessToken) {
				t.Fatal("the ended token is still active")
			}
			login := req(id, sec, protocol.GrantPassword, protocol.ParamUsername, "erin", protocol.ParamPassword, pw)
			if pw == "" {
				e.refused(t, loginReq(id, sec, "erin"), protocol.InvalidGrant)
				return
			}
			next := e.token(t, login)
			if next.AccessToken == first.AccessToken {
				t.Fatal("the next login was handed the ended token")
			}
			if !e.active(t, next.AccessToken) {
				t.Fatal("the next login's token introspects inactive")
			}
		})
	}
}
