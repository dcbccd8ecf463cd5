package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// markdownLink finds the targets of [text](target), ![alt](target) and <img src="target">.
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)|<img[^>]*\ssrc="([^"]+)"`)

// inlineCode is a `code span`, whose text is not a link.
var inlineCode = regexp.MustCompile("`[^`]*`")

// headingSlug is the anchor GitHub gives a heading: lower case, punctuation other than '-' and
// '_' dropped, spaces turned into hyphens.
func headingSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// pageAnchors returns the anchors of a Markdown page's headings; a repeated heading gets -1,
// -2… as on GitHub.
func pageAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	count := map[string]int{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimLeft(line, "#")
		if !strings.HasPrefix(title, " ") {
			continue
		}
		slug := headingSlug(strings.ReplaceAll(title, "`", ""))
		if n := count[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		count[slug]++
	}
	return anchors
}

// pageLinks returns the relative link targets of a Markdown page, outside code, with the line
// each is on.
func pageLinks(text string) (targets []string, lines []int) {
	inFence := false
	for n, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range markdownLink.FindAllStringSubmatch(inlineCode.ReplaceAllString(line, ""), -1) {
			target := m[1] + m[2]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			targets, lines = append(targets, target), append(lines, n+1)
		}
	}
	return targets, lines
}

// brokenLinks returns what is wrong with the relative links of page (a path under root): a
// file that does not exist, or an anchor no heading of the linked page has.
func brokenLinks(root, page string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, page))
	if err != nil {
		return nil, err
	}
	var broken []string
	targets, lines := pageLinks(string(b))
	for i, target := range targets {
		path, anchor, _ := strings.Cut(target, "#")
		file := page
		if path != "" {
			file = filepath.Join(filepath.Dir(page), path)
		}
		text, err := os.ReadFile(filepath.Join(root, file))
		switch {
		case err != nil && !isDir(filepath.Join(root, file)):
			broken = append(broken, fmt.Sprintf("%s:%d: %s: no such file", page, lines[i], target))
		case anchor != "" && strings.HasSuffix(file, ".md") && !pageAnchors(string(text))[anchor]:
			broken = append(broken, fmt.Sprintf("%s:%d: %s: %s has no heading with that anchor", page, lines[i], target, file))
		}
	}
	return broken, nil
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// TestDocsLinks checks that every relative link of README.md and docs/*.md leads to a file, or
// a directory, that exists, and every anchor to a heading of the page it names.
func TestDocsLinks(t *testing.T) {
	t.Parallel()
	for _, page := range docPages(t) {
		t.Run(page, func(t *testing.T) {
			t.Parallel()
			broken, err := brokenLinks("..", page)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range broken {
				t.Error(b)
			}
		})
	}
}

// TestBrokenLinks pins what the link check finds, on pages written for it.
func TestBrokenLinks(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(name, text string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/a.md", "# A\n\n## Quotas: daily, hourly and `shadow`\n\n## Twice\n\n## Twice\n")
	write("docs/pic.png", "")
	tests := []struct {
		name, link string
		broken     bool
	}{
		{"file", "[a](docs/a.md)", false},
		{"heading with punctuation and code", "[q](docs/a.md#quotas-daily-hourly-and-shadow)", false},
		{"repeated heading", "[t](docs/a.md#twice-1)", false},
		{"image", "![p](docs/pic.png) <img src=\"docs/pic.png\">", false},
		{"directory", "[d](docs/)", false},
		{"web link", "[w](https://example.com/nowhere)", false},
		{"inside a code span", "`[x](nowhere.md)`", false},
		{"missing file", "[m](docs/missing.md)", true},
		{"missing anchor", "[m](docs/a.md#nowhere)", true},
		{"missing image", "<img src=\"docs/missing.png\" width=\"2\">", true},
		{"missing anchor on the same page", "[m](#nowhere)", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			page := "README-" + strings.ReplaceAll(tc.name, " ", "-") + ".md"
			write(page, "# Title\n\n"+tc.link+"\n")
			broken, err := brokenLinks(root, page)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(broken) > 0; got != tc.broken {
				t.Fatalf("broken links of %q: %q, want broken: %v", tc.link, broken, tc.broken)
			}
		})
	}
}
