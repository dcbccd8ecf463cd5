// Package cmd holds the tokensmith command line: one file per subcommand. serve runs the
// server; every other command is a thin client of the admin API.
package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/protocol"
)

// Version is set at build time with -ldflags "-X github.com/tokensmith/tokensmith/cmd.Version=…".
var Version = "dev"

// Exit statuses: 0 success, 1 the operation failed (the server refused it or could not be
// reached), 2 the command line or the configuration is wrong.
const (
	exitFailed = 1
	exitUsage  = 2
)

// globals are the flags every management command shares.
type globals struct {
	adminURL string
	// adminURLFrom says where adminURL came from, for messages that must say what to change.
	adminURLFrom string
	cacert       string
	json         bool
	out          io.Writer
}

// Execute runs the command line and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	g := &globals{out: stdout}
	defURL, defFrom := defaultAdminURL(os.Getenv)
	root := &cobra.Command{
		Use:           "tokensmith",
		Short:         "OAuth2 token server for machine-to-machine integrations",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.adminURLFrom = defFrom
	root.PersistentPreRun = func(c *cobra.Command, _ []string) {
		if f := c.Flag("admin-url"); f != nil && f.Changed {
			g.adminURLFrom = "--admin-url"
		}
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.adminURL, "admin-url", defURL,
		"admin API base URL (env TOKENSMITH_ADMIN_URL; else built from TOKENSMITH_ADMIN_LISTEN, over https when the data directory holds the dev certificate)")
	pf.StringVar(&g.cacert, "cacert", os.Getenv("TOKENSMITH_ADMIN_CACERT"),
		"PEM file of a CA to trust for an https admin URL (env TOKENSMITH_ADMIN_CACERT)")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON, errors included")

	root.AddCommand(serveCmd(stdout, stderr), clientCmd(g), userCmd(g), patCmd(g), trustedIssuerCmd(g), keysCmd(g), tokenCmd(g, os.Stdin), versionCmd(g),
		exportCmd(g, stderr), importCmd(g, os.Stdin, stderr))
	group(root)
	usageErrors(root)

	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	// An exitCode means the command already said what went wrong.
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	// --json may not have been parsed when the command line itself is wrong.
	asJSON := g.json || slices.Contains(args, "--json")
	return report(err, cmd, asJSON, stdout, stderr)
}

// report prints err and returns the exit status: JSON on standard output with --json (the
// shape the admin API uses, {"error","error_description"}), else one line on standard error.
func report(err error, cmd *cobra.Command, asJSON bool, stdout, stderr io.Writer) int {
	code, status := "error", exitFailed
	var ue usageError
	var pe *protocol.Error
	var ce *cliError
	switch {
	case errors.As(err, &ue):
		code, status = "invalid_usage", exitUsage
	case errors.As(err, &ce):
		code = ce.code
	case errors.As(err, &pe):
		code = pe.Code
	}
	msg := err.Error()
	if pe != nil && ce == nil {
		msg = pe.Description
	}
	if asJSON {
		b, _ := json.MarshalIndent(map[string]string{"error": code, "error_description": msg}, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return status
	}
	if pe != nil && ce == nil {
		msg = pe.Code + ": " + pe.Description
	}
	fmt.Fprintf(stderr, "error: %s\n", msg)
	if status == exitUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return status
}

// exitCode lets a command choose its exit status (2 for bad configuration) after saying
// what went wrong itself.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// usageError is a command line that cannot be run as written: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// cliError is a failure found by the CLI itself, with the code --json reports.
type cliError struct {
	code string
	msg  string
}

func (e *cliError) Error() string { return e.msg }

// group makes every command that only holds subcommands refuse anything else: cobra would
// print the help and exit 0 for "client frobnicate".
func group(c *cobra.Command) {
	for _, sub := range c.Commands() {
		group(sub)
	}
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.NoArgs // "unknown command "frobnicate" for "tokensmith client""
		c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
}

// usageErrors makes every way cobra finds a command line wrong a usageError (exit status 2,
// invalid_usage), for c and the commands below it: a flag it cannot parse, a wrong number of
// arguments, a required flag left out, flags given together that exclude each other. Cobra
// returns them as plain errors, indistinguishable from a failed operation (exit status 1).
func usageErrors(c *cobra.Command) {
	for _, sub := range c.Commands() {
		usageErrors(sub)
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	if check := c.Args; check != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	// Cobra checks required flags and flag groups after PreRunE; when these checks pass here,
	// its own pass too.
	preRun := c.PreRunE
	c.PreRunE = func(c *cobra.Command, args []string) error {
		for _, check := range []func() error{c.ValidateRequiredFlags, c.ValidateFlagGroups} {
			if err := check(); err != nil {
				return usageError{err}
			}
		}
		if preRun != nil {
			return preRun(c, args)
		}
		return nil
	}
}
