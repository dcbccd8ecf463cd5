package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/server"
)

// FuzzTokenRequest feeds arbitrary bodies, content types and Authorization headers to the
// token endpoint. Whatever arrives, the answer is a 200 or a 4xx with an RFC 6749 error body,
// never a 500 or a panic, and ParseTokenRequest agrees with it.
func FuzzTokenRequest(f *testing.F) {
	seeds := []struct{ ctype, auth, body string }{
		{"application/x-www-form-urlencoded", "", "grant_type=client_credentials"},
		{"application/x-www-form-urlencoded", "", "grant_type=client_credentials&grant_type=password"},
		{"application/x-www-form-urlencoded", "", "grant_type=%zz"},
		{"application/x-www-form-urlencoded", "", "scope=%ff&grant_type=client_credentials"},
		{"application/x-www-form-urlencoded", "", "grant_type=client_credentials&scope=\xff\xfe"},
		{"application/x-www-form-urlencoded; charset=latin1", "", "grant_type=client_credentials"},
		{"application/json", "", `{"grant_type":"client_credentials","grant_type":"x"}`},
		{"application/json", "", `{"grant_type":{"nested":[1,2]}}`},
		{"application/json", "", `{"grant_type":"password","username":1e999,"password":null}`},
		{"application/json", "", `[1,2,3]`},
		{"application/json", "", `{"a":"b"} trailing`},
		{"text/plain", "", "grant_type=client_credentials"},
		{"", "", ""},
		{"multipart/form-data; boundary=x", "", "--x\r\n"},
		{"application/x-www-form-urlencoded", "Basic !!!", "grant_type=client_credentials"},
		{"application/x-www-form-urlencoded", "Basic Zm9vOg==", "grant_type=client_credentials&client_secret=x"},
		{"application/x-www-form-urlencoded", "Basic JXp6OiV6eg==", "grant_type=client_credentials"},
		{"application/x-www-form-urlencoded", "Bearer abc", "grant_type=refresh_token&refresh_token=tsr_AAAAAAAAAAAA.x"},
		{"application/x-www-form-urlencoded", "", "grant_type=refresh_token&refresh_token=tsr_" + strings.Repeat("A", 12) + "." + strings.Repeat("A", 43)},
		{"application/x-www-form-urlencoded", "", "grant_type=urn:ietf:params:oauth:grant-type:token-exchange"},
		{"application/x-www-form-urlencoded", "", "grant_type=client_credentials&" + strings.Repeat("a=b&", 20000)},
	}
	for _, s := range seeds {
		f.Add(s.ctype, s.auth, s.body)
	}
	ts := newTestServer(f)
	id, sec := ts.client(f, registry.ClientInput{GrantTypes: &[]string{"client_credentials", "password", "refresh_token"}, Scopes: &[]string{"a"}})
	f.Add("application/x-www-form-urlencoded", basic(id, sec), "grant_type=client_credentials&scope=a")
	f.Add("application/json", "", `{"grant_type":"client_credentials","client_id":"`+id+`","client_secret":"`+sec+`"}`)

	f.Fuzz(func(t *testing.T, ctype, auth, body string) {
		req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		_, perr := server.ParseTokenRequest(req)
		if perr != nil {
			if st := protocol.As(perr).Status(); st < 400 || st >= 500 {
				t.Fatalf("parse error %v has status %d", perr, st)
			}
		}

		req, err := http.NewRequest("POST", ts.URL+"/oauth2/token", strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", ctype)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return // a header Go's client refuses to send never reaches us
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for content-type %q auth %q body %q", resp.StatusCode, ctype, auth, body)
		}
		if perr != nil && resp.StatusCode == 200 {
			t.Fatalf("parser refused (%v) but the endpoint answered 200", perr)
		}
	})
}
