package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"
)

// The documentation's shell sessions are run against the real binary, so what the docs print
// is what a reader gets. A session is every "$ " line of the ```sh blocks under one "## "
// heading of README.md or docs/*.md (its "###" subsections included), with what the page shows
// after each line; the lines run in one shell, as a reader's terminal, against a fresh server.
//
//   - A session may open with a serve line ("$ go run . serve" or "$ tokensmith serve", after
//     environment assignments such as TOKENSMITH_PROFILES=…): the server is started with that
//     environment, and the lines shown after it must appear, in order, among what it printed
//     (standard output, then its log). Without one, the section gets a fresh server of its own.
//   - "go run ." and the tokensmith command are the binary under test; http://localhost:8080
//     and http://127.0.0.1:8081 are the server's listeners.
//   - What a command prints must match what the page shows, line by line (blank lines aside).
//     A JSON line matches by its structure: the same keys in the same order, the same strings
//     and literals. A text line matches word by word. A line "…" alone stands for any number of
//     lines, a "…" inside a word or a JSON string for any text. A word or JSON value with a
//     digit in it (an id, a secret, a time) is a value that changes every run and may differ;
//     one of 12 characters or more stands, from then on in its session, for what the run
//     printed in its place: later commands get the real value, and later output must show it
//     again where the page does.
//   - A command the page shows no output for must print none.
//   - A ```sh block preceded by a "<!-- not run: why -->" line is not run.

// sessionCommand is one "$ " line of a session (with its continuation lines) and what the page
// shows after it.
type sessionCommand struct {
	cmd, printed string
	line         int
}

// session is the commands of one "## " section of one page.
type session struct {
	file, section string
	cmds          []sessionCommand
}

// docPages returns README.md and docs/*.md, relative to the repository root.
func docPages(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pages {
		pages[i] = strings.TrimPrefix(p, "../")
	}
	return append([]string{"README.md"}, pages...)
}

// docSessions returns the sessions of the page file (relative to the repository root), in the
// order they appear.
func docSessions(t *testing.T, file string) []session {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	var out []session
	section, fence, skip, prev := "", "", false, ""
	// continued: the last line was a command ending in a backslash, so this one goes on with it.
	continued := false
	for n, line := range strings.Split(string(b), "\n") {
		switch {
		case fence == "" && strings.HasPrefix(line, "```"):
			fence = line
			skip = strings.HasPrefix(strings.TrimSpace(prev), "<!-- not run")
			continued = false
		case fence != "" && strings.HasPrefix(line, "```"):
			fence = ""
		case fence == "" && strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		case fence == "```sh" && !skip:
			if len(out) == 0 || out[len(out)-1].section != section {
				out = append(out, session{file: file, section: section})
			}
			cmds, isCommand := out[len(out)-1].cmds, true
			switch {
			case continued:
				cmds[len(cmds)-1].cmd += "\n" + line
			case strings.HasPrefix(line, "$ "):
				out[len(out)-1].cmds = append(cmds, sessionCommand{cmd: strings.TrimPrefix(line, "$ "), line: n + 1})
			case len(cmds) > 0:
				cmds[len(cmds)-1].printed += line + "\n"
				isCommand = false
			default:
				isCommand = false
			}
			continued = isCommand && strings.HasSuffix(line, "\\")
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	// A section whose ```sh blocks hold no "$ " line has no session.
	kept := out[:0]
	for _, s := range out {
		if len(s.cmds) > 0 {
			kept = append(kept, s)
		}
	}
	return kept
}

// serveEnv reports whether cmd starts the server, and the environment it sets for it.
func serveEnv(cmd string) (env []string, ok bool) {
	f := strings.Fields(cmd)
	for len(f) > 0 && strings.Contains(f[0], "=") {
		env, f = append(env, f[0]), f[1:]
	}
	rest := strings.Join(f, " ")
	return env, rest == "go run . serve" || rest == "tokensmith serve"
}

// outputItem is one line of output, or one JSON value, compared as a unit.
type outputItem struct {
	text string
	json bool
	// any is a "…" line of the page: any number of lines.
	any bool
}

// outputItems splits output into items. On a page (shown) a JSON value may be wrapped: the
// lines after a line that starts it which begin with a space continue it.
func outputItems(s string, shown bool) []outputItem {
	var out []outputItem
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
		case shown && trimmed == "…":
			out = append(out, outputItem{any: true})
		case shown && strings.HasPrefix(line, " ") && len(out) > 0 && out[len(out)-1].json:
			out[len(out)-1].text += "\n" + line
		case strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "["):
			out = append(out, outputItem{text: trimmed, json: true})
		default:
			out = append(out, outputItem{text: trimmed})
		}
	}
	return out
}

// valuesSeen maps a value the page shows (12 characters or more, with a digit) to what the run
// printed in its place.
type valuesSeen map[string]string

func (v valuesSeen) with(learned map[string]string) valuesSeen {
	out := make(valuesSeen, len(v)+len(learned))
	for k, x := range v {
		out[k] = x
	}
	for k, x := range learned {
		out[k] = x
	}
	return out
}

// substitute replaces the values the page showed earlier in cmd with the ones this run
// printed, in one pass, longest first, so a value that contains another is replaced whole.
func (v valuesSeen) substitute(cmd string) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, k, v[k])
	}
	return strings.NewReplacer(pairs...).Replace(cmd)
}

func hasDigit(s string) bool { return strings.ContainsFunc(s, unicode.IsDigit) }

// matchValue compares one word or JSON string the page shows with what the run printed, and
// records in learned what a value of the page stood for.
func matchValue(shown, got string, seen valuesSeen, learned map[string]string) error {
	if strings.Contains(shown, "…") {
		parts := strings.Split(shown, "…")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		if !regexp.MustCompile(`^(?s)` + strings.Join(parts, ".*") + `$`).MatchString(got) {
			return fmt.Errorf("%q does not fit %q", got, shown)
		}
		return nil
	}
	if !hasDigit(shown) {
		if shown != got {
			return fmt.Errorf("%q where the page shows %q", got, shown)
		}
		return nil
	}
	if len([]rune(shown)) < 12 {
		return nil
	}
	want, ok := learned[shown]
	if !ok {
		want, ok = seen[shown]
	}
	if ok && want != got {
		return fmt.Errorf("%q where the page shows %q, which stood for %q earlier in the session", got, shown, want)
	}
	learned[shown] = got
	return nil
}

// matchText compares a text line word by word.
func matchText(shown, got string, seen valuesSeen, learned map[string]string) error {
	sw, gw := strings.Fields(shown), strings.Fields(got)
	if len(sw) != len(gw) {
		return fmt.Errorf("%d words where the page shows %d", len(gw), len(sw))
	}
	for i := range sw {
		if err := matchValue(sw[i], gw[i], seen, learned); err != nil {
			return err
		}
	}
	return nil
}

// matchJSON compares two JSON values token by token: keys, delimiters and literals must be
// equal, strings match as words do, numbers always match (times, lifetimes, codes).
func matchJSON(shown, got string, seen valuesSeen, learned map[string]string) error {
	sd, gd := json.NewDecoder(strings.NewReader(shown)), json.NewDecoder(strings.NewReader(got))
	sd.UseNumber()
	gd.UseNumber()
	for {
		st, serr := sd.Token()
		gt, gerr := gd.Token()
		switch {
		case errors.Is(serr, io.EOF) && errors.Is(gerr, io.EOF):
			return nil
		case serr != nil && !errors.Is(serr, io.EOF):
			return fmt.Errorf("the page's JSON does not parse: %v", serr)
		case gerr != nil && !errors.Is(gerr, io.EOF):
			return fmt.Errorf("not JSON: %v", gerr)
		case serr != nil || gerr != nil:
			return errors.New("the JSON values differ in length")
		}
		switch s := st.(type) {
		case string:
			g, ok := gt.(string)
			if !ok {
				return fmt.Errorf("%v where the page shows %q", gt, s)
			}
			if err := matchValue(s, g, seen, learned); err != nil {
				return err
			}
		case json.Number:
			if _, ok := gt.(json.Number); !ok {
				return fmt.Errorf("%v where the page shows the number %v", gt, s)
			}
		default:
			if st != gt {
				return fmt.Errorf("%v where the page shows %v", gt, st)
			}
		}
	}
}

