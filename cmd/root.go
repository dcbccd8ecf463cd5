// Package cmd holds the tokensmith command line: one file per subcommand. serve runs the
// server; every other command is a thin client of the admin API.
package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/tokensmith/tokensmith/cmd.Version=…".
var Version = "dev"

// globals are the flags every management command shares.
type globals struct {
	adminURL string
	json     bool
	out      io.Writer
}

// Execute runs the command line and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	g := &globals{out: stdout}
	root := &cobra.Command{
		Use:           "tokensmith",
		Short:         "OAuth2 token server for machine-to-machine integrations",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.adminURL, "admin-url", envOr("TOKENSMITH_ADMIN_URL", "http://127.0.0.1:8081"), "admin API base URL")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON")

	root.AddCommand(serveCmd(stdout, stderr), clientCmd(g), userCmd(g), patCmd(g), keysCmd(g), tokenCmd(g, os.Stdin), versionCmd(g))
	if err := root.Execute(); err != nil {
		// An exitCode means the command already said what went wrong.
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec)
		}
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

// exitCode lets a command choose its exit status (2 for bad configuration).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }
