package registry_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

func TestCreateClientDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v, err := e.reg.CreateClient(context.Background(), registry.ClientInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.ClientID) != 12 {
		t.Errorf("generated client_id: got %q, want 12 characters", v.ClientID)
	}
	if v.ClientSecret == "" {
		t.Error("client_secret: got none, want the new secret shown once")
	}
	checkFields(t, v, map[string]any{
		"name": "", "grant_types": []string{protocol.GrantClientCredentials}, "scopes": []string{}, "audience": []string{},
		"access_token_ttl": nil, "refresh_token_ttl": nil, "refresh_grace": nil, "reuse_min_remaining": nil,
		"reuse": false, "daily_limit": 0, "hourly_limit": 0, "daily_limit_shadow": false, "hourly_limit_shadow": false,
		"token_endpoint_auth_method": nil, "owner": nil, "resource_server": false, "previous_secret_valid_until": nil,
		"access_token_signing_alg": "RS256", "created_at": e.clock(), "updated_at": e.clock(),
	})
	stored, err := e.store.GetClient(context.Background(), v.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if !secret.Matches(v.ClientSecret, stored.SecretHash) {
		t.Error("the secret answered does not match the stored hash")
	}
	got, err := e.reg.GetClient(context.Background(), v.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientSecret != "" {
		t.Errorf("GetClient client_secret: got %q, want it shown only at creation", got.ClientSecret)
	}
}

// TestCreateClientFields sends one POST /admin/clients body per rule of every field and checks
// the refusal (code and the description naming the field) or the client it makes.
func TestCreateClientFields(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name string
		body string
		// code and desc, when code is set, are the refusal expected.
		code, desc string
		// want are fields of the created client's JSON; nil: left out.
		want map[string]any
	}{
		// client_id: RFC 6749 VSCHAR, 1 to 128 characters.
		{name: "client_id VSCHAR", body: `{"client_id":"svc:a/b%20 ~x"}`, want: map[string]any{"client_id": "svc:a/b%20 ~x"}},
		{name: "client_id 128", body: `{"client_id":"` + long(128) + `"}`, want: map[string]any{"client_id": long(128)}},
		{name: "client_id 129", body: `{"client_id":"` + long(129) + `"}`, code: protocol.InvalidRequest, desc: "client_id must be 1 to 128 characters"},
		{name: "client_id empty", body: `{"client_id":""}`, code: protocol.InvalidRequest, desc: "client_id must be 1 to 128 characters"},
		{name: "client_id non-ASCII", body: `{"client_id":"kéy"}`, code: protocol.InvalidRequest, desc: "client_id may contain only printable ASCII"},
		{name: "client_id tab", body: `{"client_id":"a\tb"}`, code: protocol.InvalidRequest, desc: "client_id may contain only printable ASCII"},
		{name: "client_id DEL", body: `{"client_id":"a\u007fb"}`, code: protocol.InvalidRequest, desc: "client_id may contain only printable ASCII"},

		// name: at most 200 printable characters (runes, not bytes).
		{name: "name", body: `{"name":"Billing service"}`, want: map[string]any{"name": "Billing service"}},
		{name: "name 200 runes", body: `{"name":"` + strings.Repeat("ж", 200) + `"}`, want: map[string]any{"name": strings.Repeat("ж", 200)}},
		{name: "name 201 runes", body: `{"name":"` + strings.Repeat("ж", 201) + `"}`, code: protocol.InvalidRequest, desc: "name must be at most 200 printable characters"},
		{name: "name escape sequence", body: `{"name":"a\u001b[31m"}`, code: protocol.InvalidRequest, desc: "name must be at most 200 printable characters"},
		{name: "name newline", body: `{"name":"a\nb"}`, code: protocol.InvalidRequest, desc: "name must be at most 200 printable characters"},

		// grant_types: known grants, not empty, repeats dropped.
		{name: "grant_types all", body: `{"grant_types":["client_credentials","password","refresh_token","urn:ietf:params:oauth:grant-type:token-exchange"]}`,
			want: map[string]any{"grant_types": []string{"client_credentials", "password", "refresh_token", protocol.GrantTokenExchange}}},
		{name: "grant_types repeats", body: `{"grant_types":["password","password","refresh_token"]}`, want: map[string]any{"grant_types": []string{"password", "refresh_token"}}},
		{name: "grant_types unknown", body: `{"grant_types":["authorization_code"]}`, code: protocol.InvalidRequest, desc: `grant_types: "authorization_code" is not one of client_credentials, password, refresh_token, `},
		{name: "grant_types empty", body: `{"grant_types":[]}`, code: protocol.InvalidRequest, desc: "grant_types must not be empty"},
		{name: "grant_types blank", body: `{"grant_types":[" "]}`, code: protocol.InvalidRequest, desc: "grant_types: values must be non-empty and at most 200 bytes"},
		{name: "grant_types too long", body: `{"grant_types":["` + long(201) + `"]}`, code: protocol.InvalidRequest, desc: "grant_types: values must be non-empty and at most 200 bytes"},

		// scopes: RFC 6749 §3.3 characters, repeats dropped.
		{name: "scopes", body: `{"scopes":["read","write","read","a:b/c!"]}`, want: map[string]any{"scopes": []string{"read", "write", "a:b/c!"}}},
		{name: "scopes empty", body: `{"scopes":[]}`, want: map[string]any{"scopes": []string{}}},
		{name: "scopes space", body: `{"scopes":["a b"]}`, code: protocol.InvalidRequest, desc: `scopes: "a b" has characters RFC 6749 §3.3 does not allow`},
		{name: "scopes quote", body: `{"scopes":["a\"b"]}`, code: protocol.InvalidRequest, desc: "scopes: "},
		{name: "scopes backslash", body: `{"scopes":["a\\b"]}`, code: protocol.InvalidRequest, desc: "scopes: "},
		{name: "scopes non-ASCII", body: `{"scopes":["é"]}`, code: protocol.InvalidRequest, desc: "scopes: "},
		{name: "scopes empty value", body: `{"scopes":[""]}`, code: protocol.InvalidRequest, desc: "scopes: values must be non-empty and at most 200 bytes"},
		{name: "scopes 201 bytes", body: `{"scopes":["` + long(201) + `"]}`, code: protocol.InvalidRequest, desc: "scopes: values must be non-empty and at most 200 bytes"},

		// audience: a string or an array, printable, no spaces, repeats dropped.
		{name: "audience string", body: `{"audience":"https://api.example"}`, want: map[string]any{"audience": []string{"https://api.example"}}},
		{name: "audience array", body: `{"audience":["a","b","a"]}`, want: map[string]any{"audience": []string{"a", "b"}}},
		{name: "audience empty array", body: `{"audience":[]}`, want: map[string]any{"audience": []string{}}},
		{name: "audience space", body: `{"audience":"a b"}`, code: protocol.InvalidRequest, desc: `audience: "a b" must be printable, without spaces`},
		{name: "audience control", body: `{"audience":["a\u0007"]}`, code: protocol.InvalidRequest, desc: "audience: "},
		{name: "audience empty string", body: `{"audience":""}`, code: protocol.InvalidRequest, desc: "audience: values must be non-empty"},

		// Durations: Go or whole days; lifetimes at least 1s, the others at least 0.
		{name: "access_token_ttl", body: `{"access_token_ttl":"90m"}`, want: map[string]any{"access_token_ttl": "1h30m"}},
		{name: "access_token_ttl 1s", body: `{"access_token_ttl":"1s"}`, want: map[string]any{"access_token_ttl": "1s"}},
		{name: "access_token_ttl empty", body: `{"access_token_ttl":""}`, want: map[string]any{"access_token_ttl": nil}},
		{name: "access_token_ttl under 1s", body: `{"access_token_ttl":"999ms"}`, code: protocol.InvalidRequest, desc: "access_token_ttl must be at least 1s"},
		{name: "access_token_ttl zero", body: `{"access_token_ttl":"0s"}`, code: protocol.InvalidRequest, desc: "access_token_ttl must be at least 1s"},
		{name: "access_token_ttl negative", body: `{"access_token_ttl":"-1h"}`, code: protocol.InvalidRequest, desc: "access_token_ttl must be at least 1s"},
		{name: "access_token_ttl garbage", body: `{"access_token_ttl":"soon"}`, code: protocol.InvalidRequest, desc: `access_token_ttl: invalid duration "soon"`},
		{name: "access_token_ttl over max", body: `{"access_token_ttl":"36501d"}`, code: protocol.InvalidRequest, desc: "access_token_ttl: duration \"36501d\" is longer than"},
		{name: "refresh_token_ttl days", body: `{"refresh_token_ttl":"14d"}`, want: map[string]any{"refresh_token_ttl": "14d"}},
		{name: "refresh_token_ttl zero", body: `{"refresh_token_ttl":"0s"}`, code: protocol.InvalidRequest, desc: "refresh_token_ttl must be at least 1s"},
		{name: "refresh_token_ttl garbage", body: `{"refresh_token_ttl":"2w"}`, code: protocol.InvalidRequest, desc: "refresh_token_ttl: invalid duration"},
		{name: "refresh_grace", body: `{"refresh_grace":"30s"}`, want: map[string]any{"refresh_grace": "30s"}},
		// An explicit zero grace is a setting of its own, unlike the server default.
		{name: "refresh_grace zero", body: `{"refresh_grace":"0s"}`, want: map[string]any{"refresh_grace": "0s"}},
		{name: "refresh_grace empty", body: `{"refresh_grace":""}`, want: map[string]any{"refresh_grace": nil}},
		{name: "refresh_grace negative", body: `{"refresh_grace":"-1s"}`, code: protocol.InvalidRequest, desc: "refresh_grace must be at least 0s"},
		{name: "refresh_grace garbage", body: `{"refresh_grace":"x"}`, code: protocol.InvalidRequest, desc: "refresh_grace: invalid duration"},
		{name: "reuse_min_remaining", body: `{"reuse_min_remaining":"5m"}`, want: map[string]any{"reuse_min_remaining": "5m"}},
		{name: "reuse_min_remaining zero", body: `{"reuse_min_remaining":"0s"}`, want: map[string]any{"reuse_min_remaining": nil}},
		{name: "reuse_min_remaining negative", body: `{"reuse_min_remaining":"-5m"}`, code: protocol.InvalidRequest, desc: "reuse_min_remaining must be at least 0s"},
		{name: "reuse_min_remaining garbage", body: `{"reuse_min_remaining":"5 minutes"}`, code: protocol.InvalidRequest, desc: "reuse_min_remaining: invalid duration"},

		// Flags and limits.
		{name: "reuse", body: `{"reuse":true}`, want: map[string]any{"reuse": true}},
		{name: "limits", body: `{"daily_limit":100,"hourly_limit":10,"daily_limit_shadow":true,"hourly_limit_shadow":true}`,
			want: map[string]any{"daily_limit": 100, "hourly_limit": 10, "daily_limit_shadow": true, "hourly_limit_shadow": true}},
		{name: "daily_limit negative", body: `{"daily_limit":-1}`, code: protocol.InvalidRequest, desc: "daily_limit must not be negative (0 means no limit)"},
		{name: "hourly_limit negative", body: `{"hourly_limit":-1}`, code: protocol.InvalidRequest, desc: "hourly_limit must not be negative (0 means no limit)"},
		{name: "resource_server", body: `{"resource_server":true}`, want: map[string]any{"resource_server": true}},

		// token_endpoint_auth_method, and what a public client may have.
		{name: "auth basic", body: `{"token_endpoint_auth_method":"client_secret_basic"}`, want: map[string]any{"token_endpoint_auth_method": "client_secret_basic"}},
		{name: "auth post", body: `{"token_endpoint_auth_method":"client_secret_post"}`, want: map[string]any{"token_endpoint_auth_method": "client_secret_post"}},
		{name: "auth empty", body: `{"token_endpoint_auth_method":""}`, want: map[string]any{"token_endpoint_auth_method": nil}},
		{name: "auth none takes the public grants", body: `{"token_endpoint_auth_method":"none"}`,
			want: map[string]any{"token_endpoint_auth_method": "none", "grant_types": []string{"password", "refresh_token"}, "client_secret": nil}},
		{name: "auth none with password", body: `{"token_endpoint_auth_method":"none","grant_types":["password"]}`,
			want: map[string]any{"token_endpoint_auth_method": "none", "grant_types": []string{"password"}, "client_secret": nil}},
		{name: "auth none with client_credentials", body: `{"token_endpoint_auth_method":"none","grant_types":["password","client_credentials"]}`,
			code: protocol.InvalidRequest, desc: "grant_types: a public client (token_endpoint_auth_method none) may have only password and refresh_token, not client_credentials"},
		{name: "auth none with token exchange", body: `{"token_endpoint_auth_method":"none","grant_types":["urn:ietf:params:oauth:grant-type:token-exchange"]}`,
			code: protocol.InvalidRequest, desc: "a public client (token_endpoint_auth_method none) may have only"},
		{name: "auth unknown", body: `{"token_endpoint_auth_method":"client_secret_jwt"}`,
			code: protocol.InvalidRequest, desc: "token_endpoint_auth_method must be client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth, self_signed_tls_client_auth or none"},

		// Mutual TLS (RFC 8705): tls_client_auth names its certificate by exactly one name.
		{name: "tls_client_auth subject DN", body: `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN = orders, O=Example"}`,
			want: map[string]any{"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=orders,O=Example", "client_secret": nil}},
		{name: "tls_client_auth DNS SAN, bound", body: `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_dns":"orders.example.com","tls_client_certificate_bound_access_tokens":true}`,
			want: map[string]any{"tls_client_auth_san_dns": "orders.example.com", "tls_client_certificate_bound_access_tokens": true, "client_secret": nil}},
		{name: "tls_client_auth URI SAN", body: `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_uri":"spiffe://example.com/orders"}`,
			want: map[string]any{"tls_client_auth_san_uri": "spiffe://example.com/orders"}},
		{name: "tls_client_auth IP SAN", body: `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_ip":"10.0.0.1"}`,
			want: map[string]any{"tls_client_auth_san_ip": "10.0.0.1"}},
		{name: "tls_client_auth email SAN", body: `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_email":"ops@example.com"}`,
			want: map[string]any{"tls_client_auth_san_email": "ops@example.com"}},
		{name: "tls_client_auth without a name", body: `{"token_endpoint_auth_method":"tls_client_auth"}`,
			code: protocol.InvalidRequest, desc: "a client with token_endpoint_auth_method tls_client_auth needs exactly one of them"},
		{name: "tls_client_auth with two names", body: `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=a","tls_client_auth_san_dns":"a.example.com"}`,
			code: protocol.InvalidRequest, desc: "tls_client_auth_subject_dn and tls_client_auth_san_dns: a tls_client_auth client's certificate is matched by exactly one of them"},
		{name: "subject DN not a DN", body: `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"orders"}`,
			code: protocol.InvalidRequest, desc: "tls_client_auth_subject_dn: \"orders\" is not a distinguished name"},
		{name: "IP SAN not an address", body: `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_ip":"10.0.0"}`,
			code: protocol.InvalidRequest, desc: "tls_client_auth_san_ip: \"10.0.0\" is not an IP address"},
		{name: "URI SAN not absolute", body: `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_uri":"orders"}`,
			code: protocol.InvalidRequest, desc: "tls_client_auth_san_uri: \"orders\" is not an absolute URI"},
		{name: "certificate name of a secret client", body: `{"tls_client_auth_san_dns":"orders.example.com"}`,
			code: protocol.InvalidRequest, desc: "tls_client_auth_san_dns: only a client with token_endpoint_auth_method tls_client_auth has one"},
		{name: "self-signed without keys", body: `{"token_endpoint_auth_method":"self_signed_tls_client_auth"}`,
			code: protocol.InvalidRequest, desc: "jwks or jwks_uri: a client with token_endpoint_auth_method self_signed_tls_client_auth needs the public key of its certificate"},
		{name: "self-signed with a bad jwks", body: `{"token_endpoint_auth_method":"self_signed_tls_client_auth","jwks":{"keys":[]}}`,
			code: protocol.InvalidRequest, desc: "jwks: the set holds no keys"},
		{name: "self-signed with a name", body: `{"token_endpoint_auth_method":"self_signed_tls_client_auth","jwks_uri":"https://keys.example.com/","tls_client_auth_subject_dn":"CN=a"}`,
			code: protocol.InvalidRequest, desc: "tls_client_auth_subject_dn: only a client with token_endpoint_auth_method tls_client_auth has one"},
		{name: "self-signed with jwks_uri", body: `{"token_endpoint_auth_method":"self_signed_tls_client_auth","jwks_uri":"https://keys.example.com/"}`,
			want: map[string]any{"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks_uri": "https://keys.example.com/", "client_secret": nil}},
		{name: "certificate-bound tokens for a secret client", body: `{"tls_client_certificate_bound_access_tokens":true}`,
			want: map[string]any{"tls_client_certificate_bound_access_tokens": true}},
		{name: "private_key_jwt without keys", body: `{"token_endpoint_auth_method":"private_key_jwt"}`,
			code: protocol.InvalidRequest, desc: "jwks, jwks_uri or federated_identities: a client with token_endpoint_auth_method private_key_jwt needs its public keys or a federated identity"},
		{name: "jwks_uri not https", body: `{"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"http://keys.example.com/"}`,
			code: protocol.InvalidRequest, desc: "jwks_uri:"},

		// owner must name a user.
		{name: "owner unknown", body: `{"owner":"nobody"}`, code: protocol.InvalidRequest, desc: `owner: no user with id "nobody"`},
		{name: "owner empty", body: `{"owner":""}`, want: map[string]any{"owner": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			v, err := e.reg.CreateClient(context.Background(), clientInput(t, tt.body))
			if tt.code != "" {
				wantError(t, err, tt.code, tt.desc)
				if all, _ := e.reg.ListClients(context.Background()); len(all) != 0 {
					t.Errorf("clients after a refusal: got %d, want 0", len(all))
				}
				if ev := e.takeEvents(); len(ev) != 0 {
					t.Errorf("audit events after a refusal: got %v, want none", ev)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkFields(t, v, tt.want)
			got, err := e.reg.GetClient(context.Background(), v.ClientID)
			if err != nil {
				t.Fatal(err)
			}
			// What is stored reads back as what was answered (the secret apart).
			v.ClientSecret = ""
			if !jsonEqual(t, got, v) {
				t.Errorf("stored client:\n got %+v\nwant %+v", got, v)
			}
		})
	}
}

func TestCreateClientOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	owner := e.user(t, "u1")
	v, err := e.reg.CreateClient(ctx, clientInput(t, `{"owner":"`+owner+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if v.Owner != owner {
		t.Errorf("owner: got %q, want %q", v.Owner, owner)
	}
}

func TestCreateClientPublicHasNoSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v, err := e.reg.CreateClient(context.Background(), clientInput(t, `{"token_endpoint_auth_method":"none"}`))
	if err != nil {
		t.Fatal(err)
	}
	if v.ClientSecret != "" {
		t.Errorf("client_secret: got %q, want none for a public client", v.ClientSecret)
	}
	stored, err := e.store.GetClient(context.Background(), v.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.SecretHash) != 0 {
		t.Errorf("stored secret hash: got %x, want none", stored.SecretHash)
	}
}

func TestCreateClientDuplicateID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"billing"}`)); err != nil {
		t.Fatal(err)
	}
	_, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"billing"}`))
	wantError(t, err, protocol.AlreadyExists, "client billing already exists")
}

