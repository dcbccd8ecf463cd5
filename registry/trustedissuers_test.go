package registry_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/storage"
)

// TestCreateTrustedIssuer decodes each POST /admin/trusted-issuers body as the admin API does
// and checks the refusal (which stores nothing) or the record made.
func TestCreateTrustedIssuer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		code, desc string
		wantAuds   []string
	}{
		{name: "kubernetes with audience", body: `{"issuer":"https://kubernetes.default.svc.cluster.local","audiences":["tokensmith","tokensmith"],"name":"prod"}`, wantAuds: []string{"tokensmith"}},
		{name: "github with jwks_uri", body: `{"issuer":"https://token.actions.githubusercontent.com","jwks_uri":"https://token.actions.githubusercontent.com/.well-known/jwks"}`, wantAuds: []string{}},
		{name: "http on loopback", body: `{"issuer":"http://127.0.0.1:8200"}`, wantAuds: []string{}},
		{name: "http on localhost", body: `{"issuer":"http://localhost:8200/spiffe"}`, wantAuds: []string{}},
		{name: "http on ipv6 loopback", body: `{"issuer":"http://[::1]:8200"}`, wantAuds: []string{}},

		{name: "issuer missing", body: `{}`, code: protocol.InvalidRequest, desc: "issuer must be an https URL of at most 2000 bytes"},
		{name: "issuer http elsewhere", body: `{"issuer":"http://issuer.example"}`, code: protocol.InvalidRequest, desc: "issuer must use https (http only on a loopback address)"},
		{name: "issuer relative", body: `{"issuer":"issuer.example"}`, code: protocol.InvalidRequest, desc: "issuer must be an absolute https URL without credentials, query or fragment"},
		{name: "issuer with query", body: `{"issuer":"https://issuer.example/?a=b"}`, code: protocol.InvalidRequest, desc: "issuer must be an absolute https URL without credentials, query or fragment"},
		{name: "issuer with credentials", body: `{"issuer":"https://u:p@issuer.example"}`, code: protocol.InvalidRequest, desc: "issuer must be an absolute https URL without credentials, query or fragment"},
		{name: "jwks_uri http elsewhere", body: `{"issuer":"https://issuer.example","jwks_uri":"http://issuer.example/jwks"}`, code: protocol.InvalidRequest, desc: "jwks_uri must use https (http only on a loopback address)"},
		{name: "audience empty", body: `{"issuer":"https://issuer.example","audiences":[""]}`, code: protocol.InvalidRequest, desc: "audiences: values must be non-empty and at most 200 bytes"},
		{name: "name control", body: `{"issuer":"https://issuer.example","name":"a\u0007"}`, code: protocol.InvalidRequest, desc: "name must be at most 100 printable characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			var in registry.TrustedIssuerInput
			if err := decodeStrict(tc.body, &in); err != nil {
				t.Fatal(err)
			}
			v, err := e.reg.CreateTrustedIssuer(ctx, in)
			all, lerr := e.store.ListTrustedIssuers(ctx)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tc.code != "" {
				var pe *protocol.Error
				if !errors.As(err, &pe) || pe.Code != tc.code || pe.Description != tc.desc {
					t.Fatalf("err = %v, want %s %q", err, tc.code, tc.desc)
				}
				if len(all) != 0 || len(e.takeEvents()) != 0 {
					t.Fatal("a refused create stored or audited something")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.ID == "" || v.Issuer != in.Issuer || v.JWKSURI != in.JWKSURI || !slices.Equal(v.Audiences, tc.wantAuds) {
				t.Fatalf("view = %+v", v)
			}
			if len(all) != 1 || all[0].ID != v.ID {
				t.Fatalf("stored = %+v", all)
			}
			if ev := e.takeEvents(); len(ev) != 1 || ev[0].What != registry.ActionTrustedIssuerCreate || ev[0].Target != v.ID {
				t.Fatalf("audit = %+v", ev)
			}
		})
	}
}

// TestTrustedIssuerLifecycle: one record per issuer URL; a delete is announced to every
// replica, a second delete is not found.
func TestTrustedIssuerLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	in := registry.TrustedIssuerInput{Issuer: "https://token.actions.githubusercontent.com"}
	v, err := e.reg.CreateTrustedIssuer(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.reg.CreateTrustedIssuer(ctx, in)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.AlreadyExists {
		t.Fatalf("second create: %v, want already exists", err)
	}
	if got, err := e.reg.GetTrustedIssuer(ctx, v.ID); err != nil || got.Issuer != in.Issuer {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if l, err := e.reg.ListTrustedIssuers(ctx); err != nil || len(l) != 1 {
		t.Fatalf("list = %+v, %v", l, err)
	}
	e.takeChanges()
	if err := e.reg.DeleteTrustedIssuer(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if c := e.takeChanges(); !slices.Equal(c, []storage.Change{{Kind: storage.ChangeTrustedIssuer, ID: v.ID}}) {
		t.Fatalf("announced %v", c)
	}
	err = e.reg.DeleteTrustedIssuer(ctx, v.ID)
	if !errors.As(err, &pe) || pe.Code != protocol.NotFound {
		t.Fatalf("second delete: %v, want not found", err)
	}
}
