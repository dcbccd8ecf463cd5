package grants

import (
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// TestResourceEveryGrant: resource (RFC 8707) is honoured by every grant that issues from the
// client's registration, with the rules token exchange has: an unknown one is invalid_target, a
// known one narrows aud to it, several (repeated, arriving space-separated) are allowed.
func TestResourceEveryGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const a, b = "https://a.example", "https://b.example"
	id, sec := e.client(t, storage.Client{Audience: []string{a, b, "https://c.example"},
		GrantTypes: []string{protocol.GrantClientCredentials, protocol.GrantPassword}})
	e.user(t, "lena", "lena-password")
	grants := map[string]func(kv ...string) *Request{
		"client_credentials": func(kv ...string) *Request { return req(id, sec, protocol.GrantClientCredentials, kv...) },
		"password":           func(kv ...string) *Request { return loginReq(id, sec, "lena", kv...) },
	}
	for grant, mk := range grants {
		for _, tc := range []struct {
			name string
			kv   []string
			aud  string // space-separated, when code is ""
			code string
		}{
			{"no resource: every audience", nil, a + " " + b + " https://c.example", ""},
			{"one known resource", []string{"resource", a}, a, ""},
			{"two known resources", []string{"resource", a + " " + b}, a + " " + b, ""},
			{"an unknown resource", []string{"resource", "https://elsewhere.example"}, "", protocol.InvalidTarget},
			{"a known and an unknown", []string{"resource", a + " https://elsewhere.example"}, "", protocol.InvalidTarget},
			{"resource and audience the same", []string{"resource", a, "audience", a}, a, ""},
			{"resource and audience differ", []string{"resource", a, "audience", b}, "", protocol.InvalidTarget},
		} {
			t.Run(grant+"/"+tc.name, func(t *testing.T) {
				if tc.code != "" {
					e.refused(t, mk(tc.kv...), tc.code)
					return
				}
				tok := e.token(t, mk(tc.kv...))
				if got := strings.Join(e.claimsOf(t, tok.AccessToken).Audience, " "); got != tc.aud {
					t.Errorf("aud %q, want %q", got, tc.aud)
				}
			})
		}
	}
}