func matchItem(shown, got outputItem, seen valuesSeen, learned map[string]string) error {
	switch {
	case shown.json != got.json:
		return fmt.Errorf("%q where the page shows %q", got.text, shown.text)
	case shown.json:
		return matchJSON(shown.text, got.text, seen, learned)
	default:
		return matchText(shown.text, got.text, seen, learned)
	}
}

// matchOutput compares what a command printed with what the page shows after it, and returns
// the values it learned. "…" lines may stand for any number of lines.
func matchOutput(shown, got []outputItem, seen valuesSeen) (valuesSeen, error) {
	if len(shown) == 0 && len(got) > 0 {
		return nil, fmt.Errorf("the page shows no output, the command printed %q", got[0].text)
	}
	var firstErr error
	var match func(i, j int, seen valuesSeen) (valuesSeen, bool)
	match = func(i, j int, seen valuesSeen) (valuesSeen, bool) {
		if i == len(shown) {
			if j < len(got) && firstErr == nil {
				firstErr = fmt.Errorf("the command printed more than the page shows: %q", got[j].text)
			}
			return seen, j == len(got)
		}
		if shown[i].any {
			for k := j; k <= len(got); k++ {
				if s, ok := match(i+1, k, seen); ok {
					return s, true
				}
			}
			return nil, false
		}
		if j == len(got) {
			if firstErr == nil {
				firstErr = fmt.Errorf("the page shows more than the command printed: %q", shown[i].text)
			}
			return nil, false
		}
		learned := map[string]string{}
		if err := matchItem(shown[i], got[j], seen, learned); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%q: %w", shown[i].text, err)
			}
			return nil, false
		}
		return match(i+1, j+1, seen.with(learned))
	}
	if s, ok := match(0, 0, seen); ok {
		return s, nil
	}
	return nil, firstErr
}

// matchStartup checks that the lines shown after a serve line appear, in order, among what the
// server printed.
func matchStartup(shown, got []outputItem, seen valuesSeen) (valuesSeen, error) {
	j := 0
	for _, s := range shown {
		if s.any {
			continue // a subsequence already skips what the page leaves out
		}
		found := false
		for ; j < len(got) && !found; j++ {
			learned := map[string]string{}
			if matchItem(s, got[j], seen, learned) == nil {
				seen, found = seen.with(learned), true
			}
		}
		if !found {
			return nil, fmt.Errorf("the server did not print %q (after the lines before it)", s.text)
		}
	}
	return seen, nil
}

// goRun is "go run ." as a command: the binary under test ("go run ./bench" is not).
var goRun = regexp.MustCompile(`go run \.(?:[^\w./-]|$)`)

// asBinary replaces "go run ." in cmd with the binary bin.
func asBinary(cmd, bin string) string {
	return goRun.ReplaceAllStringFunc(cmd, func(m string) string { return bin + strings.TrimPrefix(m, "go run .") })
}

