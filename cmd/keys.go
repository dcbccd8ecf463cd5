package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/server"
)

func keysCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "List, rotate and retire the signing keys"}
	c.AddCommand(keysListCmd(g), keysRotateCmd(g), keysRetireCmd(g))
	return c
}

func keysListCmd(g *globals) *cobra.Command {
	return listCmd(g, "List the published signing keys and where each is in its life", "/admin/keys",
		"KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tSIGNS UNTIL\tPUBLISHED UNTIL", func(v keys.View) []string {
			return []string{v.Kid, v.Alg, v.State, stamp(v.CreatedAt), stamp(v.ActivatesAt),
				orValue(stamp(v.RetiresAt), "-"), orValue(stamp(v.RemovedAt), "-")}
		})
}

func keysRotateCmd(g *globals) *cobra.Command {
	var ahead, alg string
	var now bool
	c := &cobra.Command{Use: "rotate", Short: "Start a new signing key: published now, signing after --publish-ahead", Args: cobra.NoArgs,
		Long: "Start a new signing key of one algorithm (--alg; default: the first of the server's\n" +
			"keys.algorithms). It is published in the JWKS at once and signs after --publish-ahead\n" +
			"(default: the server's keys.publish_ahead), so resource servers that cache the JWKS fetch it\n" +
			"first; the key of that algorithm signing now stops then and stays published until every\n" +
			"token it signed has expired. The other algorithms' keys are left as they are. --now\n" +
			"switches at once, for a key that has leaked: resource servers that do not refetch the JWKS\n" +
			"on an unknown kid refuse new tokens until their cache expires.",
		RunE: func(*cobra.Command, []string) error {
			api, err := g.client()
			if err != nil {
				return err
			}
			in := server.RotateKeyInput{Alg: alg, PublishAhead: ahead}
			if now {
				in.PublishAhead = "0s"
			}
			var v keys.View
			raw, err := api.do("POST", "/admin/keys/rotate", in, &v)
			if err != nil || g.json {
				return orJSON(g, raw, err)
			}
			fmt.Fprintf(g.out, "new %s key %s published; it signs from %s (in %s)\n", v.Alg, v.Kid, stamp(v.ActivatesAt),
				max(time.Until(v.ActivatesAt), 0).Round(time.Second).String())
			return nil
		}}
	c.Flags().StringVar(&alg, "alg", "", "algorithm whose key is rotated: RS256, PS256, ES256 or EdDSA (default: the first of keys.algorithms)")
	c.Flags().StringVar(&ahead, "publish-ahead", "", "how long the new key is published before it signs, e.g. 10m")
	c.Flags().BoolVar(&now, "now", false, "sign with the new key at once (a leaked key)")
	c.MarkFlagsMutuallyExclusive("publish-ahead", "now")
	return c
}

func keysRetireCmd(g *globals) *cobra.Command {
	var alg string
	c := &cobra.Command{Use: "retire", Short: "Stop the keys of an algorithm taken out of keys.algorithms", Args: cobra.NoArgs,
		Long: "Retire the keys of an algorithm that is no longer in keys.algorithms: they stop signing at\n" +
			"once, stay in the JWKS until every token they signed has expired, then leave it. Take the\n" +
			"algorithm out of every replica's keys.algorithms first; the server refuses while it still\n" +
			"signs with it. Until then clients set to it get tokens of the default algorithm.",
		RunE: func(*cobra.Command, []string) error {
			api, err := g.client()
			if err != nil {
				return err
			}
			var vs []keys.View
			raw, err := api.do("POST", "/admin/keys/retire", server.RetireKeysInput{Alg: alg}, &vs)
			if err != nil || g.json {
				return orJSON(g, raw, err)
			}
			for _, v := range vs {
				fmt.Fprintf(g.out, "%s key %s retired; published until %s\n", v.Alg, v.Kid, stamp(v.RemovedAt))
			}
			return nil
		}}
	c.Flags().StringVar(&alg, "alg", "", "the algorithm: RS256, PS256, ES256 or EdDSA")
	_ = c.MarkFlagRequired("alg")
	return c
}

// stamp renders a time to the second for tables, empty for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}
