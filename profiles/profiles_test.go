package profiles_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/profiles"
	"github.com/tokensmith/tokensmith/protocol"
)

// route finds a profile's route through Endpoints, as the server does.
func route(t *testing.T, profile, name string) profiles.Route {
	t.Helper()
	eps, err := profiles.Endpoints(map[string]map[string]string{profile: nil})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range eps {
		if e.Route.Name == name {
			return e.Route
		}
	}
	t.Fatalf("profile %s has no route %s", profile, name)
	return profiles.Route{}
}

// marshal is v's JSON, as the server writes it.
func marshal(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// requestCase is one set of seed API fields and the token request it must become, or the
// refusal it must meet.
type requestCase struct {
	name       string
	fields     profiles.Fields
	want       *grants.Request
	code, desc string
}

func checkRequests(t *testing.T, r profiles.Route, tests []requestCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Request(tt.fields)
			if tt.code != "" {
				var pe *protocol.Error
				if got != nil || !errors.As(err, &pe) || pe.Code != tt.code || pe.Description != tt.desc {
					t.Fatalf("got %+v, %v; want refusal %s: %s", got, err, tt.code, tt.desc)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// failureCase is one protocol error and the seed API's answer to it.
type failureCase struct {
	err        *protocol.Error
	wantStatus int
	wantBody   string
}

func checkFailures(t *testing.T, r profiles.Route, now time.Time, tests []failureCase, normalize func(string) string) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.err.Code, func(t *testing.T) {
			t.Parallel()
			status, body := r.Failure(tt.err, now)
			got := marshal(t, body)
			if normalize != nil {
				got = normalize(got)
			}
			if status != tt.wantStatus || got != tt.wantBody {
				t.Errorf("got %d %s\nwant %d %s", status, got, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestEndpointsDefaults(t *testing.T) {
	t.Parallel()
	type ep struct{ profile, seed, route, path, methods string }
	tests := []struct {
		name    string
		enabled map[string]map[string]string
		want    []ep
	}{
		{name: "none", enabled: nil},
		{name: "none, empty map", enabled: map[string]map[string]string{}},
		{name: "atol", enabled: map[string]map[string]string{"atol": nil},
			want: []ep{{"atol", "ATOL Online v4 getToken (seed 000)", "token", "/possystem/v4/getToken", "POST GET"}}},
		{name: "rahmet", enabled: map[string]map[string]string{"rahmet": {}},
			want: []ep{{"rahmet", "Rahmet Pay /auth/token (seed 002)", "token", "/auth/token", "POST"}}},
		{name: "tokens-make", enabled: map[string]map[string]string{"tokens-make": {"make": ""}},
			want: []ep{
				{"tokens-make", "tokens.make / tokens.refresh (seed 001)", "make", "/tokens.make", "POST"},
				{"tokens-make", "tokens.make / tokens.refresh (seed 001)", "refresh", "/tokens.refresh", "POST"},
			}},
		{name: "all, by profile and route", enabled: map[string]map[string]string{"tokens-make": nil, "rahmet": nil, "atol": nil},
			want: []ep{
				{"atol", "ATOL Online v4 getToken (seed 000)", "token", "/possystem/v4/getToken", "POST GET"},
				{"rahmet", "Rahmet Pay /auth/token (seed 002)", "token", "/auth/token", "POST"},
				{"tokens-make", "tokens.make / tokens.refresh (seed 001)", "make", "/tokens.make", "POST"},
				{"tokens-make", "tokens.make / tokens.refresh (seed 001)", "refresh", "/tokens.refresh", "POST"},
			}},
		{name: "configured paths", enabled: map[string]map[string]string{
			"rahmet":      {"token": "/v2/auth/token"},
			"tokens-make": {"refresh": "/api/tokens.refresh"},
		}, want: []ep{
			{"rahmet", "Rahmet Pay /auth/token (seed 002)", "token", "/v2/auth/token", "POST"},
			{"tokens-make", "tokens.make / tokens.refresh (seed 001)", "make", "/tokens.make", "POST"},
			{"tokens-make", "tokens.make / tokens.refresh (seed 001)", "refresh", "/api/tokens.refresh", "POST"},
		}},
		{name: "root and longest path", enabled: map[string]map[string]string{
			"tokens-make": {"make": "/", "refresh": "/" + strings.Repeat("r", 199)},
		}, want: []ep{
			{"tokens-make", "tokens.make / tokens.refresh (seed 001)", "make", "/", "POST"},
			{"tokens-make", "tokens.make / tokens.refresh (seed 001)", "refresh", "/" + strings.Repeat("r", 199), "POST"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eps, err := profiles.Endpoints(tt.enabled)
			if err != nil {
				t.Fatal(err)
			}
			var got []ep
			for _, e := range eps {
				got = append(got, ep{e.Profile, e.Seed, e.Route.Name, e.Path, strings.Join(e.Route.HTTPMethods(), " ")})
				if e.Route.Request == nil || e.Route.Success == nil || e.Route.Failure == nil {
					t.Errorf("%s.%s: a route needs Request, Success and Failure", e.Profile, e.Route.Name)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestEndpointsRefusals(t *testing.T) {
	t.Parallel()
	const onlyPrintable = " may contain only printable ASCII without spaces, ':', '*', '?', '#' or '%'"
	tests := []struct {
		name    string
		enabled map[string]map[string]string
		want    string
	}{
		{name: "unknown profile", enabled: map[string]map[string]string{"stripe": nil},
			want: `unknown profile "stripe" (known: atol, rahmet, tokens-make)`},
		{name: "unknown route", enabled: map[string]map[string]string{"atol": {"refresh": "/x"}},
			want: `atol has no route "refresh" (routes: token)`},
		{name: "relative path", enabled: map[string]map[string]string{"atol": {"token": "getToken"}},
			want: `atol.paths.token: "getToken" must be an absolute path of at most 200 bytes`},
		{name: "path too long", enabled: map[string]map[string]string{"atol": {"token": "/" + strings.Repeat("a", 200)}},
			want: `atol.paths.token: "/` + strings.Repeat("a", 200) + `" must be an absolute path of at most 200 bytes`},
		{name: "space", enabled: map[string]map[string]string{"rahmet": {"token": "/a b"}}, want: `rahmet.paths.token: "/a b"` + onlyPrintable},
		{name: "router parameter", enabled: map[string]map[string]string{"rahmet": {"token": "/:id"}}, want: `rahmet.paths.token: "/:id"` + onlyPrintable},
		{name: "wildcard", enabled: map[string]map[string]string{"rahmet": {"token": "/a/*"}}, want: `rahmet.paths.token: "/a/*"` + onlyPrintable},
		{name: "query", enabled: map[string]map[string]string{"rahmet": {"token": "/a?b"}}, want: `rahmet.paths.token: "/a?b"` + onlyPrintable},
		{name: "fragment", enabled: map[string]map[string]string{"rahmet": {"token": "/a#b"}}, want: `rahmet.paths.token: "/a#b"` + onlyPrintable},
		{name: "escape", enabled: map[string]map[string]string{"rahmet": {"token": "/a%20b"}}, want: `rahmet.paths.token: "/a%20b"` + onlyPrintable},
		{name: "non-ASCII", enabled: map[string]map[string]string{"rahmet": {"token": "/токен"}}, want: `rahmet.paths.token: "/токен"` + onlyPrintable},
		{name: "DEL", enabled: map[string]map[string]string{"rahmet": {"token": "/a\x7f"}}, want: `rahmet.paths.token: "/a\x7f"` + onlyPrintable},
		{name: "two profiles, one path", enabled: map[string]map[string]string{"rahmet": {"token": "/tokens.make"}, "tokens-make": nil},
			want: "tokens-make.paths.make: /tokens.make is already served by rahmet.token"},
		{name: "two routes, one path", enabled: map[string]map[string]string{"tokens-make": {"make": "/t", "refresh": "/t"}},
			want: "tokens-make.paths.refresh: /t is already served by tokens-make.make"},
		{name: "every error, sorted", enabled: map[string]map[string]string{
			"zeta": nil, "atol": {"token": "x", "extra": "/y"}, "rahmet": {"token": "/possystem/v4/getToken"},
		}, want: `atol has no route "extra" (routes: token); ` +
			`atol.paths.token: "x" must be an absolute path of at most 200 bytes; ` +
			`unknown profile "zeta" (known: atol, rahmet, tokens-make)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eps, err := profiles.Endpoints(tt.enabled)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v\nwant %s", err, tt.want)
			}
			if eps != nil {
				t.Errorf("endpoints with an error: got %v, want none", eps)
			}
		})
	}
}
