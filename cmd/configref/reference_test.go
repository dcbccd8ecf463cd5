package configref_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/cmd/configref"
)

// TestReferenceIsCurrent: docs/configuration.md is what the generator makes of config.Config
// today, so a setting added, renamed, re-defaulted or re-documented shows on the page.
func TestReferenceIsCurrent(t *testing.T) {
	t.Parallel()
	got, err := configref.Render("../../config")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatalf("%v: run go generate ./config", err)
	}
	if !bytes.Equal(got, want) {
		gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gotLines), len(wantLines)) {
			if gotLines[i] != wantLines[i] {
				t.Fatalf("docs/configuration.md is stale (line %d is %q, the config says %q): run go generate ./config",
					i+1, wantLines[i], gotLines[i])
			}
		}
		t.Fatalf("docs/configuration.md is stale (%d lines, the config makes %d): run go generate ./config", len(wantLines), len(gotLines))
	}
}
