package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func testTrustedIssuers(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	k8s := storage.TrustedIssuer{ID: "ti1", Issuer: "https://kubernetes.default.svc.cluster.local", Audiences: []string{"tokensmith"}, Name: "prod cluster", CreatedAt: now}
	gh := storage.TrustedIssuer{ID: "ti2", Issuer: "https://token.actions.githubusercontent.com", JWKSURI: "https://token.actions.githubusercontent.com/.well-known/jwks", CreatedAt: now}
	mustNoErr(t, s.CreateTrustedIssuer(ctx, k8s))
	mustNoErr(t, s.CreateTrustedIssuer(ctx, gh))

	tests := []struct {
		name string
		ti   storage.TrustedIssuer
	}{
		{"same id", storage.TrustedIssuer{ID: "ti1", Issuer: "https://other.example"}},
		{"same issuer", storage.TrustedIssuer{ID: "ti3", Issuer: k8s.Issuer}},
	}
	for _, tc := range tests {
		wantErr(t, s.CreateTrustedIssuer(ctx, tc.ti), storage.ErrAlreadyExists)
		if _, err := s.GetTrustedIssuer(ctx, "ti3"); err == nil {
			t.Fatalf("%s: a refused create stored a record", tc.name)
		}
	}

	got, err := s.GetTrustedIssuer(ctx, "ti1")
	mustNoErr(t, err)
	if got.Issuer != k8s.Issuer || got.Name != k8s.Name || len(got.Audiences) != 1 || got.Audiences[0] != "tokensmith" || !got.CreatedAt.Equal(now) {
		t.Fatalf("GetTrustedIssuer = %+v", got)
	}
	byIss, err := s.TrustedIssuerByIssuer(ctx, gh.Issuer)
	mustNoErr(t, err)
	if byIss.ID != "ti2" || byIss.JWKSURI != gh.JWKSURI {
		t.Fatalf("TrustedIssuerByIssuer = %+v", byIss)
	}
	// The issuer is matched exactly: a trailing slash is a different issuer.
	_, err = s.TrustedIssuerByIssuer(ctx, gh.Issuer+"/")
	wantErr(t, err, storage.ErrNotFound)
	all, err := s.ListTrustedIssuers(ctx)
	mustNoErr(t, err)
	if len(all) != 2 {
		t.Fatalf("ListTrustedIssuers = %d records, want 2", len(all))
	}

	wantErr(t, s.DeleteTrustedIssuer(ctx, "nope"), storage.ErrNotFound)
	mustNoErr(t, s.DeleteTrustedIssuer(ctx, "ti1"))
	wantErr(t, s.DeleteTrustedIssuer(ctx, "ti1"), storage.ErrNotFound)
	_, err = s.GetTrustedIssuer(ctx, "ti1")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.TrustedIssuerByIssuer(ctx, k8s.Issuer)
	wantErr(t, err, storage.ErrNotFound)
	if all, _ := s.ListTrustedIssuers(ctx); len(all) != 1 || all[0].ID != "ti2" {
		t.Fatalf("after delete, ListTrustedIssuers = %+v", all)
	}
	// Once deleted, the issuer URL is free for a new record.
	mustNoErr(t, s.CreateTrustedIssuer(ctx, storage.TrustedIssuer{ID: "ti4", Issuer: k8s.Issuer, CreatedAt: now}))
	if got, err := s.TrustedIssuerByIssuer(ctx, k8s.Issuer); err != nil || got.ID != "ti4" {
		t.Fatalf("re-created issuer = %+v, %v", got, err)
	}
}
