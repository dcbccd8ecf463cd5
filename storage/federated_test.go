package storage_test

import (
	"slices"
	"testing"

	"github.com/tokensmith/tokensmith/storage"
)

func TestFederatedIdentityMatches(t *testing.T) {
	t.Parallel()
	const gh = "https://token.actions.githubusercontent.com"
	tests := []struct {
		registered, iss, sub string
		want                 bool
	}{
		{"repo:acme/app:ref:refs/heads/main", gh, "repo:acme/app:ref:refs/heads/main", true},
		{"repo:acme/app:ref:refs/heads/main", gh, "repo:acme/app:ref:refs/heads/main2", false},
		{"repo:acme/app:ref:refs/heads/main", "https://other.example", "repo:acme/app:ref:refs/heads/main", false},
		{"repo:acme/app:*", gh, "repo:acme/app:environment:prod", true},
		{"repo:acme/app:*", gh, "repo:acme/app-evil:ref:refs/heads/main", false},
		{"repo:acme/app:*", gh, "repo:acme/ap", false},
		{"repo:acme/app:*", gh, "", false},
		{"spiffe://example.org/ns/x/*", gh, "spiffe://example.org/ns/x/sa/y", true},
		{"spiffe://example.org/ns/x/*", gh, "spiffe://example.org/ns/xy/sa/y", false},
	}
	for _, tc := range tests {
		f := storage.FederatedIdentity{Issuer: gh, Subject: tc.registered}
		if got := f.Matches(tc.iss, tc.sub); got != tc.want {
			t.Errorf("%q.Matches(%q, %q) = %v, want %v", tc.registered, tc.iss, tc.sub, got, tc.want)
		}
	}
}

// Every pattern that matches a subject is among the subject's lookups, so the index finds
// every client a pattern names.
func TestSubjectLookups(t *testing.T) {
	t.Parallel()
	got := storage.SubjectLookups("repo:acme/app:ref:refs/heads/main")
	want := []string{"repo:acme/app:ref:refs/heads/main", "repo:*", "repo:acme/*", "repo:acme/app:*", "repo:acme/app:ref:*",
		"repo:acme/app:ref:refs/*", "repo:acme/app:ref:refs/heads/*"}
	if !slices.Equal(got, want) {
		t.Fatalf("SubjectLookups = %q, want %q", got, want)
	}
	sub := "system:serviceaccount:prod:billing"
	for _, p := range []string{"system:serviceaccount:*", "system:serviceaccount:prod:*"} {
		if !(storage.FederatedIdentity{Subject: p}).Matches("", sub) || !slices.Contains(storage.SubjectLookups(sub), p) {
			t.Errorf("pattern %q: matches %q but is not among its lookups", p, sub)
		}
	}
}
