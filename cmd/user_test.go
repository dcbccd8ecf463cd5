package cmd

import (
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/registry"
)

// TestUserShowsScopes: user show prints a user's scopes, saying what they bound, and its help
// says it too.
func TestUserShowsScopes(t *testing.T) {
	addr, reg := startAdminAPI(t, "", "")
	for _, in := range []registry.UserInput{
		{Username: "lena", Password: "correct horse battery staple", Scopes: []string{"orders:read", "orders:write"}},
		{Username: "max", Password: "correct horse battery staple"},
	} {
		if _, err := reg.CreateUser(t.Context(), in); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TOKENSMITH_ADMIN_URL", "http://"+addr)
	t.Setenv("TOKENSMITH_ADMIN_TOKEN", testAdminToken)
	const note = "bound this user's personal tokens only"
	for _, tc := range []struct {
		user      string
		want, not []string
	}{
		{"lena", []string{"username: lena", "scopes:   orders:read orders:write", note}, nil},
		{"max", []string{"username: max", "scopes:   -"}, []string{note}},
	} {
		t.Run(tc.user, func(t *testing.T) {
			status, stdout, stderr := runCLI(t, "user", "show", tc.user)
			if status != 0 {
				t.Fatalf("exit %d: %s", status, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, stdout)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(stdout, n) {
					t.Errorf("output says %q for a user without scopes:\n%s", n, stdout)
				}
			}
		})
	}
	_, help, _ := runCLI(t, "user", "show", "--help")
	if !strings.Contains(help, "A user's scopes bound the scopes of the user's personal tokens (pat create) only") {
		t.Errorf("help does not say what a user's scopes bound:\n%s", help)
	}
}
