package grants

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// stallingStore is the real memory store whose GetClient notes the deadline it was given and,
// when stall is set, waits for its context to end, as a store that stopped answering does
// (for at most five seconds, so a missing deadline fails the test instead of hanging it).
type stallingStore struct {
	Store
	stall     bool
	deadlines []time.Time
}

func (s *stallingStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	d, _ := ctx.Deadline()
	s.deadlines = append(s.deadlines, d)
	if s.stall {
		select {
		case <-ctx.Done():
			return storage.Client{}, ctx.Err()
		case <-time.After(5 * time.Second):
			return storage.Client{}, errors.New("stalled call was never given up")
		}
	}
	return s.Store.GetClient(ctx, id)
}

func memoryStore(t testing.TB) *embedded.Store {
	t.Helper()
	st, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

type observation struct {
	op     string
	failed bool
}

func TestGuardedStoreMeasuresEveryCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := memoryStore(t)
	if err := mem.CreateClient(ctx, storage.Client{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	fam := storage.RefreshToken{Hash: "h", FamilyID: "f", ClientID: "c1", Subject: "u", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := mem.CreateRefreshToken(ctx, fam); err != nil {
		t.Fatal(err)
	}
	if err := mem.RevokeFamily(ctx, "f", time.Now()); err != nil {
		t.Fatal(err)
	}
	var got []observation
	s := guardedStore{next: &stallingStore{Store: mem}, timeout: time.Minute, observe: func(op string, took time.Duration, failed bool) {
		if took < 0 {
			t.Errorf("%s took %v", op, took)
		}
		got = append(got, observation{op, failed})
	}}
	tests := []struct {
		name string
		call func() error
		want observation
	}{
		{"found", func() error { _, err := s.GetClient(ctx, "c1"); return err }, observation{"GetClient", false}},
		{"not found is an answer", func() error { _, err := s.GetPersonalToken(ctx, "nope"); return err }, observation{"GetPersonalToken", false}},
		{"revoked is an answer", func() error {
			_, err := s.RotateRefreshToken(ctx, storage.Rotation{FamilyID: "f", Hash: "h", ClientID: "c1", Now: time.Now()})
			return err
		}, observation{"RotateRefreshToken", false}},
		{"error-only method", func() error { return s.TouchPersonalTokens(ctx, map[string]time.Time{"x": time.Now()}) }, observation{"TouchPersonalTokens", false}},
		{"a cancelled call is a failure", func() error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := s.Admit(cctx, storage.Admission{Now: time.Now(), Limit: 1, Day: "d", Pool: storage.Pool{ClientID: "c1"}})
			return err
		}, observation{"Admit", true}},
	}
	for _, tc := range tests {
		got = nil
		err := tc.call()
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: observed %v (err %v), want [%v]", tc.name, got, err, tc.want)
		}
	}
}

func TestFailedTellsFailuresFromAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{storage.ErrNotFound, false},
		{storage.ErrAlreadyExists, false},
		{storage.ErrRevoked, false},
		{storage.ErrReplay, false},
		{errors.Join(errors.New("wrapped"), storage.ErrNotFound), false},
		{storage.ErrUnavailable, true},
		{context.DeadlineExceeded, true},
		{errors.New("broken"), true},
	}
	for _, tc := range tests {
		if got := failed(tc.err); got != tc.want {
			t.Errorf("failed(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// The deadline is per call: a second call gets a deadline of its own, later than the first.
// A per-request deadline would give both the same.
func TestGuardedStoreDeadlineIsPerCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stall := &stallingStore{Store: memoryStore(t)}
	s := guardedStore{next: stall, timeout: time.Hour}
	for range 2 {
		_, _ = s.GetClient(ctx, "c1")
		time.Sleep(20 * time.Millisecond)
	}
	if len(stall.deadlines) != 2 || stall.deadlines[0].IsZero() {
		t.Fatalf("deadlines %v, want two", stall.deadlines)
	}
	if gap := stall.deadlines[1].Sub(stall.deadlines[0]); gap < 20*time.Millisecond {
		t.Errorf("second deadline %v after the first, want at least 20ms (one per call)", gap)
	}
	if left := time.Until(stall.deadlines[1]); left > time.Hour || left < 59*time.Minute {
		t.Errorf("deadline %v away, want the store timeout (1h)", left)
	}

	unbounded := &stallingStore{Store: memoryStore(t)}
	_, _ = guardedStore{next: unbounded, observe: func(string, time.Duration, bool) {}}.GetClient(ctx, "c1")
	if len(unbounded.deadlines) != 1 || !unbounded.deadlines[0].IsZero() {
		t.Errorf("without a timeout: deadlines %v, want none", unbounded.deadlines)
	}
}

// A call that times out ends with the deadline and is measured as a failure.
func TestGuardedStoreTimeoutIsAFailure(t *testing.T) {
	t.Parallel()
	var got []observation
	s := guardedStore{next: &stallingStore{Store: memoryStore(t), stall: true}, timeout: 10 * time.Millisecond,
		observe: func(op string, _ time.Duration, failed bool) { got = append(got, observation{op, failed}) }}
	_, err := s.GetClient(context.Background(), "c1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want context.DeadlineExceeded", err)
	}
	if want := (observation{"GetClient", true}); len(got) != 1 || got[0] != want {
		t.Errorf("observed %v, want [%v]", got, want)
	}
}
