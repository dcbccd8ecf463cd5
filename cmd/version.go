package cmd

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "version", Short: "Print the CLI version and, if reachable, the server's", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			server := ""
			if api, err := g.client(); err == nil {
				var v struct {
					Version string `json:"version"`
				}
				if _, err := api.do("GET", "/admin/version", nil, &v); err == nil {
					server = v.Version
				}
			}
			if g.json {
				b, _ := json.Marshal(map[string]string{"cli": Version, "server": server, "go": runtime.Version()})
				return g.printJSON(b)
			}
			fmt.Fprintf(g.out, "tokensmith %s (%s)\n", Version, runtime.Version())
			if server != "" {
				fmt.Fprintf(g.out, "server at %s: %s\n", g.adminURL, server)
			}
			return nil
		}}
}
