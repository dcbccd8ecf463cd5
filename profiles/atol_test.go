package profiles_test

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/profiles"
	"github.com/tokensmith/tokensmith/protocol"
)

func TestAtolRequest(t *testing.T) {
	t.Parallel()
	checkRequests(t, route(t, "atol", "token"), []requestCase{
		{name: "login and pass", fields: profiles.Fields{"login": "shop-1", "pass": "secret"},
			want: &grants.Request{GrantType: protocol.GrantClientCredentials, ClientID: "shop-1", ClientSecret: "secret",
				AuthMethod: protocol.AuthSecretPost, Params: map[string]string{}}},
		// getToken has no other parameters: nothing else reaches the grant.
		{name: "other fields dropped", fields: profiles.Fields{"login": "shop-1", "pass": "secret", "scope": "admin", "grant_type": "password"},
			want: &grants.Request{GrantType: protocol.GrantClientCredentials, ClientID: "shop-1", ClientSecret: "secret",
				AuthMethod: protocol.AuthSecretPost, Params: map[string]string{}}},
		{name: "no login", fields: profiles.Fields{"pass": "secret"}, code: protocol.InvalidRequest, desc: "login and pass are required"},
		{name: "no pass", fields: profiles.Fields{"login": "shop-1"}, code: protocol.InvalidRequest, desc: "login and pass are required"},
		{name: "nothing", fields: profiles.Fields{}, code: protocol.InvalidRequest, desc: "login and pass are required"},
	})
}

func TestAtolSuccess(t *testing.T) {
	t.Parallel()
	r := route(t, "atol", "token")
	// The protocol's example time, 30.11.2017 17:58:53 Moscow time (UTC+3).
	issued := time.Date(2017, 11, 30, 14, 58, 53, 0, time.UTC)
	tests := []struct {
		name string
		tok  grants.Token
		now  time.Time
		want string
	}{
		{name: "new token", tok: grants.Token{AccessToken: "tok", IssuedAt: issued, ExpiresAt: issued.Add(24 * time.Hour)}, now: issued,
			want: `{"error":null,"token":"tok","timestamp":"30.11.2017 17:58:53"}`},
		// A token answered again shows when it was first given out: its 24 hours run from then.
		{name: "reused ten hours later", tok: grants.Token{AccessToken: "tok", IssuedAt: issued, ExpiresAt: issued.Add(24 * time.Hour)}, now: issued.Add(10 * time.Hour),
			want: `{"error":null,"token":"tok","timestamp":"30.11.2017 17:58:53"}`},
		{name: "issue time in another zone", tok: grants.Token{AccessToken: "tok", IssuedAt: issued.In(time.FixedZone("X", -5*3600))}, now: issued,
			want: `{"error":null,"token":"tok","timestamp":"30.11.2017 17:58:53"}`},
		{name: "across midnight in Moscow", tok: grants.Token{AccessToken: "tok", IssuedAt: time.Date(2017, 12, 31, 22, 0, 0, 0, time.UTC)}, now: issued,
			want: `{"error":null,"token":"tok","timestamp":"01.01.2018 01:00:00"}`},
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

// uuidV4 is an RFC 9562 version 4 UUID, as ATOL's error_id.
var uuidV4 = regexp.MustCompile(`"error_id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"`)

// TestAtolFailure: ATOL's service error codes (12 login or password, 13 validation, 14 not
// allowed, 0 unknown), timestamped now in Moscow time, each with its own error_id.
func TestAtolFailure(t *testing.T) {
	t.Parallel()
	now := time.Date(2017, 11, 30, 14, 58, 53, 0, time.UTC)
	env := func(code, text string) string {
		return `{"error":{"error_id":"*","code":` + code + `,"text":"` + text + `","type":"system"},"token":null,"timestamp":"30.11.2017 17:58:53"}`
	}
	normalize := func(s string) string {
		if !uuidV4.MatchString(s) {
			t.Errorf("no version 4 UUID error_id in %s", s)
		}
		return uuidV4.ReplaceAllString(s, `"error_id":"*"`)
	}
	checkFailures(t, route(t, "atol", "token"), now, []failureCase{
		{protocol.Errorf(protocol.InvalidRequest, "login and pass are required"), http.StatusBadRequest, env("13", "login and pass are required")},
		{protocol.Errorf(protocol.UnsupportedGrantType, "grant"), http.StatusBadRequest, env("13", "grant")},
		{protocol.Errorf(protocol.InvalidScope, "scope"), http.StatusBadRequest, env("13", "scope")},
		{protocol.Errorf(protocol.InvalidTarget, "audience"), http.StatusBadRequest, env("13", "audience")},
		{protocol.Errorf(protocol.InvalidClient, "unknown client"), http.StatusUnauthorized, env("12", "Неверный логин или пароль")},
		{protocol.Errorf(protocol.UnauthorizedClient, "grant not allowed"), http.StatusBadRequest, env("14", "Пользователю не разрешено получать токен")},
		{protocol.Errorf(protocol.RateLimited, "daily limit of 100 reached"), http.StatusTooManyRequests, env("0", "daily limit of 100 reached")},
		{protocol.Unavailable(nil), http.StatusServiceUnavailable, env("0", "Сервис временно недоступен, повторите запрос позже")},
		{protocol.Errorf(protocol.ServerError, "internal error"), http.StatusInternalServerError, env("0", "Неизвестная ошибка")},
		{protocol.Errorf(protocol.InvalidGrant, "x"), http.StatusBadRequest, env("0", "Неизвестная ошибка")},
		{&protocol.Error{Code: protocol.InvalidRequest}, http.StatusBadRequest, env("13", "invalid_request")},
	}, normalize)
}

func TestAtolErrorIDsDiffer(t *testing.T) {
	t.Parallel()
	r := route(t, "atol", "token")
	seen := map[string]bool{}
	for range 100 {
		_, body := r.Failure(protocol.Errorf(protocol.InvalidClient, "x"), time.Now())
		id := uuidV4.FindString(marshal(t, body))
		if id == "" || seen[id] {
			t.Fatalf("error_id %q: want a new UUID for every error", id)
		}
		seen[id] = true
	}
}
