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

func testIncarnations(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	a := admission(now, 1, "r1")
	a.Pool.Incarnation = "1"
	if got, _ := s.Admit(ctx, a); !got.Allowed {
		t.Fatalf("first incarnation: %+v", got)
	}
	mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: a, Token: pooled("j1", now, time.Hour)}))
	b := admission(now, 1, "r2")
	b.Pool.Incarnation = "2"
	if got, _ := s.Admit(ctx, b); !got.Allowed || got.Reused != nil {
		t.Fatalf("a client created again must not see its predecessor's pool: %+v", got)
	}
	l1 := limitAdmission(now, 1, "d")
	l1.Pool.Incarnation = "1"
	l2 := l1
	l2.Pool.Incarnation = "2"
	if got, _ := s.Admit(ctx, l1); !got.Allowed {
		t.Fatal(got)
	}
	if got, _ := s.Admit(ctx, l2); !got.Allowed {
		t.Fatalf("a client created again shares its predecessor's daily count: %+v", got)
	}
}

func testChangeFeed(t *testing.T, s storage.Storage) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan storage.Change, 10)
	health := make(chan bool, 10)
	go s.Watch(ctx, func(c storage.Change) { got <- c }, func(ok bool) { health <- ok })
	deadline := time.After(5 * time.Second)
	for healthy := false; !healthy; {
		select {
		case healthy = <-health:
		case <-deadline:
			t.Fatal("the change feed never became healthy")
		}
	}
	want := storage.Change{Kind: storage.ChangeClient, ID: "c1"}
	mustNoErr(t, s.Publish(context.Background(), want))
	select {
	case c := <-got:
		if c != want {
			t.Fatalf("got %+v, want %+v", c, want)
		}
	case <-deadline:
		t.Fatal("a published change was not delivered")
	}
}
