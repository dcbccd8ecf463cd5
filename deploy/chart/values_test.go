package chart

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestEveryValueIsDocumented reads values.yaml line by line: every key must have a comment
// right above it, or sit inside a key that has one (a free-form block such as resources), or
// be a block whose every key is documented.
func TestEveryValueIsDocumented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(Dir(), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		path      string
		indent    int
		commented bool
		children  []*key
		parent    *key
	}
	root := &key{indent: -1}
	var prev string
	stack := []*key{root}
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		isKey := trimmed != "" && !strings.HasPrefix(trimmed, "#") && !strings.HasPrefix(trimmed, "-") && strings.Contains(trimmed, ":")
		if isKey {
			for len(stack) > 1 && stack[len(stack)-1].indent >= indent {
				stack = stack[:len(stack)-1]
			}
			parent := stack[len(stack)-1]
			name, _, _ := strings.Cut(trimmed, ":")
			k := &key{path: strings.TrimPrefix(parent.path+"."+name, "."), indent: indent,
				commented: strings.HasPrefix(prev, "#"), parent: parent}
			parent.children = append(parent.children, k)
			stack = append(stack, k)
		}
		if trimmed != "" {
			prev = trimmed
		}
	}
	var documented func(k *key) bool
	documented = func(k *key) bool {
		if k.commented {
			return true
		}
		if len(k.children) == 0 {
			for p := k.parent; p != nil; p = p.parent {
				if p.commented {
					return true
				}
			}
			return false
		}
		for _, c := range k.children {
			if !documented(c) {
				return false
			}
		}
		return true
	}
	var walk func(k *key)
	count := 0
	walk = func(k *key) {
		for _, c := range k.children {
			count++
			if !documented(c) {
				t.Errorf("values.yaml: %s has no comment", c.path)
			}
			walk(c)
		}
	}
	walk(root)
	if count < 50 {
		t.Fatalf("read %d keys from values.yaml; the reader is broken", count)
	}
}

// TestSchemaKnowsEveryServerSetting compares the configuration keys values.schema.json allows
// under config with the yaml tags of the server's config.Config: a key the server gains must
// be added to the schema (which refuses unknown keys), and a key the schema has must exist.
func TestSchemaKnowsEveryServerSetting(t *testing.T) {
	t.Parallel()
	// Every non-test file of the package, wherever the type lives.
	files, err := filepath.Glob(filepath.Join(DeployDir(), "..", "config", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var server []string
	inspect := func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Config" {
			return true
		}
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			if field.Tag == nil {
				continue
			}
			tag, _ := strconv.Unquote(field.Tag.Value)
			name, _, _ := strings.Cut(reflect.StructTag(tag).Get("yaml"), ",")
			if name != "" && name != "-" {
				server = append(server, name)
			}
		}
		return false
	}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, inspect)
	}
	if len(server) < 20 {
		t.Fatalf("found %d keys in config.Config; the parser is broken", len(server))
	}

	b, err := os.ReadFile(filepath.Join(Dir(), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Config struct {
				Properties           map[string]json.RawMessage `json:"properties"`
				AdditionalProperties bool                       `json:"additionalProperties"`
			} `json:"config"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Properties.Config.AdditionalProperties {
		t.Error("the schema's config allows any key; want only the server's")
	}
	var inSchema []string
	for k := range schema.Properties.Config.Properties {
		inSchema = append(inSchema, k)
	}
	slices.Sort(server)
	slices.Sort(inSchema)
	if !slices.Equal(server, inSchema) {
		t.Errorf("config keys:\n got (schema) %v\nwant (server) %v", inSchema, server)
	}
}