// TestClientInputJSON: the admin API's client body has exactly these fields; anything else is
// refused by its strict decoder, and audience is a string or an array of strings.
func TestClientInputJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{name: "every field", body: `{"client_id":"a","name":"n","grant_types":["password"],"scopes":["s"],"audience":"x",
			"access_token_ttl":"1h","refresh_token_ttl":"1d","refresh_grace":"1s","reuse":true,"reuse_min_remaining":"1m",
			"daily_limit":1,"hourly_limit":1,"daily_limit_shadow":true,"hourly_limit_shadow":true,
			"token_endpoint_auth_method":"none","owner":"u","resource_server":true}`},
		{name: "misspelled field", body: `{"acess_token_ttl":"1h"}`, wantErr: `unknown field "acess_token_ttl"`},
		{name: "secret is not an input", body: `{"client_secret":"chosen"}`, wantErr: `unknown field "client_secret"`},
		{name: "view-only field", body: `{"created_at":"2020-01-01T00:00:00Z"}`, wantErr: `unknown field "created_at"`},
		{name: "audience number", body: `{"audience":42}`, wantErr: "audience must be a string or an array of strings"},
		{name: "audience array of numbers", body: `{"audience":[1]}`, wantErr: "audience must be a string or an array of strings"},
		{name: "duration as number", body: `{"access_token_ttl":3600}`, wantErr: "cannot unmarshal number"},
		{name: "limit as string", body: `{"daily_limit":"100"}`, wantErr: "cannot unmarshal string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in registry.ClientInput
			err := decodeStrict(tt.body, &in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestUpdateClientEachField changes one field at a time with PATCH semantics: the field named
// changes, every other field stays as it was.
func TestUpdateClientEachField(t *testing.T) {
	t.Parallel()
	const full = `{"client_id":"svc","name":"Old","grant_types":["client_credentials","refresh_token"],"scopes":["a","b"],
		"audience":["x"],"access_token_ttl":"1h","refresh_token_ttl":"14d","refresh_grace":"10s","reuse":true,
		"reuse_min_remaining":"5m","daily_limit":100,"hourly_limit":10,"daily_limit_shadow":true,"hourly_limit_shadow":true,
		"token_endpoint_auth_method":"client_secret_post","resource_server":true}`
	tests := []struct {
		name  string
		patch string
		// want are the fields that change; owner "$user" is the id of a user the test makes.
		want map[string]any
	}{
		{name: "nothing", patch: `{}`, want: map[string]any{}},
		{name: "same client_id", patch: `{"client_id":"svc"}`, want: map[string]any{}},
		{name: "name", patch: `{"name":"New"}`, want: map[string]any{"name": "New"}},
		{name: "name cleared", patch: `{"name":""}`, want: map[string]any{"name": ""}},
		{name: "grant_types", patch: `{"grant_types":["password"]}`, want: map[string]any{"grant_types": []string{"password"}}},
		{name: "scopes", patch: `{"scopes":["c"]}`, want: map[string]any{"scopes": []string{"c"}}},
		{name: "scopes cleared", patch: `{"scopes":[]}`, want: map[string]any{"scopes": []string{}}},
		{name: "audience string", patch: `{"audience":"y"}`, want: map[string]any{"audience": []string{"y"}}},
		{name: "audience array", patch: `{"audience":["y","z"]}`, want: map[string]any{"audience": []string{"y", "z"}}},
		{name: "access_token_ttl", patch: `{"access_token_ttl":"2h"}`, want: map[string]any{"access_token_ttl": "2h"}},
		{name: "access_token_ttl to default", patch: `{"access_token_ttl":""}`, want: map[string]any{"access_token_ttl": nil}},
		{name: "refresh_token_ttl", patch: `{"refresh_token_ttl":"30d"}`, want: map[string]any{"refresh_token_ttl": "30d"}},
		{name: "refresh_token_ttl to default", patch: `{"refresh_token_ttl":""}`, want: map[string]any{"refresh_token_ttl": nil}},
		{name: "refresh_grace", patch: `{"refresh_grace":"1m"}`, want: map[string]any{"refresh_grace": "1m"}},
		{name: "refresh_grace zero", patch: `{"refresh_grace":"0s"}`, want: map[string]any{"refresh_grace": "0s"}},
		{name: "refresh_grace to default", patch: `{"refresh_grace":""}`, want: map[string]any{"refresh_grace": nil}},
		{name: "reuse off", patch: `{"reuse":false}`, want: map[string]any{"reuse": false}},
		{name: "reuse_min_remaining", patch: `{"reuse_min_remaining":"30s"}`, want: map[string]any{"reuse_min_remaining": "30s"}},
		{name: "reuse_min_remaining to default", patch: `{"reuse_min_remaining":""}`, want: map[string]any{"reuse_min_remaining": nil}},
		{name: "daily_limit", patch: `{"daily_limit":0}`, want: map[string]any{"daily_limit": 0}},
		{name: "hourly_limit", patch: `{"hourly_limit":7}`, want: map[string]any{"hourly_limit": 7}},
		{name: "daily_limit_shadow", patch: `{"daily_limit_shadow":false}`, want: map[string]any{"daily_limit_shadow": false}},
		{name: "hourly_limit_shadow", patch: `{"hourly_limit_shadow":false}`, want: map[string]any{"hourly_limit_shadow": false}},
		{name: "token_endpoint_auth_method", patch: `{"token_endpoint_auth_method":"client_secret_basic"}`,
			want: map[string]any{"token_endpoint_auth_method": "client_secret_basic"}},
		{name: "token_endpoint_auth_method to default", patch: `{"token_endpoint_auth_method":""}`,
			want: map[string]any{"token_endpoint_auth_method": nil}},
		{name: "public with its grants", patch: `{"token_endpoint_auth_method":"none","grant_types":["password","refresh_token"]}`,
			want: map[string]any{"token_endpoint_auth_method": "none", "grant_types": []string{"password", "refresh_token"}}},
		{name: "owner", patch: `{"owner":"$user"}`, want: map[string]any{"owner": "$user"}},
		{name: "resource_server", patch: `{"resource_server":false}`, want: map[string]any{"resource_server": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			owner := e.user(t, "u1")
			created, err := e.reg.CreateClient(ctx, clientInput(t, full))
			if err != nil {
				t.Fatal(err)
			}
			e.takeChanges()
			e.takeEvents()
			e.advance(time.Minute)
			patch := strings.ReplaceAll(tt.patch, "$user", owner)
			v, err := e.reg.UpdateClient(ctx, "svc", clientInput(t, patch))
			if err != nil {
				t.Fatal(err)
			}
			want := jsonObject(t, created)
			delete(want, "client_secret")
			for k, w := range tt.want {
				if w == "$user" {
					w = owner
				}
				if w == nil {
					delete(want, k)
				} else {
					want[k] = jsonObject(t, map[string]any{"v": w})["v"]
				}
			}
			want["updated_at"] = e.clock().Format(time.RFC3339Nano)
			if got := jsonObject(t, v); !jsonEqual(t, got, want) {
				t.Errorf("after PATCH %s:\n got %v\nwant %v", patch, got, want)
			}
			stored, err := e.reg.GetClient(ctx, "svc")
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, stored, v) {
				t.Errorf("stored:\n got %+v\nwant %+v", stored, v)
			}
			if got, want := e.takeChanges(), []storage.Change{{Kind: storage.ChangeClient, ID: "svc"}}; !slices.Equal(got, want) {
				t.Errorf("announced: got %v, want %v", got, want)
			}
			ev := e.takeEvents()
			if len(ev) != 1 || ev[0].What != registry.ActionClientUpdate || ev[0].Target != "svc" || ev[0].Who != "admin" {
				t.Fatalf("audit: got %+v, want one client.update of svc by admin", ev)
			}
			// The trail keeps exactly the fields that changed, old and new; never updated_at.
			old, neu := jsonObject(t, created), jsonObject(t, v)
			wantBefore, wantAfter := map[string]any{}, map[string]any{}
			for k := range tt.want {
				ov, inOld := old[k]
				nv, inNew := neu[k]
				if inOld == inNew && jsonEqual(t, ov, nv) {
					continue
				}
				if inOld {
					wantBefore[k] = ov
				}
				if inNew {
					wantAfter[k] = nv
				}
			}
			if !jsonEqual(t, nilIfEmpty(ev[0].Before), nilIfEmpty(wantBefore)) || !jsonEqual(t, nilIfEmpty(ev[0].After), nilIfEmpty(wantAfter)) {
				t.Errorf("audit: got before %v after %v, want before %v after %v", ev[0].Before, ev[0].After, wantBefore, wantAfter)
			}
		})
	}
}

// TestUpdateClientRefusals: a refused PATCH changes nothing, announces nothing and records
// nothing.
func TestUpdateClientRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id, patch string
		code, desc      string
	}{
		{name: "client_id changed", id: "svc", patch: `{"client_id":"other"}`, code: protocol.InvalidRequest, desc: "client_id cannot be changed"},
		{name: "unknown client", id: "nope", patch: `{"name":"x"}`, code: protocol.NotFound, desc: "client nope not found"},
		{name: "owner unknown", id: "svc", patch: `{"owner":"ghost"}`, code: protocol.InvalidRequest, desc: `owner: no user with id "ghost"`},
		{name: "public keeps client_credentials", id: "svc", patch: `{"token_endpoint_auth_method":"none"}`,
			code: protocol.InvalidRequest, desc: "a public client (token_endpoint_auth_method none) may have only password and refresh_token, not client_credentials"},
		{name: "bad duration after good fields", id: "svc", patch: `{"name":"New","scopes":["z"],"access_token_ttl":"0s"}`,
			code: protocol.InvalidRequest, desc: "access_token_ttl must be at least 1s"},
		{name: "negative limit", id: "svc", patch: `{"hourly_limit":-5}`, code: protocol.InvalidRequest, desc: "hourly_limit must not be negative"},
		{name: "empty grant_types", id: "svc", patch: `{"grant_types":[]}`, code: protocol.InvalidRequest, desc: "grant_types must not be empty"},
		{name: "tls_client_auth without a name", id: "svc", patch: `{"token_endpoint_auth_method":"tls_client_auth"}`,
			code: protocol.InvalidRequest, desc: "a client with token_endpoint_auth_method tls_client_auth needs exactly one of them"},
		{name: "certificate name on a secret client", id: "svc", patch: `{"tls_client_auth_san_ip":"10.0.0.1"}`,
			code: protocol.InvalidRequest, desc: "tls_client_auth_san_ip: only a client with token_endpoint_auth_method tls_client_auth has one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			before, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"svc","name":"Old","scopes":["a"]}`))
			if err != nil {
				t.Fatal(err)
			}
			before.ClientSecret = ""
			e.takeEvents()
			_, err = e.reg.UpdateClient(ctx, tt.id, clientInput(t, tt.patch))
			wantError(t, err, tt.code, tt.desc)
			after, err := e.reg.GetClient(ctx, "svc")
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, after, before) {
				t.Errorf("after a refused PATCH:\n got %+v\nwant %+v", after, before)
			}
			if c := e.takeChanges(); len(c) != 0 {
				t.Errorf("announced: got %v, want nothing", c)
			}
			if ev := e.takeEvents(); len(ev) != 0 {
				t.Errorf("audit: got %v, want nothing", ev)
			}
		})
	}
}

