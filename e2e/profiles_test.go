package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// sessionCommand is one "$ " line of a README shell session and what the README prints after it.
type sessionCommand struct {
	cmd, printed string
}

// readmeSessions returns the commands of the ```sh blocks in the README section titled title.
func readmeSessions(t *testing.T, title string) []sessionCommand {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## "+title+"\n")
	if start < 0 {
		t.Fatalf("README has no section %q", title)
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var out []sessionCommand
	inBlock := false
	for _, line := range strings.Split(section, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inBlock = true
		case strings.HasPrefix(line, "```"):
			inBlock = false
		case inBlock && strings.HasPrefix(line, "$ "):
			out = append(out, sessionCommand{cmd: strings.TrimPrefix(line, "$ ")})
		case inBlock && len(out) > 0:
			out[len(out)-1].printed += line + "\n"
		}
	}
	return out
}

var jsonKey = regexp.MustCompile(`"([A-Za-z_]+)":`)

func jsonKeys(s string) []string {
	var keys []string
	for _, m := range jsonKey.FindAllStringSubmatch(s, -1) {
		keys = append(keys, m[1])
	}
	return keys
}

// TestREADMEProfileSessions runs the README's seed API profile sessions against the real
// binary exactly as printed (go run . is the binary, localhost:8080 the server's address), one
// shell for all of them as a reader's terminal is, and checks that each answer has the fields
// the README shows, in its order. The server is started as the README starts it.
func TestREADMEProfileSessions(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's sessions need %s: %v", tool, err)
		}
	}
	cmds := readmeSessions(t, "Seed API profiles")
	var serveLine string
	var run []sessionCommand
	for _, c := range cmds {
		if strings.HasSuffix(c.cmd, " serve") {
			serveLine = c.cmd
			continue
		}
		run = append(run, c)
	}
	env, ok := strings.CutSuffix(serveLine, " go run . serve")
	if !ok || len(run) < 10 {
		t.Fatalf("README sessions not found: serve line %q, %d commands", serveLine, len(run))
	}
	dir := t.TempDir()
	p := start(t, dir, strings.Fields(env)...)
	for _, profile := range []string{"atol", "rahmet", "tokens-make"} {
		if !p.stderr.Has(`msg="seed API profile on" profile=` + profile + " ") {
			t.Fatalf("no start-up line for %s:\n%s", profile, p.stderr.String())
		}
	}

	var script strings.Builder
	script.WriteString("set -eu\n")
	for i, c := range run {
		cmd := strings.ReplaceAll(c.cmd, "go run .", binary)
		cmd = strings.ReplaceAll(cmd, "http://localhost:8080", p.url)
		fmt.Fprintf(&script, "echo '@@%d'\n%s\necho\n", i, cmd)
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = dir
	sh.Env = append(os.Environ(), "TOKENSMITH_ADMIN_URL="+p.adminURL)
	var stdout, stderr bytes.Buffer
	sh.Stdout, sh.Stderr = &stdout, &stderr
	if err := sh.Run(); err != nil {
		t.Fatalf("the sessions failed: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	outputs := regexp.MustCompile(`(?m)^@@\d+\n`).Split(stdout.String(), -1)[1:]
	if len(outputs) != len(run) {
		t.Fatalf("%d outputs for %d commands:\n%s", len(outputs), len(run), stdout.String())
	}
	for i, c := range run {
		got, want := jsonKeys(outputs[i]), jsonKeys(c.printed)
		if !slices.Equal(got, want) || strings.TrimSpace(c.printed) != "" && strings.TrimSpace(outputs[i]) == "" {
			t.Errorf("$ %s\nanswered: %s\nthe README shows: %s", c.cmd, outputs[i], c.printed)
		}
	}
}
