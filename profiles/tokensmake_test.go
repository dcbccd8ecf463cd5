package profiles_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/profiles"
	"github.com/tokensmith/tokensmith/protocol"
)

func TestTokensMakeRequest(t *testing.T) {
	t.Parallel()
	want := &grants.Request{GrantType: protocol.GrantPassword, ClientID: "app-7", AuthMethod: protocol.AuthNone,
		Params: map[string]string{"username": "me@example.com", "password": "pw"}}
	const required = "email, password and appId are required"
	checkRequests(t, route(t, "tokens-make", "make"), []requestCase{
		{name: "email, password and appId", fields: profiles.Fields{"email": "me@example.com", "password": "pw", "appId": "app-7"}, want: want},
		// The app is public: a secret, a scope or a grant sent along reaches nothing.
		{name: "other fields dropped", fields: profiles.Fields{"email": "me@example.com", "password": "pw", "appId": "app-7",
			"client_secret": "s", "scope": "admin", "grant_type": "client_credentials"}, want: want},
		{name: "no email", fields: profiles.Fields{"password": "pw", "appId": "app-7"}, code: protocol.InvalidRequest, desc: required},
		{name: "no password", fields: profiles.Fields{"email": "me@example.com", "appId": "app-7"}, code: protocol.InvalidRequest, desc: required},
		{name: "no appId", fields: profiles.Fields{"email": "me@example.com", "password": "pw"}, code: protocol.InvalidRequest, desc: required},
		{name: "OAuth names instead", fields: profiles.Fields{"username": "me@example.com", "password": "pw", "client_id": "app-7"}, code: protocol.InvalidRequest, desc: required},
	})
}

func TestTokensRefreshRequest(t *testing.T) {
	t.Parallel()
	checkRequests(t, route(t, "tokens-make", "refresh"), []requestCase{
		// The refresh token alone: it names its app.
		{name: "refreshToken", fields: profiles.Fields{"refreshToken": "rt"},
			want: &grants.Request{GrantType: protocol.GrantRefreshToken, AuthMethod: protocol.AuthNone, Params: map[string]string{"refresh_token": "rt"}}},
		{name: "with appId", fields: profiles.Fields{"refreshToken": "rt", "appId": "app-7"},
			want: &grants.Request{GrantType: protocol.GrantRefreshToken, ClientID: "app-7", AuthMethod: protocol.AuthNone, Params: map[string]string{"refresh_token": "rt"}}},
		{name: "other fields dropped", fields: profiles.Fields{"refreshToken": "rt", "scope": "admin", "email": "x"},
			want: &grants.Request{GrantType: protocol.GrantRefreshToken, AuthMethod: protocol.AuthNone, Params: map[string]string{"refresh_token": "rt"}}},
		{name: "no refreshToken", fields: profiles.Fields{"appId": "app-7"}, code: protocol.InvalidRequest, desc: "refreshToken is required"},
		{name: "OAuth name instead", fields: profiles.Fields{"refresh_token": "rt"}, code: protocol.InvalidRequest, desc: "refreshToken is required"},
	})
}

// TestTokensSuccess: both routes answer the pair with end times in unix seconds.
func TestTokensSuccess(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name string
		tok  grants.Token
		want string
	}{
		{name: "pair", tok: grants.Token{AccessToken: "at", IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour), RefreshToken: "rt", RefreshExpiresAt: now.Add(14 * 24 * time.Hour)},
			want: `{"success":true,"accessToken":"at","accessTokenEndTime":1700086400,"refreshToken":"rt","refreshTokenEndTime":1701209600}`},
		{name: "access token alone", tok: grants.Token{AccessToken: "at", IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)},
			want: `{"success":true,"accessToken":"at","accessTokenEndTime":1700086400}`},
	}
	for _, rn := range []string{"make", "refresh"} {
		r := route(t, "tokens-make", rn)
		for _, tt := range tests {
			t.Run(rn+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				// End times are absolute: the answer does not depend on when it is given.
				if got := marshal(t, r.Success(&tt.tok, now.Add(time.Hour))); got != tt.want {
					t.Errorf("got  %s\nwant %s", got, tt.want)
				}
			})
		}
	}
}

