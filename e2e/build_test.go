package e2e

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestShippedBuildsLeaveOutMessagePack: every build of the server that ships or is measured
// (the Dockerfile's two, the CI's, this suite's) passes the nomsgpack tag, and the tag still
// does what it is for: Gin's MessagePack codec (github.com/ugorji/go), which the server never
// uses, is not in the binary. A Gin release that renamed the tag, or a build line that lost
// it, would bring back 9 MB of code and about 1.5 MiB of resident pages under load.
func TestShippedBuildsLeaveOutMessagePack(t *testing.T) {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range info.Deps {
		if strings.Contains(dep.Path, "ugorji") {
			t.Errorf("the binary built with nomsgpack still links %s", dep.Path)
		}
	}
	goBuild := regexp.MustCompile(`go build\b[^\n]*`)
	for _, file := range []string{"Dockerfile", ".ci/run"} {
		body, err := os.ReadFile(filepath.Join("..", file))
		if err != nil {
			t.Fatal(err)
		}
		lines := goBuild.FindAllString(string(body), -1)
		servers := 0
		for _, line := range lines {
			if !strings.HasSuffix(strings.TrimRight(line, ` \`), " .") {
				continue // another program (the benchmark)
			}
			servers++
			if !regexp.MustCompile(`-tags \S*\bnomsgpack\b`).MatchString(line) {
				t.Errorf("%s builds the server without the nomsgpack tag: %s", file, line)
			}
		}
		if servers != 2 {
			t.Errorf("%s: %d builds of the server found, want its 2 (pure Go, OpenSSL): %q", file, servers, lines)
		}
	}
}
