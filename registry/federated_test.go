package registry_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
)

const (
	k8sIssuer = "https://kubernetes.default.svc.cluster.local"
	ghIssuer  = "https://token.actions.githubusercontent.com"
)

// trusting is an env whose store trusts the Kubernetes and GitHub issuers.
func trusting(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	for _, iss := range []string{k8sIssuer, ghIssuer} {
		if _, err := e.reg.CreateTrustedIssuer(context.Background(), registry.TrustedIssuerInput{Issuer: iss}); err != nil {
			t.Fatal(err)
		}
	}
	e.takeEvents()
	return e
}

func TestCreateClientFederatedIdentities(t *testing.T) {
	t.Parallel()
	fed := func(iss, sub string) string {
		return `{"federated_identities":[{"issuer":"` + iss + `","subject":"` + sub + `"}]}`
	}
	tests := []struct {
		name       string
		body       string
		code, desc string
	}{
		{name: "kubernetes service account", body: fed(k8sIssuer, "system:serviceaccount:prod:billing")},
		{name: "spiffe id", body: fed(k8sIssuer, "spiffe://example.org/ns/x/sa/y")},
		{name: "github pattern after a colon", body: fed(ghIssuer, "repo:acme/app:*")},
		{name: "github pattern after a slash", body: fed(ghIssuer, "repo:acme/*")},
		{name: "with keys too", body: `{"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://keys.example.com/jwks",` +
			`"federated_identities":[{"issuer":"` + ghIssuer + `","subject":"repo:acme/app:ref:refs/heads/main"}]}`},

		{name: "pattern not after a separator", body: fed(ghIssuer, "repo:acme/app*"), code: protocol.InvalidRequest,
			desc: `federated_identities: subject "repo:acme/app*": '*' must follow a separator`},
		{name: "star inside", body: fed(ghIssuer, "repo:*/app:*"), code: protocol.InvalidRequest,
			desc: `'*' may only be the last character`},
		{name: "star alone", body: fed(ghIssuer, "*"), code: protocol.InvalidRequest, desc: "'*' must follow a separator"},
		{name: "one segment", body: fed(ghIssuer, "repo:*"), code: protocol.InvalidRequest, desc: "matches too much"},
		{name: "scheme only", body: fed(ghIssuer, "spiffe://*"), code: protocol.InvalidRequest, desc: "matches too much"},
		{name: "subject empty", body: fed(ghIssuer, ""), code: protocol.InvalidRequest, desc: "federated_identities: subject must be 1 to 512"},
		{name: "subject with space", body: fed(ghIssuer, "a b"), code: protocol.InvalidRequest, desc: "federated_identities: subject must be"},
		{name: "issuer not trusted", body: fed("https://other.example", "x:y"), code: protocol.InvalidRequest,
			desc: `federated_identities: issuer "https://other.example" is not a trusted issuer`},
		{name: "issuer not https", body: fed("http://issuer.example", "x:y"), code: protocol.InvalidRequest,
			desc: "federated_identities: issuer must use https"},
		{name: "secret method", body: `{"token_endpoint_auth_method":"client_secret_basic","federated_identities":[{"issuer":"` + k8sIssuer + `","subject":"a:b"}]}`,
			code: protocol.InvalidRequest, desc: "federated_identities: only a client with token_endpoint_auth_method private_key_jwt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := trusting(t)
			ctx := context.Background()
			v, err := e.reg.CreateClient(ctx, clientInput(t, tc.body))
			if tc.code != "" {
				wantError(t, err, tc.code, tc.desc)
				if all, _ := e.reg.ListClients(ctx); len(all) != 0 {
					t.Errorf("clients after a refusal: got %d, want 0", len(all))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.TokenEndpointAuthMethod != protocol.AuthPrivateKeyJWT || v.ClientSecret != "" {
				t.Errorf("method %q, secret %q: want private_key_jwt and no secret", v.TokenEndpointAuthMethod, v.ClientSecret)
			}
			in := clientInput(t, tc.body)
			if !slices.Equal(v.FederatedIdentities, *in.FederatedIdentities) {
				t.Errorf("federated_identities = %v, want %v", v.FederatedIdentities, *in.FederatedIdentities)
			}
			f := v.FederatedIdentities[0]
			sub := f.Subject
			if storage.IsSubjectPattern(sub) {
				sub = sub[:len(sub)-1] + "x"
			}
			ids, err := e.store.ClientsByFederatedIdentity(ctx, f.Issuer, sub)
			if err != nil || !slices.Equal(ids, []string{v.ClientID}) {
				t.Errorf("ClientsByFederatedIdentity = %v, %v; want [%s]", ids, err, v.ClientID)
			}
		})
	}
}

func TestUpdateClientFederatedIdentities(t *testing.T) {
	t.Parallel()
	e := trusting(t)
	ctx := context.Background()
	v, err := e.reg.CreateClient(ctx, clientInput(t, `{"federated_identities":[{"issuer":"`+k8sIssuer+`","subject":"system:serviceaccount:a:b"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// Removing the only identity of a client without keys leaves it unable to authenticate.
	_, err = e.reg.UpdateClient(ctx, v.ClientID, clientInput(t, `{"federated_identities":[]}`))
	wantError(t, err, protocol.InvalidRequest, "jwks, jwks_uri or federated_identities")
	// Replacing it moves the index.
	if _, err := e.reg.UpdateClient(ctx, v.ClientID, clientInput(t, `{"federated_identities":[{"issuer":"`+ghIssuer+`","subject":"repo:acme/app:*"}]}`)); err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.store.ClientsByFederatedIdentity(ctx, k8sIssuer, "system:serviceaccount:a:b"); len(ids) != 0 {
		t.Errorf("the replaced identity still finds %v", ids)
	}
	if ids, _ := e.store.ClientsByFederatedIdentity(ctx, ghIssuer, "repo:acme/app:ref:refs/heads/main"); !slices.Equal(ids, []string{v.ClientID}) {
		t.Errorf("the new identity finds %v", ids)
	}
	if c := e.takeChanges(); !slices.Contains(c, storage.Change{Kind: storage.ChangeClient, ID: v.ClientID}) {
		t.Errorf("changes = %v, want the client announced", c)
	}
	// Deleting the client empties the index.
	if err := e.reg.DeleteClient(ctx, v.ClientID); err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.store.ClientsByFederatedIdentity(ctx, ghIssuer, "repo:acme/app:ref:refs/heads/main"); len(ids) != 0 {
		t.Errorf("a deleted client is still found: %v", ids)
	}
}