// TestUpdateClientToPublicDropsSecrets: a client made public loses its secret and any previous
// one still in its grace, so neither authenticates.
func TestUpdateClientToPublicDropsSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"app","grant_types":["password"]}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.reg.RotateSecret(ctx, "app", time.Hour); err != nil {
		t.Fatal(err)
	}
	v, err := e.reg.UpdateClient(ctx, "app", clientInput(t, `{"token_endpoint_auth_method":"none"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !v.SecretGraceUntil.IsZero() {
		t.Errorf("previous_secret_valid_until: got %v, want none", v.SecretGraceUntil)
	}
	c, err := e.store.GetClient(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SecretHash) != 0 || len(c.PrevSecretHash) != 0 || !c.PrevSecretExpiresAt.IsZero() {
		t.Errorf("stored secrets: got %x, %x until %v; want none", c.SecretHash, c.PrevSecretHash, c.PrevSecretExpiresAt)
	}
	// A public client may not widen its grants to one that needs a secret.
	_, err = e.reg.UpdateClient(ctx, "app", clientInput(t, `{"grant_types":["client_credentials"]}`))
	wantError(t, err, protocol.InvalidRequest, "a public client (token_endpoint_auth_method none) may have only")
}

// TestUpdateClientToCertificate: a secret client moved to tls_client_auth loses its secrets;
// moving it back needs its certificate name removed in the same request, or the PATCH is
// refused naming the field.
func TestUpdateClientToCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"svc"}`)); err != nil {
		t.Fatal(err)
	}
	v, err := e.reg.UpdateClient(ctx, "svc", clientInput(t, `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_uri":"spiffe://example.com/svc"}`))
	if err != nil {
		t.Fatal(err)
	}
	if v.TLSClientAuthSANURI != "spiffe://example.com/svc" {
		t.Errorf("tls_client_auth_san_uri %q", v.TLSClientAuthSANURI)
	}
	if c, _ := e.store.GetClient(ctx, "svc"); len(c.SecretHash) != 0 {
		t.Error("a tls_client_auth client kept its secret")
	}
	_, err = e.reg.UpdateClient(ctx, "svc", clientInput(t, `{"token_endpoint_auth_method":"client_secret_basic"}`))
	wantError(t, err, protocol.InvalidRequest, "tls_client_auth_san_uri: only a client with token_endpoint_auth_method tls_client_auth has one")
	v, err = e.reg.UpdateClient(ctx, "svc", clientInput(t, `{"token_endpoint_auth_method":"client_secret_basic","tls_client_auth_san_uri":""}`))
	if err != nil || v.TLSClientAuthSANURI != "" || v.TokenEndpointAuthMethod != "client_secret_basic" {
		t.Fatalf("back to a secret: %+v %v", v, err)
	}
}

func TestRotateSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		grace time.Duration
	}{
		{name: "no grace", grace: 0},
		{name: "an hour of grace", grace: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			created, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"svc","name":"n"}`))
			if err != nil {
				t.Fatal(err)
			}
			e.takeEvents()
			e.advance(time.Second)
			sec, v, err := e.reg.RotateSecret(ctx, "svc", tt.grace)
			if err != nil {
				t.Fatal(err)
			}
			if sec == "" || sec == created.ClientSecret {
				t.Fatalf("new secret: got %q, want a new one (old %q)", sec, created.ClientSecret)
			}
			if v.ClientSecret != "" {
				t.Errorf("view's client_secret: got %q, want it returned on its own", v.ClientSecret)
			}
			if !v.UpdatedAt.Equal(e.clock()) {
				t.Errorf("updated_at: got %v, want %v", v.UpdatedAt, e.clock())
			}
			c, err := e.store.GetClient(ctx, "svc")
			if err != nil {
				t.Fatal(err)
			}
			if !secret.Matches(sec, c.SecretHash) {
				t.Error("the new secret does not match the stored hash")
			}
			wantUntil := time.Time{}
			if tt.grace > 0 {
				wantUntil = e.clock().Add(tt.grace)
				if !secret.Matches(created.ClientSecret, c.PrevSecretHash) {
					t.Error("the old secret does not match the stored previous hash")
				}
			} else if len(c.PrevSecretHash) != 0 {
				t.Errorf("previous hash: got %x, want none without grace", c.PrevSecretHash)
			}
			if !v.SecretGraceUntil.Equal(wantUntil) || !c.PrevSecretExpiresAt.Equal(wantUntil) {
				t.Errorf("previous secret valid until: got %v (stored %v), want %v", v.SecretGraceUntil, c.PrevSecretExpiresAt, wantUntil)
			}
			if got, want := e.takeChanges(), []storage.Change{{Kind: storage.ChangeClient, ID: "svc"}}; !slices.Equal(got, want) {
				t.Errorf("announced: got %v, want %v", got, want)
			}
			ev := e.takeEvents()
			if len(ev) != 1 || ev[0].What != registry.ActionClientRotateSecret || ev[0].Target != "svc" {
				t.Fatalf("audit: got %+v, want one client.rotate_secret of svc", ev)
			}
			if ev[0].After["secret"] != "rotated" {
				t.Errorf("audit after: got %v, want secret: rotated", ev[0].After)
			}
			_, hasUntil := ev[0].After["previous_secret_valid_until"]
			if hasUntil != (tt.grace > 0) {
				t.Errorf("audit after: got %v, want previous_secret_valid_until only with grace", ev[0].After)
			}
			for _, v := range ev[0].After {
				if v == sec {
					t.Errorf("audit after: the secret itself is in %v", ev[0].After)
				}
			}
		})
	}
}

// TestRotateSecretTwice: a second rotation without grace ends the first one's grace.
func TestRotateSecretTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"svc"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.reg.RotateSecret(ctx, "svc", time.Hour); err != nil {
		t.Fatal(err)
	}
	_, v, err := e.reg.RotateSecret(ctx, "svc", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !v.SecretGraceUntil.IsZero() {
		t.Errorf("previous_secret_valid_until: got %v, want none", v.SecretGraceUntil)
	}
	c, err := e.store.GetClient(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.PrevSecretHash) != 0 {
		t.Errorf("previous hash: got %x, want none", c.PrevSecretHash)
	}
}

func TestRotateSecretRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		id         string
		grace      time.Duration
		code, desc string
	}{
		{name: "negative grace", id: "svc", grace: -time.Second, code: protocol.InvalidRequest, desc: "grace must not be negative"},
		{name: "unknown client", id: "nope", code: protocol.NotFound, desc: "client nope not found"},
		{name: "public client", id: "app", code: protocol.InvalidRequest, desc: "client app is public (token_endpoint_auth_method none) and has no secret"},
		{name: "certificate client", id: "mtls", code: protocol.InvalidRequest, desc: "client mtls authenticates with its TLS client certificate (token_endpoint_auth_method tls_client_auth) and has no secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			if _, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"svc"}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"app","token_endpoint_auth_method":"none"}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"mtls","token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=mtls"}`)); err != nil {
				t.Fatal(err)
			}
			e.takeEvents()
			before, _ := e.store.GetClient(ctx, tt.id)
			_, _, err := e.reg.RotateSecret(ctx, tt.id, tt.grace)
			wantError(t, err, tt.code, tt.desc)
			after, _ := e.store.GetClient(ctx, tt.id)
			if !slices.Equal(after.SecretHash, before.SecretHash) {
				t.Error("a refused rotation changed the secret")
			}
			if c := e.takeChanges(); len(c) != 0 {
				t.Errorf("announced: got %v, want nothing", c)
			}
			if ev := e.takeEvents(); len(ev) != 0 {
				t.Errorf("audit: got %v, want nothing", ev)
			}
		})
	}
}

