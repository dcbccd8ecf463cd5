package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// patBursts is how many bursts of concurrent creates race for a user's last token slots.
const patBursts = 100

// testPersonalTokenCap: a user holds at most storage.MaxPersonalTokens personal tokens, counted
// in the step that creates one. Each burst starts at 90 tokens and sends 60 creates at once:
// exactly 10 are stored, the other 50 are ErrLimitReached. The 10 are then deleted for the
// next burst.
func testPersonalTokenCap(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	const start, burst = storage.MaxPersonalTokens - 10, 60
	for i := range start {
		mustNoErr(t, s.CreatePersonalToken(ctx, pat(fmt.Sprintf("base-%d", i), "u1", now)))
	}
	for b := range patBursts {
		var created, refused atomic.Int32
		ids := make([]string, burst)
		var wg sync.WaitGroup
		for i := range burst {
			ids[i] = fmt.Sprintf("b%d-%d", b, i)
			wg.Go(func() {
				err := s.CreatePersonalToken(ctx, pat(ids[i], "u1", now))
				switch {
				case err == nil:
					created.Add(1)
				case errors.Is(err, storage.ErrLimitReached):
					refused.Add(1)
					ids[i] = ""
				default:
					t.Error(err)
					ids[i] = ""
				}
			})
		}
		wg.Wait()
		if created.Load() != 10 || refused.Load() != burst-10 {
			t.Fatalf("burst %d: %d created, %d refused; want 10 and %d", b, created.Load(), refused.Load(), burst-10)
		}
		held, err := s.ListPersonalTokens(ctx, "u1")
		mustNoErr(t, err)
		if len(held) != storage.MaxPersonalTokens {
			t.Fatalf("burst %d: the user holds %d tokens, want %d", b, len(held), storage.MaxPersonalTokens)
		}
		for _, id := range ids {
			if id != "" {
				mustNoErr(t, s.DeletePersonalToken(ctx, "u1", id))
			}
		}
	}
}
