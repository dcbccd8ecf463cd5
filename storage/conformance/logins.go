package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func login(user, remote string, now time.Time) storage.LoginAttempt {
	return storage.LoginAttempt{Username: user, Remote: remote, Now: now, Limit: 3, UserLimit: 6, MaxDelay: time.Minute, Window: 10 * time.Minute}
}

func loginState(t *testing.T, s storage.Storage, a storage.LoginAttempt) storage.LoginState {
	t.Helper()
	st, err := s.Login(context.Background(), a)
	mustNoErr(t, err)
	return st
}

func testLoginBackoff(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	a := login("alice", "10.0.0.1", now)
	if st := loginState(t, s, a); st.User == nil || st.Wait != 0 || st.Failed {
		t.Fatalf("clean login: %+v", st)
	}
	for range 2 {
		mustNoErr(t, s.LoginFailed(ctx, a))
	}
	if st := loginState(t, s, a); st.Wait != 0 || !st.Failed {
		t.Fatalf("2 failures of 3 allowed: %+v", st)
	}
	mustNoErr(t, s.LoginFailed(ctx, a))
	if st := loginState(t, s, a); st.Wait != time.Second {
		t.Fatalf("after the 3rd failure: wait %s, want 1s", st.Wait)
	}
	mustNoErr(t, s.LoginFailed(ctx, a))
	if st := loginState(t, s, a); st.Wait != 2*time.Second {
		t.Fatalf("after the 4th failure: wait %s, want 2s", st.Wait)
	}
	// Case does not open a new count.
	if st := loginState(t, s, login("ALICE", "10.0.0.1", now)); st.Wait != 2*time.Second {
		t.Fatalf("ALICE from the same address: %+v", st)
	}
	// Unknown usernames are counted like known ones.
	ghost := login("nobody-"+string(make([]byte, 4096)), "10.0.0.1", now)
	for range 3 {
		mustNoErr(t, s.LoginFailed(ctx, ghost))
	}
	if st := loginState(t, s, ghost); st.User != nil || st.Wait != time.Second {
		t.Fatalf("unknown username after 3 failures: %+v", st)
	}
	// A success clears the address's count.
	mustNoErr(t, s.LoginSucceeded(ctx, a))
	if st := loginState(t, s, a); st.Wait != 0 || st.Failed {
		t.Fatalf("after a success: %+v", st)
	}
	// Counts lapse a window after the last failure.
	b := login("alice", "10.0.0.2", now)
	for range 3 {
		mustNoErr(t, s.LoginFailed(ctx, b))
	}
	b.Now = now.Add(11 * time.Minute)
	if st := loginState(t, s, b); st.Wait != 0 {
		t.Fatalf("after the window: %+v", st)
	}
}

// testLoginBackoffCleanAddress: a guesser spread over many addresses reaches the username's
// ceiling, which slows every address that has failed for it, but not one that has not.
func testLoginBackoffCleanAddress(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	for i := range 6 { // UserLimit 6, one failure per address: no address reaches its own limit
		mustNoErr(t, s.LoginFailed(ctx, login("alice", "198.51.100."+string(rune('0'+i)), now)))
	}
	if st := loginState(t, s, login("alice", "198.51.100.0", now)); st.Wait != time.Second {
		t.Fatalf("a guessing address after the username's ceiling: %+v, want 1s", st)
	}
	if st := loginState(t, s, login("alice", "192.0.2.7", now)); st.Wait != 0 || st.User == nil {
		t.Fatalf("the real user from a clean address: %+v, want through", st)
	}
	if err := s.LoginFailed(ctx, login("alice", "192.0.2.7", now)); err != nil || loginState(t, s, login("alice", "192.0.2.7", now)).Wait == 0 {
		t.Fatal("once it fails, the address is under the username's backoff too")
	}
}
