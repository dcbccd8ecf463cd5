package grants

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
	redisstore "github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

// countingPATs counts the personal token reads that reach the store.
type countingPATs struct {
	Store
	reads atomic.Int64
}

func (s *countingPATs) GetPersonalToken(ctx context.Context, id string) (storage.PersonalToken, error) {
	s.reads.Add(1)
	return s.Store.GetPersonalToken(ctx, id)
}

// patEnv is a Service whose personal token reads are counted, with the record cache on as
// serve has it.
func patEnv(t testing.TB) (*testEnv, *countingPATs) {
	t.Helper()
	var counted *countingPATs
	e := newEnvOver(t, func(s Store) Store { counted = &countingPATs{Store: s}; return counted },
		func(p *Policy) { p.ClientCacheTTL = time.Minute })
	return e, counted
}

// TestPersonalTokenPathsCostTheSame: whatever a well-formed personal token turns out to be
// (unknown id, known id with a wrong secret, an unknown id seen before, the right token), it
// costs exactly one digest comparison, so neither the work nor its time tells an attacker
// which ids exist. A malformed one (checksum wrong) costs none and no store read.
func TestPersonalTokenPathsCostTheSame(t *testing.T) {
	e, counted := patEnv(t)
	id, sec := e.client(t, storage.Client{})
	uid := e.user(t, "pat-owner", "pat-owner-password")
	patID, tok := e.personal(t, uid, 0)
	unknown := secret.NewPersonalToken(secret.NewID())
	wrongSecret := secret.NewPersonalToken(patID)
	malformed := tok[:len(tok)-1] + string("0123456789"[(int(tok[len(tok)-1])+1)%10])
	for _, tc := range []struct {
		name        string
		raw         string
		active      bool
		comparisons int64
	}{
		{"known id, wrong secret", wrongSecret, false, 1},
		{"unknown id", unknown, false, 1},
		{"unknown id again, remembered", unknown, false, 1},
		{"the right token", tok, true, 1},
		{"a checksum that does not match", malformed, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.svc.core.personalMatches.Load()
			got := e.introspect(t, id, sec, tc.raw)
			if got.Active != tc.active {
				t.Fatalf("active %v, want %v", got.Active, tc.active)
			}
			if n := e.svc.core.personalMatches.Load() - before; n != tc.comparisons {
				t.Fatalf("%d digest comparisons, want %d", n, tc.comparisons)
			}
		})
	}
	// One read for the known id (then cached), one for the unknown id (then remembered).
	if n := counted.reads.Load(); n != 2 {
		t.Fatalf("%d store reads, want 2", n)
	}
}

// TestUnknownPersonalTokensReachTheStoreOncePerTTL: the same crafted token presented again and
// again reaches the store once per personalMissTTL, through introspection, revocation and
// token exchange alike; a token made after its id was remembered as unknown is found at once
// when its creation is announced, and within personalMissTTL when the notice is lost.
func TestUnknownPersonalTokensReachTheStoreOncePerTTL(t *testing.T) {
	e, counted := patEnv(t)
	id, sec := e.client(t, storage.Client{GrantTypes: []string{protocol.GrantTokenExchange}})
	crafted := secret.NewPersonalToken(secret.NewID())
	for i := range 30 {
		switch i % 3 {
		case 0:
			e.introspect(t, id, sec, crafted)
		case 1:
			if err := e.svc.Revoke(context.Background(), req(id, sec, "", protocol.ParamToken, crafted)); err != nil {
				t.Fatal(err)
			}
		case 2:
			e.refused(t, req(id, sec, protocol.GrantTokenExchange, "subject_token", crafted, "subject_token_type", protocol.TokenTypeURIAccess), protocol.InvalidRequest)
		}
	}
	if n := counted.reads.Load(); n != 1 {
		t.Fatalf("30 presentations within the TTL: %d store reads, want 1", n)
	}
	e.clock.Advance(personalMissTTL)
	e.introspect(t, id, sec, crafted)
	if n := counted.reads.Load(); n != 2 {
		t.Fatalf("after the TTL: %d store reads, want 2", n)
	}

	uid := e.user(t, "late-owner", "late-owner-password")
	for _, tc := range []struct {
		name      string
		announced bool
	}{{"announced", true}, {"notice lost", false}} {
		t.Run(tc.name, func(t *testing.T) {
			patID := secret.NewID()
			tok := secret.NewPersonalToken(patID)
			if e.introspect(t, id, sec, tok).Active {
				t.Fatal("a token that does not exist yet is active")
			}
			// Another replica makes the token with that id.
			pt := storage.PersonalToken{ID: patID, UserID: uid, Name: "late", Hash: secret.Hash(tok), CreatedAt: e.clock.Now()}
			if err := e.store.CreatePersonalToken(context.Background(), pt); err != nil {
				t.Fatal(err)
			}
			if tc.announced {
				e.svc.Forget(storage.Change{Kind: storage.ChangePersonalToken, ID: patID})
			} else {
				if e.introspect(t, id, sec, tok).Active {
					t.Fatal("a remembered miss was not used")
				}
				e.clock.Advance(personalMissTTL)
			}
			if !e.introspect(t, id, sec, tok).Active {
				t.Fatal("the token is still answered as unknown")
			}
		})
	}
}

