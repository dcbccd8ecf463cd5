package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/server"
)

func keysCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "List and rotate the signing keys"}
	c.AddCommand(keysListCmd(g), keysRotateCmd(g))
	return c
}

func keysListCmd(g *globals) *cobra.Command {
	return listCmd(g, "List the published signing keys and where each is in its life", "/admin/keys",
		"KID\tSTATE\tCREATED\tSIGNS FROM\tSIGNS UNTIL\tPUBLISHED UNTIL", func(v keys.View) []string {
			return []string{v.Kid, v.State, stamp(v.CreatedAt), stamp(v.ActivatesAt),
				orValue(stamp(v.RetiresAt), "-"), orValue(stamp(v.RemovedAt), "-")}
		})
}

func keysRotateCmd(g *globals) *cobra.Command {
	var ahead string
	var now bool
	c := &cobra.Command{Use: "rotate", Short: "Start a new signing key: published now, signing after --publish-ahead", Args: cobra.NoArgs,
		Long: "Start a new signing key. It is published in the JWKS at once and signs after --publish-ahead\n" +
			"(default: the server's keys.publish_ahead), so resource servers that cache the JWKS fetch it\n" +
			"first; the key signing now stops then and stays published until every token it signed\n" +
			"has expired. --now switches at once, for a key that has leaked: resource servers that do\n" +
			"not refetch the JWKS on an unknown kid refuse new tokens until their cache expires.",
		RunE: func(*cobra.Command, []string) error {
			api, err := g.client()
			if err != nil {
				return err
			}
			in := server.RotateKeyInput{PublishAhead: ahead}
			if now {
				in.PublishAhead = "0s"
			}
			var v keys.View
			raw, err := api.do("POST", "/admin/keys/rotate", in, &v)
			if err != nil || g.json {
				return orJSON(g, raw, err)
			}
			fmt.Fprintf(g.out, "new key %s published; it signs from %s (in %s)\n", v.Kid, stamp(v.ActivatesAt),
				time.Until(v.ActivatesAt).Round(time.Second).String())
			return nil
		}}
	c.Flags().StringVar(&ahead, "publish-ahead", "", "how long the new key is published before it signs, e.g. 10m")
	c.Flags().BoolVar(&now, "now", false, "sign with the new key at once (a leaked key)")
	c.MarkFlagsMutuallyExclusive("publish-ahead", "now")
	return c
}

// stamp renders a time to the second for tables, empty for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}
