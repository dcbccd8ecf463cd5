// Command tokensmith is an OAuth2 authorization server for machine-to-machine integrations.
// Run "tokensmith serve" to start it and "tokensmith --help" for the management commands.
package main

import (
	"os"
	// Time zones for daily limits, also on images without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/tokensmith/tokensmith/cmd"
)

func main() {
	os.Exit(cmd.Execute(os.Args[1:], os.Stdout, os.Stderr))
}
