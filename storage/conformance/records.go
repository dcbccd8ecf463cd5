package conformance

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func testClients(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	grace := 2 * time.Second
	c := storage.Client{
		ID: "c1", Name: "one", SecretHash: []byte("h"), GrantTypes: []string{"client_credentials"},
		Scopes: []string{"a", "b"}, Audience: []string{"api"}, AccessTokenTTL: time.Hour,
		RefreshGrace: &grace, Reuse: true, DailyLimit: 7, CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	mustNoErr(t, s.CreateClient(ctx, c))
	wantErr(t, s.CreateClient(ctx, c), storage.ErrAlreadyExists)

	got, err := s.GetClient(ctx, "c1")
	mustNoErr(t, err)
	if got.Name != "one" || got.AccessTokenTTL != time.Hour || got.RefreshGrace == nil || *got.RefreshGrace != grace ||
		!got.Reuse || got.DailyLimit != 7 || len(got.Scopes) != 2 || string(got.SecretHash) != "h" {
		t.Fatalf("GetClient = %+v, want the stored fields back", got)
	}
	_, err = s.GetClient(ctx, "nope")
	wantErr(t, err, storage.ErrNotFound)

	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "c2"}))
	all, err := s.ListClients(ctx)
	mustNoErr(t, err)
	if len(all) != 2 {
		t.Fatalf("ListClients: got %d clients, want 2", len(all))
	}

	up, err := s.UpdateClient(ctx, "c1", func(c *storage.Client) error { c.Name = "renamed"; return nil })
	mustNoErr(t, err)
	if up.Name != "renamed" {
		t.Fatalf("UpdateClient returned name %q, want renamed", up.Name)
	}
	boom := errors.New("boom")
	_, err = s.UpdateClient(ctx, "c1", func(c *storage.Client) error { c.Name = "lost"; return boom })
	wantErr(t, err, boom)
	if got, _ := s.GetClient(ctx, "c1"); got.Name != "renamed" {
		t.Fatalf("a failed update wrote name %q", got.Name)
	}
	_, err = s.UpdateClient(ctx, "nope", func(*storage.Client) error { return nil })
	wantErr(t, err, storage.ErrNotFound)

	if got, _ := s.GetClient(ctx, "c1"); !got.NotBefore.IsZero() {
		t.Fatalf("a client never deleted before has NotBefore %s", got.NotBefore)
	}
	deleted := time.Now().UTC().Truncate(time.Millisecond)
	mustNoErr(t, s.DeleteClient(ctx, "c1", deleted))
	wantErr(t, s.DeleteClient(ctx, "c1", deleted), storage.ErrNotFound)
	_, err = s.GetClient(ctx, "c1")
	wantErr(t, err, storage.ErrNotFound)

	// Created again under the same id: tokens from before the deletion are not its own.
	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "c1", NotBefore: time.Unix(1, 0)}))
	again, err := s.GetClient(ctx, "c1")
	mustNoErr(t, err)
	if !again.NotBefore.Equal(deleted) {
		t.Fatalf("recreated client NotBefore = %s, want the deletion time %s", again.NotBefore, deleted)
	}
}

// testUpdateClientAtomic: concurrent read-modify-writes must not lose updates.
func testUpdateClientAtomic(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "c"}))
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateClient(ctx, "c", func(c *storage.Client) error { c.DailyLimit++; return nil })
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := s.GetClient(ctx, "c")
	mustNoErr(t, err)
	if got.DailyLimit != n {
		t.Fatalf("after %d concurrent increments got %d", n, got.DailyLimit)
	}
}

func testUsers(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := storage.User{ID: "u1", Username: "alice", PasswordHash: []byte("x"), CreatedAt: time.Now().UTC()}
	mustNoErr(t, s.CreateUser(ctx, u))
	wantErr(t, s.CreateUser(ctx, storage.User{ID: "u2", Username: "alice"}), storage.ErrAlreadyExists)
	wantErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "bob"}), storage.ErrAlreadyExists)

	got, err := s.GetUserByUsername(ctx, "alice")
	mustNoErr(t, err)
	if got.ID != "u1" || string(got.PasswordHash) != "x" {
		t.Fatalf("GetUserByUsername = %+v", got)
	}
	_, err = s.GetUserByUsername(ctx, "bob")
	wantErr(t, err, storage.ErrNotFound)
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u3", Username: "carol"}))
	all, err := s.ListUsers(ctx)
	mustNoErr(t, err)
	if len(all) != 2 {
		t.Fatalf("ListUsers: got %d, want 2", len(all))
	}
	mustNoErr(t, s.DeleteUser(ctx, "u1"))
	wantErr(t, s.DeleteUser(ctx, "u1"), storage.ErrNotFound)
	_, err = s.GetUserByUsername(ctx, "alice")
	wantErr(t, err, storage.ErrNotFound)
	// The username is free again once its user is gone.
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u4", Username: "alice"}))
}

