// Command gendoc writes the configuration reference, docs/configuration.md, from config.Config.
// It is run by `go generate ./config`, in the config directory (hence its default paths).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tokensmith/tokensmith/cmd/configref"
)

func main() {
	src := flag.String("src", ".", "the config package's source directory")
	out := flag.String("o", "../docs/configuration.md", "the page to write")
	flag.Parse()
	page, err := configref.Render(*src)
	if err == nil {
		err = os.WriteFile(*out, page, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}
