// Package observability holds no code: its tests check the Grafana dashboard and the
// Prometheus alert rules beside them against the metrics the server really exposes, and run
// promtool on the rules.
package observability

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	rulesFile     = "tokensmith-rules.yaml"
	rulesTestFile = "tokensmith-rules.test.yaml"
	dashboardFile = "tokensmith-dashboard.json"
)

// collectorMetrics are the few Go runtime and process collector series the dashboard shows;
// TestExposedMetrics checks that the metrics package registers those collectors.
var collectorMetrics = []string{"process_resident_memory_bytes", "process_cpu_seconds_total", "go_goroutines"}

// exposed reads the metrics package's source and returns every series name the server exposes: each
// tokensmith_* name, with _bucket, _sum and _count for histograms, and collectorMetrics.
func exposed(t *testing.T) map[string]bool {
	t.Helper()
	path := filepath.Join("..", "..", "metrics")
	files, err := filepath.Glob(filepath.Join(path, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	histograms := map[string]bool{}
	collectors := map[string]bool{}
	inspect := func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if s, err := strconv.Unquote(n.Value); err == nil && regexp.MustCompile(`^tokensmith_[a-z_]+$`).MatchString(s) {
				names[s] = true
			}
		case *ast.CompositeLit:
			if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "HistogramOpts" {
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if id, isID := kv.Key.(*ast.Ident); ok && isID && id.Name == "Name" {
						if lit, ok := kv.Value.(*ast.BasicLit); ok {
							s, _ := strconv.Unquote(lit.Value)
							histograms[s] = true
						}
					}
				}
			}
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && x.Name == "collectors" {
				collectors[n.Sel.Name] = true
			}
		}
		return true
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, inspect)
	}
	if len(names) < 15 || len(histograms) < 2 {
		t.Fatalf("found %d metric names and %d histograms in %s; the reader is broken", len(names), len(histograms), path)
	}
	for h := range histograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			names[h+suffix] = true
		}
	}
	if !collectors["NewGoCollector"] || !collectors["NewProcessCollector"] {
		t.Fatalf("%s registers collectors %v, want NewGoCollector and NewProcessCollector", path, collectors)
	}
	for _, m := range collectorMetrics {
		names[m] = true
	}
	return names
}

