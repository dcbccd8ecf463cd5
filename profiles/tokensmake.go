package profiles

import (
	"time"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/protocol"
)

// tokensMake is the tokens.make / tokens.refresh API (seed 001): a user's email and password
// with the app's appId, a public client (token_endpoint_auth_method none: an app id without a
// secret), for an access and a refresh token; tokens.refresh trades the refresh token alone for
// a new pair. The seed's 100 tokens a day per (email, appId) is the client's daily_limit: a
// password token's subject is the user, so the count is per (appId, user).
var tokensMake = Profile{
	Name: "tokens-make",
	Seed: "tokens.make / tokens.refresh (seed 001)",
	Routes: []Route{{
		Name: "make", Path: "/tokens.make",
		Request: func(f Fields) (*grants.Request, error) {
			email, pw, app := f.take("email"), f.take("password"), f.take("appId")
			if email == "" || pw == "" || app == "" {
				return nil, protocol.Errorf(protocol.InvalidRequest, "email, password and appId are required")
			}
			return &grants.Request{GrantType: protocol.GrantPassword, ClientID: app, AuthMethod: protocol.AuthNone,
				Params: Fields{protocol.ParamUsername: email, protocol.ParamPassword: pw}}, nil
		},
		Success: tokensPair,
		Failure: tokensFailure(tokensMakeErrors),
	}, {
		Name: "refresh", Path: "/tokens.refresh",
		Request: func(f Fields) (*grants.Request, error) {
			rt := f.take("refreshToken")
			if rt == "" {
				return nil, protocol.Errorf(protocol.InvalidRequest, "refreshToken is required")
			}
			// No appId: the refresh token names its app, which must be public (grants.Request).
			// An appId sent anyway must be the token's app.
			return &grants.Request{GrantType: protocol.GrantRefreshToken, ClientID: f.take("appId"), AuthMethod: protocol.AuthNone,
				Params: Fields{protocol.ParamRefreshToken: rt}}, nil
		},
		Success: tokensPair,
		Failure: tokensFailure(tokensRefreshErrors),
	}},
}

// tokensAnswer is a success: the pair, end times in unix seconds, with the success flag the
// error envelope carries too.
type tokensAnswer struct {
	Success             bool   `json:"success"`
	AccessToken         string `json:"accessToken"`
	AccessTokenEndTime  int64  `json:"accessTokenEndTime"`
	RefreshToken        string `json:"refreshToken,omitempty"`
	RefreshTokenEndTime int64  `json:"refreshTokenEndTime,omitempty"`
}

func tokensPair(t *grants.Token, _ time.Time) any {
	out := tokensAnswer{Success: true, AccessToken: t.AccessToken, AccessTokenEndTime: t.ExpiresAt.Unix()}
	if t.RefreshToken != "" {
		out.RefreshToken, out.RefreshTokenEndTime = t.RefreshToken, t.RefreshExpiresAt.Unix()
	}
	return out
}

type tokensError struct {
	Success bool `json:"success"`
	Error   struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func tokensFailure(t table[string]) func(*protocol.Error, time.Time) (int, any) {
	return func(e *protocol.Error, _ time.Time) (int, any) {
		a := t.find(e)
		var out tokensError
		out.Error.Code, out.Error.Message = a.code, a.message
		return a.status, out
	}
}

// tokensMakeErrors and tokensRefreshErrors name errors as the seed's one example does
// (ApiInvalidTokenError): Api<What>Error. The messages are our descriptions, which say what to
// fix; rate_limited covers both the daily limit and the failed-login backoff, and its message
// tells which.
var tokensMakeErrors = table[string]{
	protocol.InvalidRequest:         {code: "ApiValidationError"},
	protocol.InvalidClient:          {code: "ApiInvalidAppIdError", message: "Invalid appId"},
	protocol.InvalidGrant:           {code: "ApiInvalidCredentialsError", message: "Invalid email or password"},
	protocol.UnauthorizedClient:     {code: "ApiAccessDeniedError"},
	protocol.InvalidScope:           {code: "ApiAccessDeniedError"},
	protocol.RateLimited:            {code: "ApiTokensLimitError"},
	protocol.TemporarilyUnavailable: {code: "ApiServiceUnavailableError"},
	"":                              {code: "ApiInternalError", message: "Internal error"},
}

var tokensRefreshErrors = table[string]{
	protocol.InvalidRequest:         {code: "ApiValidationError"},
	protocol.InvalidClient:          {code: "ApiInvalidAppIdError", message: "Invalid appId"},
	protocol.InvalidGrant:           {code: "ApiInvalidRefreshTokenError"},
	protocol.UnauthorizedClient:     {code: "ApiAccessDeniedError"},
	protocol.InvalidScope:           {code: "ApiAccessDeniedError"},
	protocol.RateLimited:            {code: "ApiTokensLimitError"},
	protocol.TemporarilyUnavailable: {code: "ApiServiceUnavailableError"},
	"":                              {code: "ApiInternalError", message: "Internal error"},
}
