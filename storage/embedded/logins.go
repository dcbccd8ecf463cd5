package embedded

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// Login implements storage.Storage.
func (s *Store) Login(ctx context.Context, a storage.LoginAttempt) (storage.LoginState, error) {
	st := s.logins.state(a)
	u, err := s.GetUserByUsername(ctx, a.Username)
	switch {
	case err == nil:
		st.User = &u
	case !errors.Is(err, storage.ErrNotFound):
		return storage.LoginState{}, err
	}
	return st, nil
}

// LoginFailed implements storage.Storage.
func (s *Store) LoginFailed(_ context.Context, a storage.LoginAttempt) error {
	s.logins.fail(a)
	return nil
}

// LoginSucceeded implements storage.Storage.
func (s *Store) LoginSucceeded(_ context.Context, a storage.LoginAttempt) error {
	s.logins.succeed(a)
	return nil
}

// throttle keeps the failed-login counts of storage.LoginAttempt in memory. Keys are 16-byte
// digests and entries are capped, so memory stays bounded in bytes whatever usernames a guesser
// sends: at most maxLoginEntries × ~100 bytes.
type throttle struct {
	mu sync.Mutex
	m  map[[16]byte]*loginEntry
}

type loginEntry struct {
	fails int
	until time.Time
	last  time.Time
}

const maxLoginEntries = 100_000

func newThrottle() *throttle { return &throttle{m: map[[16]byte]*loginEntry{}} }

func loginKeys(a storage.LoginAttempt) (pair, user [16]byte) {
	name := storage.FoldUsername(a.Username)
	u := sha256.Sum256([]byte("user\x00" + name))
	p := sha256.Sum256([]byte("pair\x00" + name + "\x00" + a.Remote))
	copy(user[:], u[:16])
	copy(pair[:], p[:16])
	return pair, user
}

// entry returns the live entry under k, or nil once it has lapsed.
func (t *throttle) entry(k [16]byte, a storage.LoginAttempt) *loginEntry {
	e := t.m[k]
	if e != nil && a.Now.Sub(e.last) > a.Window {
		delete(t.m, k)
		return nil
	}
	return e
}

func (t *throttle) state(a storage.LoginAttempt) storage.LoginState {
	pk, uk := loginKeys(a)
	t.mu.Lock()
	defer t.mu.Unlock()
	var st storage.LoginState
	pair, user := t.entry(pk, a), t.entry(uk, a)
	if pair == nil {
		return st
	}
	st.Failed = true
	if pair.until.After(a.Now) {
		st.Wait = pair.until.Sub(a.Now)
	}
	if user != nil && user.until.After(a.Now) {
		st.Wait = max(st.Wait, user.until.Sub(a.Now))
	}
	return st
}

func (t *throttle) fail(a storage.LoginAttempt) {
	pk, uk := loginKeys(a)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range []struct {
		key   [16]byte
		limit int
	}{{pk, a.Limit}, {uk, a.UserLimit}} {
		e := t.entry(k.key, a)
		if e == nil {
			if len(t.m) >= maxLoginEntries {
				t.evict(a)
			}
			e = &loginEntry{}
			t.m[k.key] = e
		}
		e.fails++
		e.last = a.Now
		if d := storage.Backoff(e.fails, k.limit, a.MaxDelay); d > 0 {
			e.until = a.Now.Add(d)
		}
	}
}

func (t *throttle) succeed(a storage.LoginAttempt) {
	pk, _ := loginKeys(a)
	t.mu.Lock()
	delete(t.m, pk)
	t.mu.Unlock()
}

// evict drops lapsed entries and, if that is not enough, entries that hold nobody back, and
// then a tenth of the rest: the cap is the harder promise.
func (t *throttle) evict(a storage.LoginAttempt) {
	for k, e := range t.m {
		if a.Now.Sub(e.last) > a.Window || !e.until.After(a.Now) {
			delete(t.m, k)
		}
	}
	for k := range t.m {
		if len(t.m) < maxLoginEntries*9/10 {
			break
		}
		delete(t.m, k)
	}
}
