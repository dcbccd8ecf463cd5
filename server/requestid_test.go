package server_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/testlog"
	"github.com/tokensmith/tokensmith/logging"
	"github.com/tokensmith/tokensmith/registry"
)

// logLines decodes the JSON log lines written so far.
func logLines(t *testing.T, b *testlog.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestRequestIDs(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{})
	tests := []struct {
		name, sent string
		adopted    bool
	}{
		{"none sent", "", false},
		{"a UUID is adopted", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"a trace id is adopted", "Root=1-5759e988-bd862e3fe1be46a994272793", true},
		{"spaces are not", "two words", false},
		{"too long is not", strings.Repeat("x", logging.MaxRequestIDLen+1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/oauth2/token", "/.well-known/jwks.json", "/no-such-path"} {
				var r reply
				if path == "/oauth2/token" {
					r = ts.post(t, "application/x-www-form-urlencoded", "grant_type=client_credentials",
						map[string]string{"Authorization": basic(id, sec), "X-Request-Id": tc.sent})
				} else {
					req, _ := http.NewRequest("GET", ts.URL+path, nil)
					if tc.sent != "" {
						req.Header.Set("X-Request-Id", tc.sent)
					}
					r = send(t, req)
				}
				got := r.Header.Get("X-Request-Id")
				if tc.adopted && got != tc.sent {
					t.Errorf("%s: X-Request-Id %q, want the caller's %q", path, got, tc.sent)
				}
				if !tc.adopted && (got == tc.sent || !logging.ValidRequestID(got)) {
					t.Errorf("%s: X-Request-Id %q, want a generated one", path, got)
				}
			}
		})
	}
}

// TestRequestIDInEveryLogLine replays a refresh token after its grace window: grants logs a
// warning, the server its access line, and both carry the request's id.
func TestRequestIDInEveryLogLine(t *testing.T) {
	var logs testlog.Buffer
	ts := newTestServer(t, withJSONLog(&logs))
	id, sec := ts.client(t, registry.ClientInput{GrantTypes: ptr([]string{"password", "refresh_token"})})
	ts.user(t, "rid-user", "rid-password-1")
	login := ts.form(t, id, sec, url.Values{"grant_type": {"password"}, "username": {"rid-user"}, "password": {"rid-password-1"}})
	old := login.str("refresh_token")
	if r := ts.form(t, id, sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}}); r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.RawBody)
	}
	ts.Clock.Advance(6 * time.Second)
	const rid = "replay-request-0001"
	r := ts.post(t, "application/x-www-form-urlencoded", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}}.Encode(),
		map[string]string{"Authorization": basic(id, sec), "X-Request-Id": rid})
	if r.Status != 400 || r.Header.Get("X-Request-Id") != rid {
		t.Fatalf("replay: %d %s, X-Request-Id %q", r.Status, r.RawBody, r.Header.Get("X-Request-Id"))
	}
	var mine []string
	for _, l := range logLines(t, &logs) {
		if l["request_id"] == rid {
			mine = append(mine, l["msg"].(string))
		}
	}
	want := []string{"refresh token replayed; family revoked", "http"}
	for _, w := range want {
		found := false
		for _, m := range mine {
			found = found || m == w
		}
		if !found {
			t.Errorf("no %q line with request_id %s; the request's lines: %q", w, rid, mine)
		}
	}
}
