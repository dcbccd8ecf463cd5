package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/profiles"
)

// endpoints is "profile.route=path" for each endpoint, in order.
func endpoints(t *testing.T, eps []profiles.Endpoint) string {
	t.Helper()
	var out []string
	for _, ep := range eps {
		out = append(out, ep.Profile+"."+ep.Route.Name+"="+ep.Path)
	}
	return strings.Join(out, " ")
}

func TestProfiles(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want string
	}{
		{"off by default", "", nil, ""},
		{"environment", "", []string{"TOKENSMITH_PROFILES=rahmet, tokens-make,atol"},
			"atol.token=/possystem/v4/getToken rahmet.token=/auth/token tokens-make.make=/tokens.make tokens-make.refresh=/tokens.refresh"},
		{"YAML list", "profiles: [atol]", nil, "atol.token=/possystem/v4/getToken"},
		{"YAML map with a path", "profiles:\n  atol:\n    paths: {token: /v4/getToken}\n  rahmet: {}", nil,
			"atol.token=/v4/getToken rahmet.token=/auth/token"},
		// The environment picks which are on; the file's paths stay for those.
		{"environment over YAML", "profiles:\n  atol:\n    paths: {token: /v4/getToken}\n  rahmet: {}", []string{"TOKENSMITH_PROFILES=atol"},
			"atol.token=/v4/getToken"},
		{"environment turns all off", "profiles: [atol]", []string{"TOKENSMITH_PROFILES="}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeYAML(t, tc.yaml+"\nstorage: \"memory:\"\n")
			}
			_, eps, err := loadConfig(path, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := endpoints(t, eps); got != tc.want {
				t.Fatalf("endpoints %q, want %q", got, tc.want)
			}
		})
	}
}

func TestProfilesInvalid(t *testing.T) {
	for _, tc := range []struct{ name, yaml, env, want string }{
		{"unknown profile", "", "TOKENSMITH_PROFILES=evotor", `profiles: unknown profile "evotor" (known: atol, rahmet, tokens-make)`},
		{"unknown route", "profiles:\n  atol:\n    paths: {login: /x}", "", `profiles: atol has no route "login" (routes: token)`},
		{"relative path", "profiles:\n  atol:\n    paths: {token: getToken}", "", "profiles: atol.paths.token:"},
		{"path with a parameter", "profiles:\n  atol:\n    paths: {token: /v4/:id}", "", "profiles: atol.paths.token:"},
		{"one path twice", "profiles:\n  atol:\n    paths: {token: /auth/token}\n  rahmet: {}", "", "is already served by"},
		{"a path of the server's own", "profiles:\n  rahmet:\n    paths: {token: /oauth2/token}", "", "profiles: rahmet: /oauth2/token is served by Tokensmith itself"},
		{"unknown setting", "profiles:\n  atol:\n    path: {token: /x}", "", `unknown setting "path"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeYAML(t, tc.yaml+"\nstorage: \"memory:\"\n")
			}
			var env []string
			if tc.env != "" {
				env = []string{tc.env}
			}
			_, _, err := loadConfig(path, env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func writeYAML(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokensmith.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
