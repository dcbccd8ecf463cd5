package profiles

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/protocol"
)

// atol is ATOL Online's getToken, protocol v4 (seed 000): the integrator's login and pass (its
// client id and secret) for a client token, as JSON, a form, or GET query parameters as ATOL
// also accepts, answered {"error","token","timestamp"}. Asking again while a token is valid
// answers it (the client's reuse, at most as many valid tokens as live replicas) or a new one.
var atol = Profile{
	Name: "atol",
	Seed: "ATOL Online v4 getToken (seed 000)",
	Routes: []Route{{
		Name: "token", Path: "/possystem/v4/getToken", Methods: []string{"POST", "GET"},
		Request: func(f Fields) (*grants.Request, error) {
			login, pass := f.take("login"), f.take("pass")
			if login == "" || pass == "" {
				return nil, protocol.Errorf(protocol.InvalidRequest, "login and pass are required")
			}
			return &grants.Request{GrantType: protocol.GrantClientCredentials, ClientID: login, ClientSecret: pass,
				AuthMethod: protocol.AuthSecretPost, Params: Fields{}}, nil
		},
		Success: func(t *grants.Token, _ time.Time) any {
			// The token's own issue time: a token answered again shows when it was first given
			// out, from which its 24 hours run.
			return atolAnswer{Token: &t.AccessToken, Timestamp: atolTime(t.IssuedAt)}
		},
		Failure: func(e *protocol.Error, now time.Time) (int, any) {
			a := atolErrors.find(e)
			return a.status, atolAnswer{Timestamp: atolTime(now),
				Error: &atolError{ErrorID: errorID(), Code: a.code, Text: a.message, Type: "system"}}
		},
	}},
}

type atolAnswer struct {
	Error     *atolError `json:"error"`
	Token     *string    `json:"token"`
	Timestamp string     `json:"timestamp"`
}

type atolError struct {
	ErrorID string `json:"error_id"`
	Code    int    `json:"code"`
	Text    string `json:"text"`
	Type    string `json:"type"`
}

// moscow is ATOL Online's time zone: its timestamps are Moscow time (UTC+3 all year).
var moscow = time.FixedZone("MSK", 3*60*60)

// atolTime is ATOL's "dd.mm.yyyy HH:MM:SS", e.g. "30.11.2017 17:58:53".
func atolTime(t time.Time) string { return t.In(moscow).Format("02.01.2006 15:04:05") }

// errorID is a random UUID (RFC 9562 version 4) naming one error, as ATOL's error_id does.
func errorID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// atolErrors are ATOL Online's service error codes (protocol section "Ошибки сервиса"): 12 for
// a wrong login or password, 13 for a request that fails validation, 14 for an account that
// may not have a token. ATOL has no code for a quota or for a store outage: those are 0, its
// "unknown error", told apart by the HTTP status (429 with Retry-After, 503).
var atolErrors = table[int]{
	protocol.InvalidRequest:         {code: 13},
	protocol.UnsupportedGrantType:   {code: 13},
	protocol.InvalidScope:           {code: 13},
	protocol.InvalidTarget:          {code: 13},
	protocol.InvalidClient:          {code: 12, message: "Неверный логин или пароль"},
	protocol.UnauthorizedClient:     {code: 14, message: "Пользователю не разрешено получать токен"},
	protocol.RateLimited:            {code: 0},
	protocol.TemporarilyUnavailable: {code: 0, message: "Сервис временно недоступен, повторите запрос позже"},
	"":                              {code: 0, message: "Неизвестная ошибка"},
}
