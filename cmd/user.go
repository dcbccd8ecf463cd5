package cmd

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/registry"
)

func userCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "Manage users of the password grant"}
	c.AddCommand(userCreateCmd(g), userListCmd(g), userDeleteCmd(g))
	return c
}

func userCreateCmd(g *globals) *cobra.Command {
	var in registry.UserInput
	var fromStdin bool
	c := &cobra.Command{Use: "create", Short: "Create a user", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if fromStdin {
				line, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil && line == "" {
					return errors.New("--password-stdin: nothing on standard input")
				}
				in.Password = strings.TrimRight(line, "\r\n")
			}
			if in.Username == "" || in.Password == "" {
				return errors.New("--username and --password (or --password-stdin) are required")
			}
			api, err := g.client()
			if err != nil {
				return err
			}
			var v registry.UserView
			raw, err := api.do("POST", "/admin/users", in, &v)
			if err != nil || g.json {
				return orJSON(g, raw, err)
			}
			fmt.Fprintf(g.out, "user %s created with id %s\n", v.Username, v.ID)
			return nil
		}}
	c.Flags().StringVar(&in.Username, "username", "", "username")
	c.Flags().StringVar(&in.Password, "password", "", "password (visible in shell history; prefer --password-stdin)")
	c.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	c.Flags().StringSliceVar(&in.Scopes, "scope", nil, "scopes the user's personal tokens may carry (repeat or comma-separate)")
	return c
}

func userListCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			api, err := g.client()
			if err != nil {
				return err
			}
			var all []registry.UserView
			raw, err := api.do("GET", "/admin/users", nil, &all)
			if err != nil || g.json {
				return orJSON(g, raw, err)
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER ID\tUSERNAME\tCREATED")
			for _, u := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", u.ID, u.Username, u.CreatedAt.Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		}}
}

func userDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "delete USER_ID", Short: "Delete a user", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return deleteAndSay(g, "/admin/users/"+url.PathEscape(args[0]), "user "+args[0]+" deleted")
		}}
}
