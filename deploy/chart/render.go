// Package chart renders the Tokensmith Helm chart (deploy/helm/tokensmith) with Helm as a
// library, the way `helm template` does, so tests and the generator of the plain manifests
// need no helm binary and no cluster.
package chart

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	release "helm.sh/helm/v4/pkg/release/v1"
)

// ReleaseName is the release every rendering uses: with it the objects are named
// "tokensmith", as in the plain manifests.
const ReleaseName = "tokensmith"

// Namespace is the namespace of every rendering.
const Namespace = "tokensmith"

// DeployDir is the deploy/ directory: the module's root, found from this file's place so that
// both `go test` (run in the package's directory) and `go run ./gen` find the chart.
func DeployDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("chart: cannot find the source directory")
	}
	return filepath.Dir(filepath.Dir(file))
}

// Dir is the chart's directory.
func Dir() string { return filepath.Join(DeployDir(), "helm", "tokensmith") }

// Doc is one rendered YAML document.
type Doc struct {
	// Source is the template it came from, e.g. "tokensmith/templates/deployment.yaml".
	Source string
	// YAML is the document's text.
	YAML string
}

// Options says what to render with: values files (like -f) and key=value settings (like
// --set), applied in that order over the chart's values.yaml.
type Options struct {
	ValueFiles []string
	Set        []string
}

// Render renders the chart client-side, validating the values against values.schema.json,
// and returns its documents in the order Helm installs them. NOTES.txt is not among them.
func Render(o Options) ([]Doc, error) {
	ch, err := loader.Load(Dir())
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	vals, err := (&values.Options{ValueFiles: o.ValueFiles, Values: o.Set}).MergeValues(getter.Providers{})
	if err != nil {
		return nil, err
	}
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = ReleaseName
	install.Namespace = Namespace
	install.Replace = true
	rel, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("render: unexpected release type %T", rel)
	}
	if len(r.Hooks) > 0 {
		return nil, errors.New("render: the chart has hooks, which the plain manifests cannot carry")
	}
	return Split(r.Manifest), nil
}

// Split cuts a rendered manifest ("---" separated, each document led by a "# Source:" line)
// into its documents, leaving out empty ones.
func Split(manifest string) []Doc {
	var docs []Doc
	for _, part := range strings.Split(manifest, "\n---") {
		part = strings.TrimPrefix(strings.TrimSpace(part), "---")
		src, body, _ := strings.Cut(strings.TrimSpace(part), "\n")
		if !strings.HasPrefix(src, "# Source: ") {
			src, body = "", strings.TrimSpace(part)
		}
		if strings.TrimSpace(body) == "" {
			continue
		}
		docs = append(docs, Doc{Source: strings.TrimPrefix(src, "# Source: "), YAML: strings.TrimSpace(body) + "\n"})
	}
	return docs
}

// Sources lists the templates that rendered a document, sorted.
func Sources(docs []Doc) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.Source)
	}
	sort.Strings(out)
	return out
}
