package cmd

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/keys"
)

// buildInfo is what GET /admin/version answers, and what this binary would answer.
type buildInfo struct {
	Version       string `json:"version"`
	Signer        string `json:"signer"`
	SignerVersion string `json:"signer_version"`
}

// signer reads like "signer=openssl (OpenSSL 3.0.13 30 Jan 2024)".
func (b buildInfo) signer() string {
	if b.Signer == "" { // a server from before the signer was reported
		return "signer unknown"
	}
	return fmt.Sprintf("signer=%s (%s)", b.Signer, b.SignerVersion)
}

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "version", Short: "Print the CLI version and, if reachable, the server's, each with the RSA signer (RS256, PS256) it was built with", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cli := buildInfo{Version: Version, Signer: keys.SignerName, SignerVersion: keys.SignerVersion()}
			var server buildInfo
			at := g.adminURL
			if api, err := g.client(); err == nil {
				_, _ = api.do("GET", "/admin/version", nil, &server)
				at = api.base // https when the CLI found the dev certificate
			}
			if g.json {
				b, _ := json.Marshal(map[string]string{
					"cli": cli.Version, "go": runtime.Version(), "signer": cli.Signer, "signer_version": cli.SignerVersion,
					"server": server.Version, "server_signer": server.Signer, "server_signer_version": server.SignerVersion,
				})
				return g.printJSON(b)
			}
			fmt.Fprintf(g.out, "tokensmith %s (%s), %s\n", cli.Version, runtime.Version(), cli.signer())
			if server.Version != "" {
				fmt.Fprintf(g.out, "server at %s: %s, %s\n", at, server.Version, server.signer())
			}
			return nil
		}}
}
