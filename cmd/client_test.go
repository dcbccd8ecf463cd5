package cmd

import (
	"encoding/json"
	"testing"

	"github.com/spf13/pflag"
)

// TestClientFlagsForQuotasAndPublicClients: the flags of issue 14 (and of the key and
// certificate methods since) set exactly their admin API fields, and only when given.
func TestClientFlagsForQuotasAndPublicClients(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--hourly-limit", "10", "--hourly-limit-shadow"}, `{"hourly_limit":10,"hourly_limit_shadow":true}`},
		{[]string{"--hourly-limit-shadow=false", "--daily-limit-shadow"}, `{"daily_limit_shadow":true,"hourly_limit_shadow":false}`},
		{[]string{"--auth-method", "none", "--daily-limit", "100"}, `{"daily_limit":100,"token_endpoint_auth_method":"none"}`},
		{[]string{"--auth", "private_key_jwt", "--jwks-uri", "https://keys.example.com/jwks.json"}, `{"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://keys.example.com/jwks.json"}`},
		{[]string{"--jwks", ""}, `{"jwks":null}`},
		{[]string{"--federated", "https://k8s.example=system:serviceaccount:prod:billing", "--federated", "https://token.actions.githubusercontent.com=repo:acme/app:*"},
			`{"federated_identities":[{"issuer":"https://k8s.example","subject":"system:serviceaccount:prod:billing"},` +
				`{"issuer":"https://token.actions.githubusercontent.com","subject":"repo:acme/app:*"}]}`},
		{[]string{"--federated", ""}, `{"federated_identities":[]}`},
		{[]string{"--auth", "tls_client_auth", "--tls-subject-dn", "CN=orders,O=Example", "--tls-bound"},
			`{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=orders,O=Example","tls_client_certificate_bound_access_tokens":true}`},
		{[]string{"--tls-san-dns", "a.example.com", "--tls-san-uri", "spiffe://example.com/a", "--tls-san-ip", "10.0.0.1", "--tls-san-email", "a@example.com"},
			`{"tls_client_auth_san_dns":"a.example.com","tls_client_auth_san_uri":"spiffe://example.com/a","tls_client_auth_san_ip":"10.0.0.1","tls_client_auth_san_email":"a@example.com"}`},
		{[]string{"--tls-subject-dn", "", "--tls-bound=false"}, `{"tls_client_auth_subject_dn":"","tls_client_certificate_bound_access_tokens":false}`},
	} {
		fs := pflag.NewFlagSet("client update", pflag.ContinueOnError)
		input := clientFlags(fs, false)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		in, err := input()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(in)
		if string(got) != tc.want {
			t.Errorf("%v: %s, want %s", tc.args, got, tc.want)
		}
	}
}
