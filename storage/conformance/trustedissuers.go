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

func testRestoreTrustedIssuers(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := storage.Restore{Now: now}
	ti := storage.TrustedIssuer{ID: "ti1", Issuer: "https://spiffe.example", Audiences: []string{"a"}, CreatedAt: now}
	restore := func(ti storage.TrustedIssuer, r storage.Restore) storage.Outcome {
		t.Helper()
		out, err := s.RestoreTrustedIssuer(ctx, ti, r)
		mustNoErr(t, err)
		return out
	}
	if out := restore(ti, storage.Restore{Now: now, DryRun: true}); out != storage.Created {
		t.Fatalf("dry run = %s, want created", out)
	}
	if _, err := s.GetTrustedIssuer(ctx, "ti1"); err == nil {
		t.Fatal("a dry run wrote the record")
	}
	if out := restore(ti, r); out != storage.Created {
		t.Fatalf("first restore = %s", out)
	}
	if out := restore(ti, r); out != storage.Unchanged {
		t.Fatalf("same again = %s", out)
	}
	// Another record may not take its issuer URL.
	_, err := s.RestoreTrustedIssuer(ctx, storage.TrustedIssuer{ID: "ti2", Issuer: ti.Issuer}, r)
	wantErr(t, err, storage.ErrAlreadyExists)
	if _, err := s.GetTrustedIssuer(ctx, "ti2"); err == nil {
		t.Fatal("a refused restore wrote the record")
	}
	// A changed issuer URL moves the index: the old URL is free, the new one finds the record.
	moved := ti
	moved.Issuer = "https://spiffe2.example"
	if out := restore(moved, r); out != storage.Updated {
		t.Fatalf("moved = %s", out)
	}
	if got, err := s.TrustedIssuerByIssuer(ctx, moved.Issuer); err != nil || got.ID != "ti1" {
		t.Fatalf("by new issuer = %+v, %v", got, err)
	}
	_, err = s.TrustedIssuerByIssuer(ctx, ti.Issuer)
	wantErr(t, err, storage.ErrNotFound)
	mustNoErr(t, s.CreateTrustedIssuer(ctx, storage.TrustedIssuer{ID: "ti3", Issuer: ti.Issuer, CreatedAt: now}))
}
