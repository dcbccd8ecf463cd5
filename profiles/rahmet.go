package profiles

import (
	"time"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/protocol"
)

// rahmet is Rahmet Pay's POST /auth/token (seed 002): the client credentials grant with
// client_id, client_secret and grant_type, form or JSON, answered in the
// {"error_code","status","message","data"} envelope.
var rahmet = Profile{
	Name: "rahmet",
	Seed: "Rahmet Pay /auth/token (seed 002)",
	Routes: []Route{{
		Name: "token", Path: "/auth/token",
		Request: func(f Fields) (*grants.Request, error) {
			id, sec := f.take(protocol.ParamClientID), f.take(protocol.ParamClientSecret)
			switch gt := f.take(protocol.ParamGrantType); gt {
			case protocol.GrantClientCredentials:
			case "":
				return nil, protocol.Errorf(protocol.InvalidRequest, "missing grant_type")
			default:
				// The API issues client tokens only; other grants live at /oauth2/token.
				return nil, protocol.Errorf(protocol.UnsupportedGrantType, "grant_type %q is not served here", gt)
			}
			return &grants.Request{GrantType: protocol.GrantClientCredentials, ClientID: id, ClientSecret: sec,
				AuthMethod: protocol.AuthSecretPost, Params: f}, nil
		},
		Success: func(t *grants.Token, now time.Time) any {
			return rahmetAnswer{Status: "success", Message: "Токен успешно создан",
				Data: &rahmetToken{TokenType: "Bearer", Token: t.AccessToken, ExpireIn: t.ExpiresIn(now)}}
		},
		Failure: func(e *protocol.Error, _ time.Time) (int, any) {
			a := rahmetErrors.find(e)
			return a.status, rahmetAnswer{ErrorCode: a.code, Status: "error", Message: a.message}
		},
	}},
}

type rahmetAnswer struct {
	ErrorCode int          `json:"error_code"`
	Status    string       `json:"status"`
	Message   string       `json:"message"`
	Data      *rahmetToken `json:"data"`
}

type rahmetToken struct {
	TokenType string `json:"token_type"`
	Token     string `json:"token"`
	ExpireIn  int64  `json:"expire_in"`
}

// rahmetErrors: the seed's one example, 4 "Client authentication failed", is the error code and
// message of league/oauth2-server's invalidClient, the library behind Laravel Passport, so the
// codes it has (2 to 10) are its codes and messages. Refusals it has no code for use the
// HTTP status as their code.
var rahmetErrors = table[int]{
	protocol.UnsupportedGrantType:   {code: 2, message: "The authorization grant type is not supported by the authorization server."},
	protocol.InvalidRequest:         {code: 3, message: "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed."},
	protocol.InvalidClient:          {code: 4, message: "Client authentication failed"},
	protocol.InvalidScope:           {code: 5, message: "The requested scope is invalid, unknown, or malformed"},
	protocol.InvalidTarget:          {code: 5, message: "The requested scope is invalid, unknown, or malformed"},
	protocol.UnauthorizedClient:     {code: 9, message: "The resource owner or authorization server denied the request."},
	protocol.InvalidGrant:           {code: 10},
	protocol.RateLimited:            {code: 429},
	protocol.TemporarilyUnavailable: {code: 503},
	"":                              {code: 7, message: "The authorization server encountered an unexpected condition which prevented it from fulfilling the request."},
}