func testUsersCaseInsensitive(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "Bob", PasswordHash: []byte("x")}))
	for _, name := range []string{"bob", "BOB", "Bob"} {
		got, err := s.GetUserByUsername(ctx, name)
		mustNoErr(t, err)
		if got.ID != "u1" || got.Username != "Bob" {
			t.Fatalf("GetUserByUsername(%q) = %+v, want u1 as Bob", name, got)
		}
	}
	wantErr(t, s.CreateUser(ctx, storage.User{ID: "u2", Username: "BOB"}), storage.ErrAlreadyExists)
	// Unicode case folding, not just ASCII.
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u3", Username: "Straße"}))
	if got, err := s.GetUserByUsername(ctx, "STRASSE"); err != nil || got.ID != "u3" {
		t.Fatalf("folded lookup of STRASSE: %+v %v", got, err)
	}
	st, err := s.Login(ctx, storage.LoginAttempt{Username: "bOb", Remote: "a", Now: time.Now(), Limit: 3, UserLimit: 9, MaxDelay: time.Minute, Window: time.Minute})
	mustNoErr(t, err)
	if st.User == nil || st.User.ID != "u1" {
		t.Fatalf("Login(bOb) = %+v", st)
	}
	mustNoErr(t, s.DeleteUser(ctx, "u1"))
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u4", Username: "bob"}))
}

func testUpdateUser(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice", PasswordHash: []byte("old")}))
	got, err := s.UpdateUser(ctx, "u1", func(u *storage.User) error {
		u.PasswordHash = []byte("new")
		u.Username, u.ID = "mallory", "u9" // neither may change
		return nil
	})
	mustNoErr(t, err)
	if got.ID != "u1" || got.Username != "alice" || string(got.PasswordHash) != "new" {
		t.Fatalf("UpdateUser = %+v", got)
	}
	if u, err := s.GetUserByUsername(ctx, "alice"); err != nil || string(u.PasswordHash) != "new" {
		t.Fatalf("after update: %+v %v", u, err)
	}
	if _, err := s.GetUserByUsername(ctx, "mallory"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a rename slipped through: %v", err)
	}
	boom := errors.New("boom")
	_, err = s.UpdateUser(ctx, "u1", func(u *storage.User) error { u.PasswordHash = []byte("lost"); return boom })
	wantErr(t, err, boom)
	if u, _ := s.GetUser(ctx, "u1"); string(u.PasswordHash) != "new" {
		t.Fatal("a failed update wrote")
	}
	_, err = s.UpdateUser(ctx, "nope", func(*storage.User) error { return nil })
	wantErr(t, err, storage.ErrNotFound)
}

// testUpdateCallbackMayRepeat: under contention a backend may run an update's callback more
// than once, but every successful update lands exactly once.
func testUpdateCallbackMayRepeat(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "u"}))
	var calls atomic.Int64
	const n = 10
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.UpdateUser(ctx, "u1", func(u *storage.User) error {
				calls.Add(1)
				u.PasswordHash = append(u.PasswordHash, 'x')
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	u, err := s.GetUser(ctx, "u1")
	mustNoErr(t, err)
	if len(u.PasswordHash) != n || calls.Load() < n {
		t.Fatalf("%d concurrent updates: %d landed, callback ran %d times", n, len(u.PasswordHash), calls.Load())
	}
}

// testDeadline: a call never outlives its context. A callback that blocks (here: one that
// waits, as a callback calling the store would) must not hang other callers past their deadline.
func testDeadline(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "c"}))
	done, ctxDone := context.WithCancel(ctx)
	ctxDone()
	if _, err := s.GetClient(done, "c"); !errors.Is(err, storage.ErrUnavailable) && !errors.Is(err, context.Canceled) {
		t.Fatalf("GetClient on an ended context: %v, want ErrUnavailable", err)
	}

	release := make(chan struct{})
	started := make(chan struct{})
	go func() {
		_, _ = s.UpdateClient(ctx, "c", func(*storage.Client) error {
			select {
			case <-started:
			default:
				close(started)
			}
			<-release
			return nil
		})
	}()
	<-started
	defer close(release)
	calls := map[string]func(ctx context.Context) error{
		"update": func(ctx context.Context) error {
			_, err := s.UpdateClient(ctx, "c", func(c *storage.Client) error { c.Name = "x"; return nil })
			return err
		},
		"read": func(ctx context.Context) error { _, err := s.GetClient(ctx, "c"); return err },
		"ping": s.Ping,
	}
	for name, call := range calls {
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		begin := time.Now()
		err := call(short)
		cancel()
		if took := time.Since(begin); took > 2*time.Second {
			t.Fatalf("a %s with a 100ms deadline took %s behind a blocked callback", name, took)
		}
		if err != nil && !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("%s behind a blocked callback: %v, want success or ErrUnavailable", name, err)
		}
	}
}
