package cmd

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/registry"
)

func patCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "pat", Short: "Manage users' personal tokens"}
	c.AddCommand(patCreateCmd(g), patListCmd(g), patRevokeCmd(g))
	return c
}

func userTokensPath(user string) string { return "/admin/users/" + url.PathEscape(user) + "/tokens" }

func patCreateCmd(g *globals) *cobra.Command {
	var name, expires string
	var scopes []string
	c := &cobra.Command{Use: "create USER", Short: "Give a user (username or id) a personal token; it is printed once", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			api, u, err := g.user(args[0])
			if err != nil {
				return err
			}
			in := map[string]any{"name": name, "scopes": scopes}
			if expires != "" {
				in["expires_in"] = expires
			}
			if scopes == nil {
				in["scopes"] = []string{}
			}
			var v registry.PersonalTokenView
			raw, err := api.do("POST", userTokensPath(u.ID), in, &v)
			if err != nil || g.json {
				return orJSON(g, raw, err)
			}
			fmt.Fprintf(g.out, "id:      %s\nname:    %s\nscopes:  %s\nexpires: %s\n\ntoken: %s\nStore the token now: it is not shown again.\n",
				v.ID, v.Name, dash(strings.Join(v.Scopes, " ")), orValue(when(v.ExpiresAt), "never"), v.Token)
			return nil
		}}
	c.Flags().StringVar(&name, "name", "", "what the token is for (required)")
	c.Flags().StringSliceVar(&scopes, "scope", nil, "scopes, among the user's (repeat or comma-separate)")
	c.Flags().StringVar(&expires, "expires-in", "", "lifetime, e.g. 90d (default: never expires)")
	_ = c.MarkFlagRequired("name")
	return c
}

func patListCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "list USER", Short: "List a user's personal tokens (user by username or id)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			api, u, err := g.user(args[0])
			if err != nil {
				return err
			}
			return listTable(g, api, userTokensPath(u.ID), "ID\tNAME\tSCOPES\tCREATED\tLAST USED\tEXPIRES", func(v registry.PersonalTokenView) []string {
				return []string{v.ID, v.Name, dash(strings.Join(v.Scopes, " ")),
					when(v.CreatedAt), orValue(when(v.LastUsedAt), "never"), orValue(when(v.ExpiresAt), "never")}
			})
		}}
}

func patRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "revoke USER TOKEN_ID", Short: "Delete a personal token; it stops working at once everywhere", Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			api, u, err := g.user(args[0])
			if err != nil {
				return err
			}
			return deleteAndSay(g, api, userTokensPath(u.ID)+"/"+url.PathEscape(args[1]), "personal token "+args[1]+" revoked")
		}}
}

// when renders a time for tables, empty for the zero time.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04")
}