// TestOwnedClients: in the console an integrator sees and rotates only their own clients;
// anyone else's answer as not found.
func TestOwnedClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	alice, bob := e.user(t, "alice"), e.user(t, "bob")
	for _, c := range []string{
		`{"client_id":"b1","owner":"` + alice + `"}`,
		`{"client_id":"a1","owner":"` + alice + `"}`,
		`{"client_id":"c1","owner":"` + bob + `"}`,
		`{"client_id":"d1"}`,
	} {
		if _, err := e.reg.CreateClient(ctx, clientInput(t, c)); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(vs []registry.ClientView) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.ClientID)
		}
		return out
	}
	for _, tt := range []struct {
		owner string
		want  []string
	}{{alice, []string{"a1", "b1"}}, {bob, []string{"c1"}}, {"", nil}, {"nobody", nil}} {
		got, err := e.reg.OwnedClients(ctx, tt.owner)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("OwnedClients(%q): got %v, want %v", tt.owner, ids(got), tt.want)
		}
	}
	all, err := e.reg.ListClients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(all), []string{"a1", "b1", "c1", "d1"}; !slices.Equal(got, want) {
		t.Errorf("ListClients: got %v, want %v", got, want)
	}

	actx := audit.WithActor(ctx, "user:"+alice)
	for _, tt := range []struct {
		name, owner, id string
		wantErr         bool
	}{
		{"own client", alice, "a1", false},
		{"someone else's", alice, "c1", true},
		{"nobody's", alice, "d1", true},
		{"unknown", alice, "zz", true},
		{"no owner", "", "d1", true},
	} {
		sec, _, err := e.reg.RotateOwnedSecret(actx, tt.owner, tt.id, 0)
		if tt.wantErr {
			wantError(t, err, protocol.NotFound, "client "+tt.id+" not found")
			continue
		}
		if err != nil || sec == "" {
			t.Errorf("%s: got %q, %v; want a new secret", tt.name, sec, err)
		}
	}
	var rotated []audit.Event
	for _, ev := range e.takeEvents() {
		if ev.What == registry.ActionClientRotateSecret {
			rotated = append(rotated, ev)
		}
	}
	if len(rotated) != 1 || rotated[0].Who != "user:"+alice || rotated[0].Target != "a1" {
		t.Errorf("audit of console rotations: got %+v, want one of a1 by user:%s", rotated, alice)
	}
}

func TestDeleteClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	created, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"svc","name":"Billing","scopes":["a"]}`))
	if err != nil {
		t.Fatal(err)
	}
	e.takeEvents()
	if err := e.reg.DeleteClient(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	_, err = e.reg.GetClient(ctx, "svc")
	wantError(t, err, protocol.NotFound, "client svc not found")
	if got, want := e.takeChanges(), []storage.Change{{Kind: storage.ChangeClient, ID: "svc"}}; !slices.Equal(got, want) {
		t.Errorf("announced: got %v, want %v", got, want)
	}
	ev := e.takeEvents()
	if len(ev) != 1 || ev[0].Kind != audit.AdminChange || ev[0].What != registry.ActionClientDelete || ev[0].Target != "svc" {
		t.Fatalf("audit: got %+v, want one client.delete of svc", ev)
	}
	if ev[0].Before["name"] != "Billing" || ev[0].After != nil {
		t.Errorf("audit: got before %v after %v, want the deleted client before and nothing after", ev[0].Before, ev[0].After)
	}
	for _, k := range []string{"client_secret", "updated_at"} {
		if _, ok := ev[0].Before[k]; ok {
			t.Errorf("audit before: got %s, want it left out", k)
		}
	}

	err = e.reg.DeleteClient(ctx, "svc")
	wantError(t, err, protocol.NotFound, "client svc not found")
	// The id can be used again; the new client is a new incarnation with a new secret.
	again, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"svc"}`))
	if err != nil {
		t.Fatal(err)
	}
	if again.ClientSecret == created.ClientSecret {
		t.Error("the client created again has the deleted one's secret")
	}
}

