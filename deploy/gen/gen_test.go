package main

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/tokensmith/tokensmith/deploy/chart"
)

// TestGeneratedFilesAreCurrent fails when deploy/kubernetes/ or the rules file differ from
// what the chart renders now: run "go run ./gen" in deploy/ and commit the result.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	t.Parallel()
	want, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range want {
		got, err := os.ReadFile(filepath.Join(chart.DeployDir(), filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("%s: %v (run go run ./gen in deploy/)", p, err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s is stale: run go run ./gen in deploy/", p)
		}
	}
	onDisk, err := filepath.Glob(filepath.Join(chart.DeployDir(), "kubernetes", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range onDisk {
		if _, ok := want[path.Join("kubernetes", filepath.Base(p))]; !ok {
			t.Errorf("kubernetes/%s is not rendered by the chart any more: run go run ./gen in deploy/", filepath.Base(p))
		}
	}
}