// runSession runs one section's session against a fresh server and checks every answer.
func runSession(t *testing.T, s session) {
	dir := t.TempDir()
	cmds := s.cmds
	var env []string
	var startup string
	if e, ok := serveEnv(cmds[0].cmd); ok {
		env, startup, cmds = e, cmds[0].printed, cmds[1:]
	}
	for _, c := range cmds {
		if _, ok := serveEnv(c.cmd); ok {
			t.Fatalf("%s:%d: a serve line must open its section's session", s.file, c.line)
		}
	}
	p := start(t, dir, env...)
	normalize := func(out string) string {
		out = strings.ReplaceAll(out, p.url, "http://localhost:8080")
		return strings.ReplaceAll(out, p.adminURL, "http://127.0.0.1:8081")
	}

	seen := valuesSeen{}
	if shown := outputItems(startup, true); len(shown) > 0 {
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			got := outputItems(normalize(p.stdout.String()+"\n"+p.stderr.String()), false)
			if seen, err = matchStartup(shown, got, valuesSeen{}); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s:%d: $ %s\n%v\nstandard output:\n%s\nlog:\n%s", s.file, s.cmds[0].line, s.cmds[0].cmd, err, p.stdout.String(), p.stderr.String())
		}
	}

	// One command at a time, in one shell: a command may use what an earlier one printed, so
	// its values are substituted only once the earlier output has been read.
	shell := exec.CommandContext(t.Context(), "bash", "--noprofile", "--norc")
	shell.Dir = dir
	shell.Env = append(os.Environ(), "TOKENSMITH_ADMIN_URL="+p.adminURL,
		"PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))
	stdin, err := shell.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := shell.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// A file, not a buffer: the shell writes it directly, so reading it on a failure races with
	// no copying goroutine.
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	shell.Stderr = stderr
	shellErrors := func() string { b, _ := os.ReadFile(stderr.Name()); return string(b) }
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	// Cleanups run after the test's context is cancelled, which ends a shell stuck in a command.
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		stdin.Close()
		_ = shell.Wait()
		stderr.Close()
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case lines <- strings.TrimSuffix(line, "\n"):
			case <-done:
				return
			}
		}
	}()
	fmt.Fprintln(stdin, "set -euo pipefail")
	for i, c := range cmds {
		cmd := seen.substitute(c.cmd)
		cmd = asBinary(cmd, binary)
		cmd = strings.ReplaceAll(cmd, "http://localhost:8080", p.url)
		cmd = strings.ReplaceAll(cmd, "http://127.0.0.1:8081", p.adminURL)
		end := fmt.Sprintf("@@end %d", i)
		// Braces keep the command in this shell (its variables stay set) while stdin, which
		// carries the session, stays out of its reach.
		fmt.Fprintf(stdin, "{ %s\n} </dev/null\necho; echo '%s'\n", cmd, end)
		var out strings.Builder
		timeout := time.After(time.Minute)
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("%s:%d: $ %s\nthe shell stopped (a command failed):\n%s%s", s.file, c.line, c.cmd, out.String(), shellErrors())
				}
				if line == end {
					break read
				}
				out.WriteString(line + "\n")
			case <-timeout:
				t.Fatalf("%s:%d: $ %s\nno answer within a minute:\n%s%s", s.file, c.line, c.cmd, out.String(), shellErrors())
			}
		}
		got := normalize(out.String())
		next, err := matchOutput(outputItems(c.printed, true), outputItems(got, false), seen)
		if err != nil {
			t.Fatalf("%s:%d: $ %s\n%v\nprinted:\n%s\nthe page shows:\n%s", s.file, c.line, c.cmd, err, got, c.printed)
		}
		seen = next
	}
}

// sessionsWanted are sections that must hold a session of at least so many commands, so a
// parser that finds nothing, or a section renamed away, fails rather than checks nothing.
var sessionsWanted = []struct {
	file, section string
	min           int
}{
	{"README.md", "Thirty seconds with curl", 2},
	{"docs/integrators.md", "A session with curl", 8},
	{"docs/integrators.md", "Revocation and introspection", 6},
	{"docs/integrators.md", "Personal tokens and token exchange", 6},
	{"docs/integrators.md", "Seed API profiles", 10},
	{"docs/integrators.md", "The integration console", 2},
	{"docs/operators.md", "The CLI", 5},
	{"docs/operators.md", "Signing keys and their rotation", 3},
}

// TestDocsSessions runs every shell session of README.md and docs/*.md against the real
// binary as printed (see the comment at the top of this file for how answers are compared),
// each section in one shell of its own against a server of its own.
func TestDocsSessions(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the docs' sessions need %s: %v", tool, err)
		}
	}
	var all []session
	for _, page := range docPages(t) {
		all = append(all, docSessions(t, page)...)
	}
	for _, w := range sessionsWanted {
		n := -1
		for _, s := range all {
			if s.file == w.file && s.section == w.section {
				n = len(s.cmds)
			}
		}
		if n < w.min {
			t.Errorf("%s, section %q: %d commands in its session, want at least %d", w.file, w.section, n, w.min)
		}
	}
	for _, s := range all {
		t.Run(s.file+"/"+s.section, func(t *testing.T) {
			t.Parallel()
			runSession(t, s)
		})
	}
}