// metricNames returns the series names a PromQL expression queries: the identifiers that are
// Tokensmith's or the Go and process collectors'.
func metricNames(expr string) []string {
	// Strings are label values, not names.
	expr = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, `""`)
	var out []string
	for _, id := range regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`).FindAllString(expr, -1) {
		if strings.HasPrefix(id, "tokensmith_") || strings.HasPrefix(id, "process_") || strings.HasPrefix(id, "go_") {
			out = append(out, id)
		}
	}
	return out
}

func TestExposedMetrics(t *testing.T) {
	t.Parallel()
	names := exposed(t)
	for _, want := range []string{"tokensmith_tokens_issued_total", "tokensmith_token_request_duration_seconds_bucket", "tokensmith_live_replicas"} {
		if !names[want] {
			t.Errorf("%s is not among the names read from metrics.go", want)
		}
	}
	if got, want := metricNames(`sum by (grant) (rate(tokensmith_tokens_issued_total{job="go_x"}[5m])) / go_goroutines`),
		[]string{"tokensmith_tokens_issued_total", "go_goroutines"}; !slices.Equal(got, want) {
		t.Errorf("metricNames: got %v, want %v", got, want)
	}
}

type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func TestDashboardQueriesExposedMetrics(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("title %q, uid %q: want both", d.Title, d.UID)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("template variables %v: want a datasource variable, so the dashboard imports into any Grafana", vars)
	}

	names := exposed(t)
	queried := map[string]bool{}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d is used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q queries nothing", p.Title)
			}
			for _, tg := range p.Targets {
				ms := metricNames(tg.Expr)
				if len(ms) == 0 {
					t.Errorf("panel %q: %q queries no Tokensmith metric", p.Title, tg.Expr)
				}
				for _, m := range ms {
					if !names[m] {
						t.Errorf("panel %q queries %s, which the server does not expose", p.Title, m)
					}
					queried[m] = true
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	// What an operator must see: token rate by grant, errors, 429s, latency, store outage,
	// signing-key age, replica count, audit drops.
	for _, m := range []string{
		"tokensmith_tokens_issued_total", "tokensmith_token_requests_total", "tokensmith_requests_limited_total",
		"tokensmith_token_request_duration_seconds_bucket", "tokensmith_store_call_errors_total",
		"tokensmith_signing_key_age_seconds", "tokensmith_live_replicas", "tokensmith_audit_events_dropped_total",
	} {
		if !queried[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// headings returns the anchors of docs/kubernetes.md's headings, as GitHub makes them.
func headings(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		h = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(h, "")
		out[strings.ReplaceAll(h, " ", "-")] = true
	}
	return out
}

func TestEveryAlertIsDocumentedAndQueriesExposedMetrics(t *testing.T) {
	t.Parallel()
	var rf ruleFile
	readYAML(t, rulesFile, &rf)
	names := exposed(t)
	anchors := headings(t)
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" {
				t.Errorf("group %s has a rule that is not an alert: %q", g.Name, r.Expr)
				continue
			}
			for _, m := range metricNames(r.Expr) {
				if !names[m] {
					t.Errorf("%s queries %s, which the server does not expose", r.Alert, m)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want a summary and a description", r.Alert)
			}
			_, anchor, _ := strings.Cut(r.Annotations["runbook_url"], "#")
			if anchor != strings.ToLower(r.Alert) || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q, want docs/kubernetes.md#%s, a heading there", r.Alert, r.Annotations["runbook_url"], strings.ToLower(r.Alert))
			}
		}
	}
	// The alerts an operator needs: token error rate, 429 rate, store outage, p99 latency,
	// signing-key age and replica count.
	for _, want := range []string{"TokensmithTokenErrors", "TokensmithRateLimited", "TokensmithStoreUnavailable",
		"TokensmithSlowTokens", "TokensmithSigningKeyOld", "TokensmithReplicasMissing", "TokensmithDown"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s among %v", want, alerts)
		}
	}
}

// TestEveryAlertIsTestedFiringAndQuiet reads the promtool test file: each alert needs a case
// where it fires and one where it stays quiet, or the test proves only half of it.
func TestEveryAlertIsTestedFiringAndQuiet(t *testing.T) {
	t.Parallel()
	var rf ruleFile
	readYAML(t, rulesFile, &rf)
	var tests struct {
		RuleFiles          []string `json:"rule_files"`
		EvaluationInterval string   `json:"evaluation_interval"`
		Tests              []struct {
			Interval    string `json:"interval"`
			InputSeries []struct {
				Series string `json:"series"`
				Values string `json:"values"`
			} `json:"input_series"`
			AlertRuleTest []struct {
				EvalTime  string            `json:"eval_time"`
				Alertname string            `json:"alertname"`
				ExpAlerts []json.RawMessage `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	readYAML(t, rulesTestFile, &tests)
	if !slices.Equal(tests.RuleFiles, []string{rulesFile}) {
		t.Errorf("rule_files: got %v, want [%s]", tests.RuleFiles, rulesFile)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if !fires[r.Alert] {
				t.Errorf("%s: no case where it fires", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("%s: no case where it stays quiet", r.Alert)
			}
		}
	}
}

// promtool finds the promtool binary (Debian's prometheus package installs it). Without it
// the test is skipped, unless TOKENSMITH_REQUIRE_PROMTOOL=1, as in CI, where that fails.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("TOKENSMITH_REQUIRE_PROMTOOL") == "1" {
		t.Fatalf("promtool: %v (apt-get install prometheus)", err)
	}
	t.Skipf("promtool: %v; set TOKENSMITH_REQUIRE_PROMTOOL=1 to make this a failure", err)
	return ""
}

func TestRulesPassPromtool(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", rulesFile},
		{"test", "rules", rulesTestFile},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			if !strings.Contains(string(out), "SUCCESS") {
				t.Errorf("promtool %s printed no SUCCESS:\n%s", strings.Join(args, " "), out)
			}
		})
	}
}
