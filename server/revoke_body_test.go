package server_test

import (
	"net/url"
	"testing"

	"github.com/tokensmith/tokensmith/registry"
)

// TestRevokeAnswersJSON: /oauth2/revoke answers every revocation, of a live token or of one
// that needed nothing, with an empty JSON object (RFC 7009 §2.2 lets the client ignore the
// body; client libraries such as simple-oauth2 parse it as JSON and fail on nothing), not to
// be cached, and a refusal in the usual error shape.
func TestRevokeAnswersJSON(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{})
	tok := ts.form(t, id, sec, url.Values{"grant_type": {"client_credentials"}})
	if tok.Status != 200 {
		t.Fatalf("token: %d %s", tok.Status, tok.RawBody)
	}
	access := tok.str("access_token")
	tests := []struct {
		name   string
		sec    string
		token  string
		status int
		body   string
	}{
		{"a live access token", sec, access, 200, "{}"},
		{"the same token again", sec, access, 200, "{}"},
		{"an unknown token", sec, "not-a-token", 200, "{}"},
		{"a wrong client secret", sec + "x", access, 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.revoke(t, id, tc.sec, tc.token)
			if r.Status != tc.status {
				t.Fatalf("status: got %d, want %d (%s)", r.Status, tc.status, r.RawBody)
			}
			if got, want := r.Header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
				t.Errorf("Content-Type: got %q, want %q", got, want)
			}
			if got, want := r.Header.Get("Cache-Control"), "no-store"; got != want {
				t.Errorf("Cache-Control: got %q, want %q", got, want)
			}
			if tc.body != "" && r.RawBody != tc.body {
				t.Errorf("body: got %q, want %q", r.RawBody, tc.body)
			}
			if tc.status != 200 && r.str("error") != "invalid_client" {
				t.Errorf("refusal: got %s, want an invalid_client error", r.RawBody)
			}
		})
	}
}
