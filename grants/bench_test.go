package grants

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// The benchmarks here cover the hot path of a token request below HTTP: minting (claims, the
// RS256 signature, the JWS), admission (reuse and daily limit, one store step on the embedded
// store) and a whole reused and fresh client_credentials request. Run them with
//
//	go test -run '^$' -bench . -benchmem -count 10 ./grants/ > new.txt
//
// and compare two such files with benchstat.

type benchEnv struct {
	h     *Service
	store storage.Storage
}

func newBenchEnv(b *testing.B, opts ...Option) *benchEnv {
	b.Helper()
	store, err := embedded.OpenMemory()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	km, _, err := keys.Open(context.Background(), store, keys.Options{}, log)
	if err != nil {
		b.Fatal(err)
	}
	ks := km.Set
	b.Cleanup(ks.Close)
	h := NewService(store, ks, Policy{
		Issuer: "https://auth.example.com", Audience: []string{"https://api.example.com"},
		ClientCredentialsTTL: 3 * time.Hour, PasswordTTL: 24 * time.Hour, RefreshTTL: 14 * 24 * time.Hour,
		ReuseMinRemaining: 5 * time.Minute, ClientCacheTTL: time.Minute, StoreTimeout: 500 * time.Millisecond,
	}, append([]Option{WithLogger(log)}, opts...)...)
	return &benchEnv{h: h, store: store}
}

// client stores a client and returns a request that authenticates as it.
func (e *benchEnv) client(b *testing.B, c storage.Client) *Request {
	b.Helper()
	sec := secret.NewSecret()
	c.ID = secret.NewID()
	c.SecretHash = secret.Hash(sec)
	c.GrantTypes = []string{protocol.GrantClientCredentials}
	c.Scopes = []string{"orders:read", "orders:write"}
	c.CreatedAt = time.Now()
	if err := e.store.CreateClient(context.Background(), c); err != nil {
		b.Fatal(err)
	}
	return &Request{GrantType: protocol.GrantClientCredentials, Params: map[string]string{},
		ClientID: c.ID, ClientSecret: sec, AuthMethod: protocol.AuthSecretBasic, Remote: "192.0.2.1"}
}

func BenchmarkMint(b *testing.B) {
	e := newBenchEnv(b)
	a := access{clientID: "5ana4c7hmpdk", subject: "5ana4c7hmpdk", scope: "orders:read orders:write",
		audience: []string{"https://api.example.com"}, ttl: 3 * time.Hour}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.h.core.mint(ctx, protocol.GrantClientCredentials, a, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdmission is the admission step alone: a reuse pool that holds a token (the token
// is handed out again), and a daily limit that allows (the day's count goes up).
func BenchmarkAdmission(b *testing.B) {
	ctx := context.Background()
	b.Run("reuse", func(b *testing.B) {
		e := newBenchEnv(b)
		r := e.client(b, storage.Client{Reuse: true})
		if _, err := e.h.Token(ctx, r); err != nil {
			b.Fatal(err)
		}
		cl, err := e.h.core.lookupClient(ctx, r.ClientID, true)
		if err != nil {
			b.Fatal(err)
		}
		a := access{clientID: cl.ID, subject: cl.ID, scope: "orders:read orders:write", audience: []string{"https://api.example.com"}, ttl: 3 * time.Hour}
		b.ReportAllocs()
		for b.Loop() {
			t, err := e.h.core.issue(ctx, cl, a, time.Now(), true, func(context.Context, time.Time) (*Token, error) {
				b.Fatal("minted although the pool holds a token")
				return nil, nil
			})
			if err != nil || !t.reused {
				b.Fatal(err)
			}
		}
	})
	b.Run("daily-limit", func(b *testing.B) {
		e := newBenchEnv(b)
		r := e.client(b, storage.Client{DailyLimit: 1 << 30})
		cl, err := e.h.core.lookupClient(ctx, r.ClientID, true)
		if err != nil {
			b.Fatal(err)
		}
		a := access{clientID: cl.ID, subject: cl.ID, scope: "orders:read", audience: []string{"https://api.example.com"}, ttl: 3 * time.Hour}
		minted := &Token{}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.h.core.issue(ctx, cl, a, time.Now(), false, func(context.Context, time.Time) (*Token, error) { return minted, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkToken is a whole token request below HTTP: client authentication (cached client,
// SHA-256 and a constant-time comparison), scope and audience, admission, minting, the audit
// event into a Writer's buffer.
func BenchmarkToken(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		client storage.Client
	}{
		{"reused", storage.Client{Reuse: true}},
		{"fresh", storage.Client{}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			w := audit.NewWriter(audit.LogSink{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, audit.Options{})
			wctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { w.Run(wctx); close(done) }()
			defer func() { stop(); <-done }()
			e := newBenchEnv(b, WithAuditor(w))
			r := e.client(b, tc.client)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.h.Token(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