// TestClientAuditCreate: creation records the new client without its secret.
func TestClientAuditCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v, err := e.reg.CreateClient(context.Background(), clientInput(t, `{"client_id":"svc","name":"n"}`))
	if err != nil {
		t.Fatal(err)
	}
	ev := e.takeEvents()
	if len(ev) != 1 || ev[0].What != registry.ActionClientCreate || ev[0].Who != "admin" || ev[0].Before != nil {
		t.Fatalf("audit: got %+v, want one client.create by admin with nothing before", ev)
	}
	if ev[0].After["client_id"] != "svc" || ev[0].After["name"] != "n" {
		t.Errorf("audit after: got %v, want the client", ev[0].After)
	}
	if _, ok := ev[0].After["client_secret"]; ok {
		t.Errorf("audit after: the secret %q is in the trail", v.ClientSecret)
	}
	// Creation needs no announcement: no replica can hold a copy of a client that did not exist.
	if c := e.takeChanges(); len(c) != 0 {
		t.Errorf("announced: got %v, want nothing", c)
	}
}

// TestStoreDown: a store that cannot answer is temporarily_unavailable, never a 500 or a
// not_found.
func TestStoreDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"svc"}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"CreateClient": func() error { _, err := e.reg.CreateClient(ctx, registry.ClientInput{}); return err },
		"GetClient":    func() error { _, err := e.reg.GetClient(ctx, "svc"); return err },
		"ListClients":  func() error { _, err := e.reg.ListClients(ctx); return err },
		"UpdateClient": func() error {
			_, err := e.reg.UpdateClient(ctx, "svc", registry.ClientInput{Name: ptr("x")})
			return err
		},
		"OwnerCheck": func() error {
			_, err := e.reg.UpdateClient(ctx, "svc", registry.ClientInput{Owner: ptr("u")})
			return err
		},
		"DeleteClient": func() error { return e.reg.DeleteClient(ctx, "svc") },
		"RotateSecret": func() error { _, _, err := e.reg.RotateSecret(ctx, "svc", 0); return err },
		"OwnedClients": func() error { _, err := e.reg.OwnedClients(ctx, "u"); return err },
		"GetUser":      func() error { _, err := e.reg.GetUser(ctx, "u"); return err },
		"FindUser":     func() error { _, err := e.reg.FindUser(ctx, "u"); return err },
		"ListUsers":    func() error { _, err := e.reg.ListUsers(ctx); return err },
		"DeleteUser":   func() error { return e.reg.DeleteUser(ctx, "u") },
		"CreateUser": func() error {
			_, err := e.reg.CreateUser(ctx, registry.UserInput{Username: "u", Password: "12345678"})
			return err
		},
		"UpdateUser": func() error {
			_, err := e.reg.UpdateUser(ctx, "u", registry.UserUpdate{Password: ptr("12345678")})
			return err
		},
		"ListTokens":  func() error { _, err := e.reg.ListPersonalTokens(ctx, "u"); return err },
		"DeleteToken": func() error { return e.reg.DeletePersonalToken(ctx, "u", "t") },
		"CreateToken": func() error {
			_, err := e.reg.CreatePersonalToken(ctx, "u", registry.PersonalTokenInput{Name: "n"})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			wantError(t, call(), protocol.TemporarilyUnavailable, "the store is unavailable, retry later")
		})
	}
}

