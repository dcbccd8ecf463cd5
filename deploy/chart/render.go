// Package chart renders the Tokensmith Helm chart (deploy/helm/tokensmith) with Helm as a
// library, the way `helm template` does, so tests and the generator of the plain manifests
// need no helm binary and no cluster.
package chart

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"helm.sh/helm/v4/pkg/strvals"
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
//
// It does what `helm template` does (values merged the way -f and --set merge them, the
// schema checked, the templates rendered with no cluster, the manifests sorted in install
// order) with Helm's engine rather than its install action: the action pulls in the whole
// Kubernetes client, about twice the packages this module would otherwise compile.
func Render(o Options) ([]Doc, error) {
	ch, err := loader.Load(Dir())
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	vals := map[string]any{}
	for _, f := range o.ValueFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		v, err := loader.LoadValues(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", f, err)
		}
		vals = loader.MergeMaps(vals, v)
	}
	for _, kv := range o.Set {
		if err := strvals.ParseInto(kv, vals); err != nil {
			return nil, fmt.Errorf("failed parsing --set data: %w", err)
		}
	}
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{
		Name: ReleaseName, Namespace: Namespace, Revision: 1, IsInstall: true,
	}, common.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return nil, err
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	if len(hooks) > 0 {
		return nil, errors.New("render: the chart has hooks, which the plain manifests cannot carry")
	}
	var b strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	return Split(b.String()), nil
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
