package server_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
)

// TestResourceParameter: resource (RFC 8707) at the token endpoint, repeated for several
// audiences, over real HTTP; the token is checked as a resource server would.
func TestResourceParameter(t *testing.T) {
	ts := newTestServer(t)
	const a, b, c = "https://a.example", "https://b.example", "https://c.example"
	id, sec := ts.client(t, registry.ClientInput{Audience: &protocol.Audience{a, b, c}})
	for _, tc := range []struct {
		name     string
		resource []string
		status   int
		aud      []string
	}{
		{"none", nil, 200, []string{a, b, c}},
		{"one", []string{a}, 200, []string{a}},
		{"two, repeated", []string{a, b}, 200, []string{a, b}},
		{"unknown", []string{"https://elsewhere.example"}, 400, nil},
		{"known and unknown, repeated", []string{a, "https://elsewhere.example"}, 400, nil},
		{"empty among repeated", []string{a, ""}, 400, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{"grant_type": {protocol.GrantClientCredentials}, "resource": tc.resource}
			r := ts.form(t, id, sec, v)
			if r.Status != tc.status {
				t.Fatalf("%d %s, want %d", r.Status, r.RawBody, tc.status)
			}
			if tc.status != 200 {
				if r.str("error") != "invalid_target" {
					t.Errorf("error %q, want invalid_target", r.str("error"))
				}
				return
			}
			if got := []string(verify(t, ts, r.str("access_token")).Audience); !slices.Equal(got, tc.aud) {
				t.Errorf("aud %v, want %v", got, tc.aud)
			}
		})
	}
}