// failingAnnouncer stands for a feed that cannot publish: the real feeds fail only when their
// store does.
type failingAnnouncer struct{ calls int }

func (f *failingAnnouncer) Announce(context.Context, storage.Change) error {
	f.calls++
	return errors.New("feed down")
}

// TestAnnouncing: a change stands whether or not it could be announced (the other replicas
// then see it when their copy expires), and a registry without an announcer works alone.
func TestAnnouncing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		a    registry.Announcer
	}{{"failing", &failingAnnouncer{}}, {"none", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store, err := embedded.OpenMemory()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = store.Close() })
			reg := registry.New(store, tt.a)
			ctx := context.Background()
			if _, err := reg.CreateClient(ctx, clientInput(t, `{"client_id":"svc"}`)); err != nil {
				t.Fatal(err)
			}
			v, err := reg.UpdateClient(ctx, "svc", clientInput(t, `{"name":"changed"}`))
			if err != nil || v.Name != "changed" {
				t.Fatalf("update: got %+v, %v; want the change made", v, err)
			}
			if err := reg.DeleteClient(ctx, "svc"); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if f, ok := tt.a.(*failingAnnouncer); ok && f.calls != 2 {
				t.Errorf("announcements tried: got %d, want 2", f.calls)
			}
			_, err = reg.GetClient(ctx, "svc")
			wantError(t, err, protocol.NotFound, "client svc not found")
		})
	}
}

// TestClientSigningAlgorithm: access_token_signing_alg takes one of the algorithms the key set
// signs with (the first when not given), refuses every other value with a 400 naming the
// field and changes nothing, refuses an algorithm whose first key is still published ahead,
// and shows RS256 for a client stored before the field existed.
func TestClientSigningAlgorithm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	ks, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	// ES256 and PS256 sign now (no publish-ahead asked for).
	first, _, err := keys.Open(ctx, ks, keys.Options{Algorithms: []string{keys.ES256, keys.PS256}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	first.Set.Close()
	// EdDSA added to a deployment that signs: its first key is published ten minutes ahead.
	km, _, err := keys.Open(ctx, ks, keys.Options{Algorithms: []string{keys.ES256, keys.PS256, keys.EdDSA}, PublishAhead: 10 * time.Minute}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(km.Set.Close)

	e := newEnv(t)
	e.reg = registry.New(e.store, nil, registry.WithClock(time.Now), registry.WithSigningAlgorithms(km.Set))
	v, err := e.reg.CreateClient(ctx, registry.ClientInput{ClientID: new("default")})
	if err != nil || v.AccessTokenSigningAlg != keys.ES256 {
		t.Fatalf("a client created without access_token_signing_alg: %q %v, want the first of keys.algorithms", v.AccessTokenSigningAlg, err)
	}
	if v, err = e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"ps","access_token_signing_alg":"PS256"}`)); err != nil || v.AccessTokenSigningAlg != keys.PS256 {
		t.Fatalf("PS256: %q %v", v.AccessTokenSigningAlg, err)
	}
	if stored, _ := e.store.GetClient(ctx, "ps"); stored.AccessTokenSigningAlg != keys.PS256 {
		t.Fatalf("stored %q", stored.AccessTokenSigningAlg)
	}
	refusals := []struct{ alg, desc string }{
		{"HS256", "access_token_signing_alg: HS256 is symmetric"},
		{"hs512", "access_token_signing_alg: hs512 is symmetric"},
		{"none", `access_token_signing_alg: "none" means an unsigned token`},
		{"NONE", `access_token_signing_alg: "NONE" means an unsigned token`},
		{"RS512", `access_token_signing_alg: "RS512" is not one of RS256, PS256, ES256, EdDSA`},
		{"RS256", "access_token_signing_alg: RS256 is not published by this server (keys.algorithms: ES256, PS256, EdDSA)"},
		{"EdDSA", "access_token_signing_alg: the first EdDSA key is published ahead of signing"},
	}
	for _, r := range refusals {
		body := `{"access_token_signing_alg":"` + r.alg + `"}`
		_, err := e.reg.CreateClient(ctx, clientInput(t, `{"client_id":"x",`+body[1:]))
		wantError(t, err, protocol.InvalidRequest, r.desc)
		if _, err := e.store.GetClient(ctx, "x"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%s: a refused client was stored", r.alg)
		}
		_, err = e.reg.UpdateClient(ctx, "ps", clientInput(t, body))
		wantError(t, err, protocol.InvalidRequest, r.desc)
		if got, _ := e.reg.GetClient(ctx, "ps"); got.AccessTokenSigningAlg != keys.PS256 {
			t.Fatalf("%s: a refused PATCH changed the algorithm to %q", r.alg, got.AccessTokenSigningAlg)
		}
	}
	if v, err = e.reg.UpdateClient(ctx, "ps", clientInput(t, `{"access_token_signing_alg":""}`)); err != nil || v.AccessTokenSigningAlg != keys.ES256 {
		t.Fatalf(`PATCH "": %q %v, want the default`, v.AccessTokenSigningAlg, err)
	}
	// A client stored before the field existed signs RS256, whatever keys.algorithms says.
	if err := e.store.CreateClient(ctx, storage.Client{ID: "legacy", GrantTypes: []string{protocol.GrantClientCredentials}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.reg.GetClient(ctx, "legacy"); got.AccessTokenSigningAlg != keys.RS256 {
		t.Fatalf("legacy client shows %q, want RS256", got.AccessTokenSigningAlg)
	}
}
