package cmd

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestExitStatusesAndMessages(t *testing.T) {
	t.Setenv("TOKENSMITH_ADMIN_TOKEN", "a-token-for-tests-that-never-reach-a-server")
	t.Setenv("TOKENSMITH_ADMIN_URL", "")
	closed := closedAddr(t)
	t.Setenv("TOKENSMITH_ADMIN_LISTEN", closed)
	for _, tc := range []struct {
		name     string
		args     []string
		status   int
		stderr   []string // each must appear
		jsonCode string   // with --json: the error code on standard output
	}{
		{"unknown subcommand", []string{"client", "frobnicate"}, 2, []string{`unknown command "frobnicate"`, "tokensmith client --help"}, "invalid_usage"},
		{"unknown command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}, "invalid_usage"},
		{"unknown flag", []string{"client", "list", "--frobnicate"}, 2, []string{"unknown flag: --frobnicate"}, "invalid_usage"},
		{"missing argument", []string{"client", "show"}, 2, []string{"accepts 1 arg"}, "invalid_usage"},
		{"update with nothing to change", []string{"client", "update", "some-client"}, 2, []string{"nothing to change"}, "invalid_usage"},
		{"user without username", []string{"user", "create", "--password", "long-enough"}, 2, []string{"--username is required"}, "invalid_usage"},
		{"password twice", []string{"user", "set-password", "bob", "--password", "x", "--password-stdin"}, 2, []string{"not both"}, "invalid_usage"},
		{"personal token without its required name", []string{"pat", "create", "bob"}, 2,
			[]string{`required flag(s) "name" not set`, "tokensmith pat create --help"}, "invalid_usage"},
		{"flags that exclude each other", []string{"keys", "rotate", "--now", "--publish-ahead", "1m"}, 2,
			[]string{"[now publish-ahead] were all set"}, "invalid_usage"},
		{"admin API from TOKENSMITH_ADMIN_LISTEN, not running", []string{"client", "list"}, 1,
			[]string{"http://" + closed, "from TOKENSMITH_ADMIN_LISTEN", "connection refused", "--admin-url", "TOKENSMITH_ADMIN_URL"}, "unreachable"},
		{"malformed --admin-url", []string{"client", "list", "--admin-url", "http://bad host"}, 1,
			[]string{`admin URL "http://bad host" (from --admin-url)`}, "invalid_usage"},
		{"--admin-url, not running", []string{"user", "list", "--admin-url", "http://" + closed}, 1,
			[]string{"from --admin-url", "connection refused", "TOKENSMITH_ADMIN_URL"}, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := Execute(tc.args, &out, &errOut); got != tc.status {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", got, tc.status, out.String(), errOut.String())
			}
			for _, want := range tc.stderr {
				if !strings.Contains(errOut.String(), want) {
					t.Errorf("stderr %q lacks %q", errOut.String(), want)
				}
			}
			if out.Len() != 0 {
				t.Errorf("an error printed to standard output: %q", out.String())
			}

			out.Reset()
			errOut.Reset()
			if got := Execute(append(tc.args, "--json"), &out, &errOut); got != tc.status {
				t.Fatalf("with --json: exit %d, want %d", got, tc.status)
			}
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(out.Bytes(), &body); err != nil || body.Error != tc.jsonCode || body.Description == "" {
				t.Fatalf("with --json: stdout %q (%v), want {\"error\":%q,...}", out.String(), err, tc.jsonCode)
			}
			if errOut.Len() != 0 {
				t.Errorf("with --json, stderr %q: want everything on standard output", errOut.String())
			}
		})
	}
}

func TestDefaultAdminURL(t *testing.T) {
	for _, tc := range []struct {
		env       map[string]string
		url, from string
	}{
		{nil, "http://127.0.0.1:8081", "the default"},
		{map[string]string{"TOKENSMITH_ADMIN_URL": "https://admin.internal:9443"}, "https://admin.internal:9443", "TOKENSMITH_ADMIN_URL"},
		{map[string]string{"TOKENSMITH_ADMIN_URL": "http://a:1", "TOKENSMITH_ADMIN_LISTEN": "127.0.0.1:9"}, "http://a:1", "TOKENSMITH_ADMIN_URL"},
		{map[string]string{"TOKENSMITH_ADMIN_LISTEN": "127.0.0.1:9091"}, "http://127.0.0.1:9091", "TOKENSMITH_ADMIN_LISTEN"},
		{map[string]string{"TOKENSMITH_ADMIN_LISTEN": ":9091"}, "http://127.0.0.1:9091", "TOKENSMITH_ADMIN_LISTEN"},
		{map[string]string{"TOKENSMITH_ADMIN_LISTEN": "0.0.0.0:9091"}, "http://127.0.0.1:9091", "TOKENSMITH_ADMIN_LISTEN"},
		{map[string]string{"TOKENSMITH_ADMIN_LISTEN": "[::]:9091"}, "http://[::1]:9091", "TOKENSMITH_ADMIN_LISTEN"},
		{map[string]string{"TOKENSMITH_ADMIN_LISTEN": "10.1.2.3:9091"}, "http://10.1.2.3:9091", "TOKENSMITH_ADMIN_LISTEN"},
		{map[string]string{"TOKENSMITH_DEV_TLS": "true"}, "https://127.0.0.1:8081", "the default"},
		{map[string]string{"TOKENSMITH_ADMIN_TLS_CERT": "/etc/ts/admin.pem", "TOKENSMITH_ADMIN_LISTEN": ":9443"}, "https://127.0.0.1:9443", "TOKENSMITH_ADMIN_LISTEN"},
	} {
		url, from := defaultAdminURL(func(k string) string { return tc.env[k] })
		if url != tc.url || from != tc.from {
			t.Errorf("%v: %s (from %s), want %s (from %s)", tc.env, url, from, tc.url, tc.from)
		}
	}
}
