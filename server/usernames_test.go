package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/registry"
	"golang.org/x/oauth2"
)

// TestLookAlikeUsernames: usernames that look alike are one user. Through the admin API a
// second user whose name normalises to an existing one's is 409; the password grant (with a
// real OAuth2 client) and the admin lookup find the existing user under every form.
func TestLookAlikeUsernames(t *testing.T) {
	ts := newTestServer(t)
	id, sec := ts.client(t, registry.ClientInput{GrantTypes: ptr([]string{"password"})})
	for _, tc := range []struct {
		name, stored string
		forms        []string
	}{
		{"fullwidth", "foo", []string{"ｆｏｏ", "ＦＯＯ"}},
		{"ligature", "ﬁona", []string{"fiona", "FIONA"}},
		{"combining accent", "jos\u00e9", []string{"jose\u0301", "JOSE\u0301"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pw := tc.name + "-password"
			body, _ := json.Marshal(map[string]string{"username": tc.stored, "password": pw})
			r := ts.admin(t, "POST", "/admin/users", string(body))
			if r.Status != http.StatusCreated {
				t.Fatalf("create %q: %d %s", tc.stored, r.Status, r.RawBody)
			}
			uid := r.str("id")
			cfg := oauth2.Config{ClientID: id, ClientSecret: sec, Endpoint: oauth2.Endpoint{TokenURL: ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
			for _, form := range tc.forms {
				body, _ := json.Marshal(map[string]string{"username": form, "password": "another-password"})
				if r := ts.admin(t, "POST", "/admin/users", string(body)); r.Status != http.StatusConflict {
					t.Errorf("create %q beside %q: %d %s, want 409", form, tc.stored, r.Status, r.RawBody)
				}
				if _, err := cfg.PasswordCredentialsToken(t.Context(), form, pw); err != nil {
					t.Errorf("password grant as %q: %v", form, err)
				}
				if r := ts.admin(t, "GET", "/admin/users?username="+url.QueryEscape(form), ""); r.Status != http.StatusOK || r.RawBody == "" || !json.Valid([]byte(r.RawBody)) || !strings.Contains(r.RawBody, uid) {
					t.Errorf("lookup %q: %d %s, want %s", form, r.Status, r.RawBody, uid)
				}
			}
		})
	}
}