func TestAsBinary(t *testing.T) {
	t.Parallel()
	tests := []struct{ cmd, want string }{
		{"go run . client list", "/b/tokensmith client list"},
		{"ID=$(go run .)", "ID=$(/b/tokensmith)"},
		{"go run .", "/b/tokensmith"},
		{"go run ./bench -d 5s", "go run ./bench -d 5s"},
		{"go run ./examples/resource-server &", "go run ./examples/resource-server &"},
	}
	for _, tc := range tests {
		if got := asBinary(tc.cmd, "/b/tokensmith"); got != tc.want {
			t.Errorf("asBinary(%q) = %q, want %q", tc.cmd, got, tc.want)
		}
	}
}

// TestMatchOutput pins the comparison rules the sessions rely on.
func TestMatchOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		shown, got  string
		seen        valuesSeen
		ok          bool
		wantLearned map[string]string
	}{
		{name: "same text", shown: "user alice created\n", got: "user alice created\n", ok: true},
		{name: "other word", shown: "user alice created\n", got: "user bob created\n"},
		{name: "value learned", shown: "id 4ay2cn56sgt2xx\n", got: "id qqqqqqqqqqqqqq\n", ok: true,
			wantLearned: map[string]string{"4ay2cn56sgt2xx": "qqqqqqqqqqqqqq"}},
		{name: "short value free", shown: "at 02:54\n", got: "at 17:01\n", ok: true, wantLearned: map[string]string{}},
		{name: "value seen before must repeat", shown: "id 4ay2cn56sgt2xx\n", got: "id zzzzzzzzzzzzzz\n",
			seen: valuesSeen{"4ay2cn56sgt2xx": "qqqqqqqqqqqqqq"}},
		{name: "fewer words", shown: "a b c\n", got: "a b\n"},
		{name: "wildcard word", shown: "time=… level=INFO\n", got: "time=2026-12-04T17:00 level=INFO\n", ok: true},
		{name: "JSON keys and strings", shown: `{"a":"x","n":1}` + "\n", got: `{"a":"x","n":7}`, ok: true},
		{name: "JSON key order", shown: `{"a":"x","n":1}` + "\n", got: `{"n":1,"a":"x"}`},
		{name: "JSON string differs", shown: `{"error":"invalid_grant"}` + "\n", got: `{"error":"invalid_client"}`},
		{name: "JSON wrapped on the page", shown: "{\"a\":\"eyJ…\",\n \"b\":null}\n", got: `{"a":"eyJhbGci","b":null}`, ok: true},
		{name: "JSON literal differs", shown: `{"b":null}` + "\n", got: `{"b":false}`},
		{name: "elided lines", shown: "HTTP/1.1 200 OK\n…\nContent-Length: 0\n", got: "HTTP/1.1 200 OK\r\nDate: x\r\nX: y\r\nContent-Length: 0\r\n", ok: true},
		{name: "more than shown", shown: "a\n", got: "a\nb\n"},
		{name: "nothing shown, something printed", shown: "", got: "a\n"},
		{name: "nothing shown, nothing printed", shown: "", got: "\n", ok: true, wantLearned: map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seen := tc.seen
			if seen == nil {
				seen = valuesSeen{}
			}
			got, err := matchOutput(outputItems(tc.shown, true), outputItems(tc.got, false), seen)
			if (err == nil) != tc.ok {
				t.Fatalf("matchOutput(%q, %q) = %v, want ok %v", tc.shown, tc.got, err, tc.ok)
			}
			if tc.wantLearned == nil {
				return
			}
			for k, want := range tc.wantLearned {
				if got[k] != want {
					t.Errorf("learned[%q] = %q, want %q", k, got[k], want)
				}
			}
			if len(got) != len(tc.wantLearned)+len(seen) {
				t.Errorf("learned %v, want %v", got, tc.wantLearned)
			}
		})
	}
}