// BenchmarkPersonalTokenRefusal compares what refusing a well-formed personal token costs, below
// HTTP, through introspection: a known id with a wrong secret (its record cached), an unknown id
// seen before (remembered), and an unknown id never seen (one store read), on the embedded store
// and on a real Redis. Run it with -benchtime of at most 20000x, so that every "first seen"
// token is new.
func BenchmarkPersonalTokenRefusal(b *testing.B) {
	for _, st := range []struct {
		name string
		open func(b *testing.B) storage.Storage
	}{
		{"embedded", func(b *testing.B) storage.Storage {
			s, err := embedded.OpenMemory()
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"redis", func(b *testing.B) storage.Storage {
			s, err := redisstore.Open(context.Background(), redistest.Start(b).URL())
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	} {
		b.Run(st.name, func(b *testing.B) {
			store := st.open(b)
			b.Cleanup(func() { _ = store.Close() })
			ctx := context.Background()
			km, _, err := keys.Open(ctx, store, keys.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(km.Set.Close)
			p := testPolicy()
			p.ClientCacheTTL = time.Minute
			svc := NewService(store, km.Set, p)
			sec := secret.NewSecret()
			must := func(err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			must(store.CreateClient(ctx, storage.Client{ID: "bench", SecretHash: secret.Hash(sec), GrantTypes: []string{protocol.GrantClientCredentials}}))
			must(store.CreateUser(ctx, storage.User{ID: "owner", Username: "owner"}))
			patID := secret.NewID()
			must(store.CreatePersonalToken(ctx, storage.PersonalToken{ID: patID, UserID: "owner", Name: "ci", Hash: secret.Hash(secret.NewPersonalToken(patID))}))
			for _, bc := range []struct {
				name string
				raw  func() string
			}{
				{"known_id_wrong_secret", func() string { return secret.NewPersonalToken(patID) }},
				{"unknown_id_remembered", func() string { return secret.NewPersonalToken("unknownid123") }},
				{"unknown_id_first_seen", func() string { return secret.NewPersonalToken(secret.NewID()) }},
			} {
				b.Run(bc.name, func(b *testing.B) {
					toks := make([]string, 20_000)
					for i := range toks {
						toks[i] = bc.raw()
					}
					r := req("bench", sec, "", protocol.ParamToken, "")
					runtime.GC() // the tokens made above are not this case's cost
					for i := 0; b.Loop(); i++ {
						r.Params[protocol.ParamToken] = toks[i%len(toks)]
						if out, err := svc.Introspect(ctx, r); err != nil || out.Active {
							b.Fatalf("%v %v", out, err)
						}
					}
				})
			}
		})
	}
}
