package conformance

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// testFederatedIndex: the clients of a federated identity are found by (issuer, subject),
// exactly or through a pattern, and every client write (create, update, delete, restore, seed)
// keeps the index in step with the records.
func testFederatedIndex(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	const (
		k8s = "https://kubernetes.default.svc.cluster.local"
		gh  = "https://token.actions.githubusercontent.com"
	)
	fi := func(iss, sub string) storage.FederatedIdentity {
		return storage.FederatedIdentity{Issuer: iss, Subject: sub}
	}
	client := func(id string, fis ...storage.FederatedIdentity) storage.Client {
		return storage.Client{ID: id, GrantTypes: []string{"client_credentials"}, TokenEndpointAuthMethod: "private_key_jwt",
			FederatedIdentities: fis, CreatedAt: now, UpdatedAt: now}
	}
	mustNoErr(t, s.CreateClient(ctx, client("billing", fi(k8s, "system:serviceaccount:prod:billing"))))
	mustNoErr(t, s.CreateClient(ctx, client("deploy", fi(gh, "repo:acme/app:*"), fi(k8s, "system:serviceaccount:ci:deployer"))))
	mustNoErr(t, s.CreateClient(ctx, client("release", fi(gh, "repo:acme/app:ref:refs/tags/*"))))
	mustNoErr(t, s.CreateClient(ctx, client("plain")))

	lookup := func(iss, sub string) []string {
		t.Helper()
		ids, err := s.ClientsByFederatedIdentity(ctx, iss, sub)
		mustNoErr(t, err)
		slices.Sort(ids)
		return ids
	}
	check := func(when string, tests []struct {
		iss, sub string
		want     []string
	}) {
		t.Helper()
		for _, tc := range tests {
			if got := lookup(tc.iss, tc.sub); !slices.Equal(got, tc.want) {
				t.Errorf("%s: ClientsByFederatedIdentity(%q, %q) = %q, want %q", when, tc.iss, tc.sub, got, tc.want)
			}
		}
	}
	type row = struct {
		iss, sub string
		want     []string
	}
	check("after create", []row{
		{k8s, "system:serviceaccount:prod:billing", []string{"billing"}},
		{k8s, "system:serviceaccount:prod:billing2", nil},
		{k8s, "system:serviceaccount:prod", nil},
		{gh, "system:serviceaccount:prod:billing", nil}, // another issuer
		{gh, "repo:acme/app:ref:refs/heads/main", []string{"deploy"}},
		{gh, "repo:acme/app:ref:refs/tags/v1", []string{"deploy", "release"}},
		{gh, "repo:acme/app-evil:ref:refs/heads/main", nil}, // the pattern ends at a separator
		{gh, "repo:acme/ap", nil},
		{gh, "repo:acme/app:*", []string{"deploy"}}, // a literal star is matched as a pattern would
		{k8s, "system:serviceaccount:ci:deployer", []string{"deploy"}},
	})

	// Update: identities dropped leave the index, new ones join it, kept ones stay.
	_, err := s.UpdateClient(ctx, "deploy", func(c *storage.Client) error {
		c.FederatedIdentities = []storage.FederatedIdentity{fi(k8s, "system:serviceaccount:ci:deployer"), fi(k8s, "system:serviceaccount:ci:*")}
		return nil
	})
	mustNoErr(t, err)
	_, err = s.UpdateClient(ctx, "plain", func(c *storage.Client) error {
		c.FederatedIdentities = []storage.FederatedIdentity{fi(k8s, "system:serviceaccount:prod:billing")}
		return nil
	})
	mustNoErr(t, err)
	check("after update", []row{
		{gh, "repo:acme/app:ref:refs/heads/main", nil},
		{gh, "repo:acme/app:ref:refs/tags/v1", []string{"release"}},
		{k8s, "system:serviceaccount:ci:deployer", []string{"deploy"}},
		{k8s, "system:serviceaccount:ci:other", []string{"deploy"}},
		{k8s, "system:serviceaccount:prod:billing", []string{"billing", "plain"}},
	})
	// A refused update changes nothing.
	_, err = s.UpdateClient(ctx, "release", func(c *storage.Client) error {
		c.FederatedIdentities = nil
		return storage.ErrAlreadyExists
	})
	wantErr(t, err, storage.ErrAlreadyExists)
	check("after a refused update", []row{{gh, "repo:acme/app:ref:refs/tags/v2", []string{"release"}}})

	mustNoErr(t, s.DeleteClient(ctx, "plain", now))
	mustNoErr(t, s.DeleteClient(ctx, "deploy", now))
	check("after delete", []row{
		{k8s, "system:serviceaccount:prod:billing", []string{"billing"}},
		{k8s, "system:serviceaccount:ci:deployer", nil},
		{k8s, "system:serviceaccount:ci:other", nil},
	})

	// Restore writes the index too, replacing what the held record had.
	restored := client("release", fi(gh, "repo:acme/lib:*"))
	_, err = s.RestoreClient(ctx, restored, storage.Restore{Now: now})
	mustNoErr(t, err)
	_, err = s.RestoreClient(ctx, client("restored", fi(spiffeIssuer, "spiffe://example.org/ns/x/sa/y")), storage.Restore{Now: now})
	mustNoErr(t, err)
	check("after restore", []row{
		{gh, "repo:acme/app:ref:refs/tags/v1", nil},
		{gh, "repo:acme/lib:ref:refs/heads/main", []string{"release"}},
		{spiffeIssuer, "spiffe://example.org/ns/x/sa/y", []string{"restored"}},
	})

	if seeder, ok := s.(storage.Seeder); ok {
		mustNoErr(t, seeder.SeedClients(ctx, 2, func(i int) storage.Client {
			return client([]string{"seed0", "seed1"}[i], fi(spiffeIssuer, "spiffe://example.org/ns/seed/*"))
		}))
		check("after seed", []row{{spiffeIssuer, "spiffe://example.org/ns/seed/sa/a", []string{"seed0", "seed1"}}})
	}
}

const spiffeIssuer = "https://oidc.spiffe.example.org"
