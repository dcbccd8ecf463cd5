package registry_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/secret"
)

func withRequestID(id string) context.Context {
	return logging.WithRequest(context.Background(), logging.Request{ID: id})
}

// TestCreateClientRetried: a create whose answer was lost (a 503 for want of replica
// confirmation) and that is sent again with the same request id makes one client, answered
// with a secret that works; other requests make clients of their own.
func TestCreateClientRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		first    context.Context
		second   context.Context
		in2      registry.ClientInput
		after    time.Duration
		wantSame bool
	}{
		{"same request id and input", withRequestID("req-1"), withRequestID("req-1"), registry.ClientInput{Name: ptr("a")}, 0, true},
		{"same request id, within the window", withRequestID("req-1"), withRequestID("req-1"), registry.ClientInput{Name: ptr("a")}, registry.RetryWindow, true},
		{"same request id, past the window", withRequestID("req-1"), withRequestID("req-1"), registry.ClientInput{Name: ptr("a")}, registry.RetryWindow + time.Second, false},
		{"same request id, other input", withRequestID("req-1"), withRequestID("req-1"), registry.ClientInput{Name: ptr("b")}, 0, false},
		{"other request id", withRequestID("req-1"), withRequestID("req-2"), registry.ClientInput{Name: ptr("a")}, 0, false},
		{"no request id", context.Background(), context.Background(), registry.ClientInput{Name: ptr("a")}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			reg, store := e.reg, e.store
			first, err := reg.CreateClient(tc.first, registry.ClientInput{Name: ptr("a")})
			if err != nil {
				t.Fatal(err)
			}
			e.advance(tc.after)
			second, err := reg.CreateClient(tc.second, tc.in2)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantSame {
				if second.ClientID == first.ClientID {
					t.Fatalf("got the first client %s again, want another", first.ClientID)
				}
				return
			}
			if second.ClientID != first.ClientID || second.ClientSecret == "" || second.ClientSecret == first.ClientSecret {
				t.Fatalf("retry = %s (secret %q), want client %s with a new secret", second.ClientID, second.ClientSecret, first.ClientID)
			}
			all, err := store.ListClients(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 {
				t.Fatalf("%d clients after a retried create, want 1", len(all))
			}
			if got, want := all[0].SecretHash, secret.Hash(second.ClientSecret); !bytes.Equal(got, want) {
				t.Fatal("the retry's secret is not the one stored")
			}
		})
	}
}

// TestCreateClientRetriedWithItsID: a create naming its client_id, retried, answers that
// client; another request naming a taken id is refused.
func TestCreateClientRetriedWithItsID(t *testing.T) {
	t.Parallel()
	reg := newEnv(t).reg
	in := registry.ClientInput{ClientID: ptr("billing")}
	if _, err := reg.CreateClient(withRequestID("r1"), in); err != nil {
		t.Fatal(err)
	}
	if got, err := reg.CreateClient(withRequestID("r1"), in); err != nil || got.ClientID != "billing" {
		t.Fatalf("retry = %+v, %v; want client billing", got, err)
	}
	_, err := reg.CreateClient(withRequestID("r2"), in)
	if got, want := protocol.As(err).Code, protocol.AlreadyExists; got != want {
		t.Fatalf("another request for a taken id: %v, want %s", err, want)
	}
}

// TestRotateSecretRetried: a rotation retried with the same request id keeps the grace of the
// secret before it (the one the client still uses), where a second rotation would end it.
func TestRotateSecretRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		retry     context.Context
		wantGrace bool
	}{
		{"same request id", withRequestID("rot-1"), true},
		{"another request", withRequestID("rot-2"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			reg, store := e.reg, e.store
			c, err := reg.CreateClient(context.Background(), registry.ClientInput{})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := reg.RotateSecret(withRequestID("rot-1"), c.ClientID, time.Hour); err != nil {
				t.Fatal(err)
			}
			sec, _, err := reg.RotateSecret(tc.retry, c.ClientID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := store.GetClient(context.Background(), c.ClientID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stored.SecretHash, secret.Hash(sec)) {
				t.Fatal("the last answer's secret is not the stored one")
			}
			if got := bytes.Equal(stored.PrevSecretHash, secret.Hash(c.ClientSecret)); got != tc.wantGrace {
				t.Fatalf("original secret in grace: %v, want %v", got, tc.wantGrace)
			}
		})
	}
}
