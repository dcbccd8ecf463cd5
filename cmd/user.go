package cmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
)

func userCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "Manage users of the password grant"}
	c.AddCommand(userCreateCmd(g), userListCmd(g), userShowCmd(g), userSetPasswordCmd(g), userDeleteCmd(g))
	return c
}

// passwordFlags declares --password and --password-stdin and returns a function that yields
// the password given by either.
func passwordFlags(c *cobra.Command) func() (string, error) {
	var pw string
	var fromStdin bool
	c.Flags().StringVar(&pw, "password", "", "password (visible in shell history; prefer --password-stdin)")
	c.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	return func() (string, error) {
		switch {
		case fromStdin && pw != "":
			return "", usagef("give --password or --password-stdin, not both")
		case fromStdin:
			return readLine(os.Stdin)
		case pw == "":
			return "", usagef("--password or --password-stdin is required")
		}
		return pw, nil
	}
}

func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return "", usagef("--password-stdin: nothing on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func userCreateCmd(g *globals) *cobra.Command {
	var username string
	var scopes []string
	c := &cobra.Command{Use: "create", Short: "Create a user", Args: cobra.NoArgs}
	password := passwordFlags(c)
	c.Flags().StringVar(&username, "username", "", "username (unique, compared case-insensitively)")
	c.Flags().StringSliceVar(&scopes, "scope", nil, "scopes the user's personal tokens may carry (repeat or comma-separate)")
	c.RunE = func(*cobra.Command, []string) error {
		if username == "" {
			return usagef("--username is required")
		}
		pw, err := password()
		if err != nil {
			return err
		}
		api, err := g.client()
		if err != nil {
			return err
		}
		var v registry.UserView
		raw, err := api.do("POST", "/admin/users", registry.UserInput{Username: username, Password: pw, Scopes: scopes}, &v)
		if err != nil || g.json {
			return orJSON(g, raw, err)
		}
		fmt.Fprintf(g.out, "user %s created with id %s\n", v.Username, v.ID)
		return nil
	}
	return c
}

// user connects to the admin API and resolves the user a command names, by id or username.
func (g *globals) user(who string) (*adminClient, registry.UserView, error) {
	api, err := g.client()
	if err != nil {
		return nil, registry.UserView{}, err
	}
	u, err := findUser(api, who)
	return api, u, err
}

// findUser resolves a user given by id or by username (case-insensitively), trying the id
// first.
func findUser(api *adminClient, who string) (registry.UserView, error) {
	var v registry.UserView
	_, err := api.do("GET", "/admin/users/"+url.PathEscape(who), nil, &v)
	if err == nil || !errors.Is(err, &protocol.Error{Code: protocol.NotFound}) {
		return v, err
	}
	var found []registry.UserView
	if _, err := api.do("GET", "/admin/users?username="+url.QueryEscape(who), nil, &found); err != nil {
		return v, err
	}
	if len(found) != 1 {
		return v, protocol.Errorf(protocol.NotFound, "no user has the id or username %q", who)
	}
	return found[0], nil
}

func userShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "show USER", Short: "Show a user, given by username or id", Args: cobra.ExactArgs(1),
		Long: "Show a user, given by username or id: id, username, scopes and when it was created.\n" +
			"A user's scopes bound the scopes of the user's personal tokens (pat create) only; a login\n" +
			"with the password grant gets the scopes of the client it logs in through.",
		RunE: func(_ *cobra.Command, args []string) error {
			_, v, err := g.user(args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(mustJSON(v))
			}
			scopes := "-"
			if len(v.Scopes) > 0 {
				scopes = strings.Join(v.Scopes, " ") + "   (they bound this user's personal tokens only, not password-grant logins)"
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 1, ' ', 0)
			fmt.Fprintf(tw, "id:\t%s\nusername:\t%s\nscopes:\t%s\ncreated:\t%s\n", v.ID, v.Username, scopes, v.CreatedAt.Format("2006-01-02 15:04:05 MST"))
			return tw.Flush()
		}}
}

func userSetPasswordCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "set-password USER", Short: "Change a user's password (user by username or id)", Args: cobra.ExactArgs(1),
		Long: "Change a user's password. Every login made with the old one ends (its refresh tokens are\n" +
			"refused, its access tokens introspect as inactive); the user's personal tokens stay."}
	password := passwordFlags(c)
	c.RunE = func(_ *cobra.Command, args []string) error {
		pw, err := password()
		if err != nil {
			return err
		}
		api, u, err := g.user(args[0])
		if err != nil {
			return err
		}
		raw, err := api.do("PATCH", "/admin/users/"+url.PathEscape(u.ID), registry.UserUpdate{Password: &pw}, nil)
		if err != nil || g.json {
			return orJSON(g, raw, err)
		}
		fmt.Fprintf(g.out, "password of user %s (%s) changed\n", u.Username, u.ID)
		return nil
	}
	return c
}

func userListCmd(g *globals) *cobra.Command {
	return listCmd(g, "List users", "/admin/users", "USER ID\tUSERNAME\tCREATED", func(u registry.UserView) []string {
		return []string{u.ID, u.Username, u.CreatedAt.Format("2006-01-02 15:04")}
	})
}

func userDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "delete USER", Short: "Delete a user, given by username or id; their logins end", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			api, u, err := g.user(args[0])
			if err != nil {
				return err
			}
			return deleteAndSay(g, api, "/admin/users/"+url.PathEscape(u.ID), fmt.Sprintf("user %s (%s) deleted", u.Username, u.ID))
		}}
}
