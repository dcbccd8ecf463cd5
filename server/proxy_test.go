package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/internal/testlog"
	"github.com/tokensmith/tokensmith/registry"
)

// lastAccess returns the last access log line in logs and forgets everything logged so far.
func lastAccess(logs *testlog.Buffer) string {
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	logs.Reset()
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "msg=http") {
			return lines[i]
		}
	}
	return ""
}

// TestForwardedHeadersOnlyFromTrustedProxies: the test's requests come from 127.0.0.1, so
// they are a proxy's when 127.0.0.1 is trusted and a stranger's when it is not.
func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name       string
		trusted    []string
		headers    map[string]string
		wantRemote string
		wantScheme string
	}{
		{"no proxies trusted: headers ignored", nil,
			map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}, "127.0.0.1", "http"},
		{"another proxy trusted: headers ignored", []string{"10.0.0.0/8"},
			map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}, "127.0.0.1", "http"},
		{"trusted by address", []string{"127.0.0.1"},
			map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}, "203.0.113.9", "https"},
		{"trusted by range, chain of proxies", []string{"127.0.0.0/8", "198.51.100.0/24"},
			map[string]string{"X-Forwarded-For": "203.0.113.9, 198.51.100.4"}, "203.0.113.9", "http"},
		{"a spoofed hop left of an untrusted one is not believed", []string{"127.0.0.1"},
			map[string]string{"X-Forwarded-For": "1.2.3.4, 203.0.113.9"}, "203.0.113.9", "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &testlog.Buffer{}
			ts := newTestServer(t, withTrustedProxies(tc.trusted...), withLogs(logs))
			req, _ := http.NewRequest("GET", ts.URL+"/.well-known/jwks.json", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			if r := send(t, req); r.Status != 200 {
				t.Fatalf("jwks: %d", r.Status)
			}
			line := lastAccess(logs)
			if !strings.Contains(line, "remote="+tc.wantRemote+" ") || !strings.Contains(line, "scheme="+tc.wantScheme) {
				t.Fatalf("access log %q, want remote=%s scheme=%s", line, tc.wantRemote, tc.wantScheme)
			}
		})
	}
}

// TestLoginBackoffSeesTheForwardedAddress: behind a trusted proxy, a guesser at one address
// does not slow down the real user at another; without trust both are the proxy's address.
func TestLoginBackoffSeesTheForwardedAddress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		want    int // the real user's answer after the guesser was slowed down
	}{
		{"behind a trusted proxy", []string{"127.0.0.1"}, 200},
		{"proxy not trusted", nil, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, withTrustedProxies(tc.trusted...))
			ts.user(t, "carol", "carol-password")
			id, sec := ts.client(t, registry.ClientInput{GrantTypes: &[]string{"password"}})
			login := func(from, pw string) int {
				v := url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {pw}}
				return ts.post(t, "application/x-www-form-urlencoded", v.Encode(),
					map[string]string{"Authorization": basic(id, sec), "X-Forwarded-For": from}).Status
			}
			for range 3 { // the test server's failed_login_limit
				if s := login("203.0.113.66", "guess"); s != 400 {
					t.Fatalf("wrong password: %d", s)
				}
			}
			if s := login("203.0.113.66", "carol-password"); s != 429 {
				t.Fatalf("the guesser is not slowed down: %d", s)
			}
			if s := login("198.51.100.7", "carol-password"); s != tc.want {
				t.Fatalf("the real user: %d, want %d", s, tc.want)
			}
		})
	}
}