func tokensEnv(code, message string) string {
	return `{"success":false,"error":{"code":"` + code + `","message":"` + message + `"}}`
}

func TestTokensMakeFailure(t *testing.T) {
	t.Parallel()
	checkFailures(t, route(t, "tokens-make", "make"), time.Now(), []failureCase{
		{protocol.Errorf(protocol.InvalidRequest, "email, password and appId are required"), http.StatusBadRequest, tokensEnv("ApiValidationError", "email, password and appId are required")},
		{protocol.Errorf(protocol.InvalidClient, "unknown client"), http.StatusUnauthorized, tokensEnv("ApiInvalidAppIdError", "Invalid appId")},
		{protocol.Errorf(protocol.InvalidGrant, "invalid username or password"), http.StatusBadRequest, tokensEnv("ApiInvalidCredentialsError", "Invalid email or password")},
		{protocol.Errorf(protocol.UnauthorizedClient, "password grant not allowed"), http.StatusBadRequest, tokensEnv("ApiAccessDeniedError", "password grant not allowed")},
		{protocol.Errorf(protocol.InvalidScope, "scope x"), http.StatusBadRequest, tokensEnv("ApiAccessDeniedError", "scope x")},
		{protocol.Errorf(protocol.RateLimited, "daily limit of 100 reached"), http.StatusTooManyRequests, tokensEnv("ApiTokensLimitError", "daily limit of 100 reached")},
		{protocol.Unavailable(nil), http.StatusServiceUnavailable, tokensEnv("ApiServiceUnavailableError", "the store is unavailable, retry later")},
		{protocol.Errorf(protocol.ServerError, "internal error"), http.StatusInternalServerError, tokensEnv("ApiInternalError", "Internal error")},
		{protocol.Errorf(protocol.InvalidTarget, "audience"), http.StatusBadRequest, tokensEnv("ApiInternalError", "Internal error")},
		{&protocol.Error{Code: protocol.InvalidRequest}, http.StatusBadRequest, tokensEnv("ApiValidationError", "invalid_request")},
	}, nil)
}

func TestTokensRefreshFailure(t *testing.T) {
	t.Parallel()
	checkFailures(t, route(t, "tokens-make", "refresh"), time.Now(), []failureCase{
		{protocol.Errorf(protocol.InvalidRequest, "refreshToken is required"), http.StatusBadRequest, tokensEnv("ApiValidationError", "refreshToken is required")},
		{protocol.Errorf(protocol.InvalidClient, "unknown client"), http.StatusUnauthorized, tokensEnv("ApiInvalidAppIdError", "Invalid appId")},
		{protocol.Errorf(protocol.InvalidGrant, "refresh token expired"), http.StatusBadRequest, tokensEnv("ApiInvalidRefreshTokenError", "refresh token expired")},
		{protocol.Errorf(protocol.UnauthorizedClient, "refresh not allowed"), http.StatusBadRequest, tokensEnv("ApiAccessDeniedError", "refresh not allowed")},
		{protocol.Errorf(protocol.InvalidScope, "scope x"), http.StatusBadRequest, tokensEnv("ApiAccessDeniedError", "scope x")},
		{protocol.Errorf(protocol.RateLimited, "slow down"), http.StatusTooManyRequests, tokensEnv("ApiTokensLimitError", "slow down")},
		{protocol.Unavailable(nil), http.StatusServiceUnavailable, tokensEnv("ApiServiceUnavailableError", "the store is unavailable, retry later")},
		{protocol.Errorf(protocol.ServerError, "internal error"), http.StatusInternalServerError, tokensEnv("ApiInternalError", "Internal error")},
		{protocol.Errorf("something_new", "x"), http.StatusBadRequest, tokensEnv("ApiInternalError", "Internal error")},
	}, nil)
}
