package profiles_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/profiles"
	"github.com/tokensmith/tokensmith/protocol"
)

func TestRahmetRequest(t *testing.T) {
	t.Parallel()
	checkRequests(t, route(t, "rahmet", "token"), []requestCase{
		{name: "the seed's example", fields: profiles.Fields{"client_id": "12697011", "client_secret": "7k4f", "grant_type": "client_credentials"},
			want: &grants.Request{GrantType: protocol.GrantClientCredentials, ClientID: "12697011", ClientSecret: "7k4f",
				AuthMethod: protocol.AuthSecretPost, Params: map[string]string{}}},
		// Other fields are the grant's parameters, as at /oauth2/token.
		{name: "scope and audience passed on", fields: profiles.Fields{"client_id": "c", "client_secret": "s", "grant_type": "client_credentials", "scope": "pay", "audience": "api"},
			want: &grants.Request{GrantType: protocol.GrantClientCredentials, ClientID: "c", ClientSecret: "s",
				AuthMethod: protocol.AuthSecretPost, Params: map[string]string{"scope": "pay", "audience": "api"}}},
		// Missing credentials are the grant's to refuse, as invalid_client.
		{name: "no credentials", fields: profiles.Fields{"grant_type": "client_credentials"},
			want: &grants.Request{GrantType: protocol.GrantClientCredentials, AuthMethod: protocol.AuthSecretPost, Params: map[string]string{}}},
		{name: "no grant_type", fields: profiles.Fields{"client_id": "c", "client_secret": "s"},
			code: protocol.InvalidRequest, desc: "missing grant_type"},
		{name: "password grant", fields: profiles.Fields{"client_id": "c", "client_secret": "s", "grant_type": "password"},
			code: protocol.UnsupportedGrantType, desc: `grant_type "password" is not served here`},
		{name: "refresh grant", fields: profiles.Fields{"grant_type": "refresh_token"},
			code: protocol.UnsupportedGrantType, desc: `grant_type "refresh_token" is not served here`},
	})
}

func TestRahmetSuccess(t *testing.T) {
	t.Parallel()
	r := route(t, "rahmet", "token")
	issued := time.Date(2019, 9, 17, 10, 55, 22, 0, time.UTC)
	tests := []struct {
		name string
		tok  grants.Token
		now  time.Time
		want string
	}{
		// The seed's example answer: 3 hours, 10800 seconds.
		{name: "new token", tok: grants.Token{AccessToken: "eyJ0", IssuedAt: issued, ExpiresAt: issued.Add(3 * time.Hour)}, now: issued,
			want: `{"error_code":0,"status":"success","message":"Токен успешно создан","data":{"token_type":"Bearer","token":"eyJ0","expire_in":10800}}`},
		// A token answered again reports what is left of its life.
		{name: "reused an hour later", tok: grants.Token{AccessToken: "eyJ0", IssuedAt: issued, ExpiresAt: issued.Add(3 * time.Hour)}, now: issued.Add(time.Hour),
			want: `{"error_code":0,"status":"success","message":"Токен успешно создан","data":{"token_type":"Bearer","token":"eyJ0","expire_in":7200}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := marshal(t, r.Success(&tt.tok, tt.now)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestRahmetFailure: league/oauth2-server's codes and messages (the seed's one example is its
// invalidClient), the HTTP status as the code where it has none.
func TestRahmetFailure(t *testing.T) {
	t.Parallel()
	const (
		unsupported = "The authorization grant type is not supported by the authorization server."
		invalidReq  = "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed."
		badScope    = "The requested scope is invalid, unknown, or malformed"
		denied      = "The resource owner or authorization server denied the request."
		unexpected  = "The authorization server encountered an unexpected condition which prevented it from fulfilling the request."
	)
	env := func(code int, msg string) string {
		return `{"error_code":` + strconv.Itoa(code) + `,"status":"error","message":"` + msg + `","data":null}`
	}
	checkFailures(t, route(t, "rahmet", "token"), time.Now(), []failureCase{
		{protocol.Errorf(protocol.UnsupportedGrantType, "no"), http.StatusBadRequest, env(2, unsupported)},
		{protocol.Errorf(protocol.InvalidRequest, "missing grant_type"), http.StatusBadRequest, env(3, invalidReq)},
		// The seed's example, exactly.
		{protocol.Errorf(protocol.InvalidClient, "unknown client or wrong secret"), http.StatusUnauthorized,
			`{"error_code":4,"status":"error","message":"Client authentication failed","data":null}`},
		{protocol.Errorf(protocol.InvalidScope, "scope x"), http.StatusBadRequest, env(5, badScope)},
		{protocol.Errorf(protocol.InvalidTarget, "audience y"), http.StatusBadRequest, env(5, badScope)},
		{protocol.Errorf(protocol.UnauthorizedClient, "grant not allowed"), http.StatusBadRequest, env(9, denied)},
		// No message of its own: the description, which says what to fix.
		{protocol.Errorf(protocol.InvalidGrant, "the grant is no longer valid"), http.StatusBadRequest, env(10, "the grant is no longer valid")},
		{&protocol.Error{Code: protocol.RateLimited}, http.StatusTooManyRequests, env(429, "rate_limited")},
		{protocol.Errorf(protocol.RateLimited, "daily limit of 100 reached"), http.StatusTooManyRequests, env(429, "daily limit of 100 reached")},
		{protocol.Unavailable(nil), http.StatusServiceUnavailable, env(503, "the store is unavailable, retry later")},
		{protocol.Errorf(protocol.ServerError, "internal error"), http.StatusInternalServerError, env(7, unexpected)},
		{protocol.Errorf("something_new", "x"), http.StatusBadRequest, env(7, unexpected)},
	}, nil)
}
