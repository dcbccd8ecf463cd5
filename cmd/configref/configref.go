// Package configref writes the configuration reference (docs/configuration.md) from config.Config
// itself: the YAML keys and environment variables from the struct tags, the defaults from
// config.Default, the meanings from the fields' doc comments. The page cannot drift from the
// code because a test here renders it again and compares (go generate ./config writes it).
package configref

import (
	"bytes"
	_ "embed"
	"encoding"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"

	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/profiles"
)

//go:embed page.md.tmpl
var pageTemplate string

// Setting is one row of the reference: a leaf field of config.Config.
type Setting struct {
	// Key is the YAML key, dotted below a section ("tokens.refresh_ttl").
	Key string
	// Env is the environment variable, or "" for a field the environment does not set by tag.
	Env string
	// Default is config.Default's value as it would be written in YAML, "" when empty.
	Default string
	// Doc is the field's doc comment as one line, with Go field names turned into YAML keys.
	Doc string
}

// Section is one table: the top-level settings, or one nested struct such as tokens.
type Section struct {
	// Key is the YAML key of the nested struct, "" for the top level.
	Key string
	// Doc is the nested struct field's doc comment (empty for the top level).
	Doc      string
	Settings []Setting
}

// Render returns the reference page. srcDir is the config package's source directory, read for
// the doc comments that reflection cannot see.
func Render(srcDir string) ([]byte, error) {
	docs, err := fieldDocs(srcDir)
	if err != nil {
		return nil, err
	}
	sections, err := Sections(docs)
	if err != nil {
		return nil, err
	}
	profs := profiles.All()
	t, err := template.New("page").Funcs(template.FuncMap{"cell": cell, "sentence": sentence, "join": strings.Join}).Parse(pageTemplate)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = t.Execute(&buf, map[string]any{
		"Sections": sections, "Profiles": profs, "EnvPrefix": config.EnvPrefix, "DataDir": config.Default().DataDir,
	})
	return buf.Bytes(), err
}

// Sections walks config.Config: its own leaf fields make the first section, each nested struct
// one more. docs maps "Type.Field" to the field's doc comment. A field with neither a YAML key
// nor a doc comment is an error: it would be a setting nobody can find.
func Sections(docs map[string]string) ([]Section, error) {
	t := reflect.TypeFor[config.Config]()
	def := reflect.ValueOf(config.Default())
	names := goNames(t, "")
	top := Section{}
	var nested []Section
	for i := range t.NumField() {
		f := t.Field(i)
		key := yamlKey(f)
		if key == "" {
			continue // set by Load, not by the operator
		}
		if f.Type.Kind() == reflect.Struct && !isText(f.Type) {
			s := Section{Key: key, Doc: plain(docs[t.Name()+"."+f.Name], f.Name, names)}
			rows, err := settings(f.Type, key+".", config.EnvPrefix+f.Tag.Get("envPrefix"), def.Field(i), docs, names)
			if err != nil {
				return nil, err
			}
			s.Settings = rows
			nested = append(nested, s)
			continue
		}
		row, err := setting(t, f, "", config.EnvPrefix, def.Field(i), docs, names)
		if err != nil {
			return nil, err
		}
		top.Settings = append(top.Settings, row)
	}
	return append([]Section{top}, nested...), nil
}

// settings are the rows of the nested struct t, whose keys start with keyPrefix and whose
// variables with envPrefix.
func settings(t reflect.Type, keyPrefix, envPrefix string, def reflect.Value, docs map[string]string, names map[string]string) ([]Setting, error) {
	var out []Setting
	for i := range t.NumField() {
		f := t.Field(i)
		if yamlKey(f) == "" {
			continue
		}
		row, err := setting(t, f, keyPrefix, envPrefix, def.Field(i), docs, names)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, nil
}

func setting(owner reflect.Type, f reflect.StructField, keyPrefix, envPrefix string, def reflect.Value, docs map[string]string, names map[string]string) (Setting, error) {
	doc, ok := docs[owner.Name()+"."+f.Name]
	if !ok || strings.TrimSpace(doc) == "" {
		return Setting{}, fmt.Errorf("config.%s.%s has no doc comment: it is the setting's description in the reference", owner.Name(), f.Name)
	}
	s := Setting{Key: keyPrefix + yamlKey(f), Default: value(def), Doc: plain(doc, f.Name, names)}
	if env, _, _ := strings.Cut(f.Tag.Get("env"), ","); env != "" && env != "-" {
		s.Env = envPrefix + env
	}
	return s, nil
}

func yamlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if k == "-" {
		return ""
	}
	return k
}

var textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

func isText(t reflect.Type) bool { return t.Implements(textMarshaler) }

// value writes a default the way it is written in YAML.
func value(v reflect.Value) string {
	if isText(v.Type()) {
		b, _ := v.Interface().(encoding.TextMarshaler).MarshalText()
		return string(b)
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return ""
		}
		if v.Kind() == reflect.Slice {
			parts := make([]string, v.Len())
			for i := range parts {
				parts[i] = fmt.Sprint(v.Index(i).Interface())
			}
			return strings.Join(parts, ",")
		}
	}
	return fmt.Sprint(v.Interface())
}

// goNames maps every field's Go name to its full YAML key, so a doc comment that names another
// field names it the way the reader writes it.
func goNames(t reflect.Type, prefix string) map[string]string {
	out := map[string]string{}
	for i := range t.NumField() {
		f := t.Field(i)
		key := yamlKey(f)
		if key == "" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && !isText(f.Type) {
			for k, v := range goNames(f.Type, prefix+key+".") {
				out[k] = v
			}
		}
		out[f.Name] = prefix + key
	}
	return out
}

var word = regexp.MustCompile(`[A-Z][A-Za-z0-9]*`)

// plain turns a field's doc comment into one line for a table cell: the leading "Name is" goes
// (the row names the setting), and other fields' Go names become their YAML keys.
func plain(doc, name string, names map[string]string) string {
	s := strings.Join(strings.Fields(doc), " ")
	if rest, ok := strings.CutPrefix(s, name+" "); ok {
		s = rest
		for _, verb := range []string{"is ", "are "} {
			if rest, ok := strings.CutPrefix(s, verb); ok {
				s = rest
				break
			}
		}
	}
	return word.ReplaceAllStringFunc(s, func(w string) string {
		if k, ok := names[w]; ok {
			return "`" + k + "`"
		}
		return w
	})
}

// cell escapes what would end a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// sentence starts s with a capital letter, for a doc comment that stands as a paragraph.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// fieldDocs reads the doc comments of the struct fields declared in srcDir's Go files (tests
// left out), keyed "Type.Field".
func fieldDocs(srcDir string) (map[string]string, error) {
	paths, err := filepath.Glob(filepath.Join(srcDir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			for _, fld := range st.Fields.List {
				for _, id := range fld.Names {
					out[ts.Name.Name+"."+id.Name] = fld.Doc.Text()
				}
			}
			return false
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no struct fields found in %s: give the config package's directory", srcDir)
	}
	return out, nil
}
