package cmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/server"
)

func tokenCmd(g *globals, stdin io.Reader) *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "Revoke or inspect any client's tokens (operator)"}
	c.AddCommand(tokenRevokeCmd(g, stdin), tokenIntrospectCmd(g, stdin))
	return c
}

// tokenArg reads the token from the argument, or from the first line of standard input when the
// argument is "-" (a token in a command line ends up in shell history and process listings).
func tokenArg(args []string, stdin io.Reader) (string, error) {
	if args[0] != "-" {
		return args[0], nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no token on standard input")
	}
	return strings.TrimSpace(line), nil
}

// sendToken posts the token argument to the admin API at path and decodes the answer into out.
// done reports that nothing is left to print: there was an error, or --json printed the answer.
func sendToken(g *globals, stdin io.Reader, args []string, path string, out any) (done bool, err error) {
	tok, err := tokenArg(args, stdin)
	if err != nil {
		return true, err
	}
	api, err := g.client()
	if err != nil {
		return true, err
	}
	raw, err := api.do("POST", path, server.TokenInput{Token: tok}, out)
	if err != nil || g.json {
		return true, orJSON(g, raw, err)
	}
	return false, nil
}

func tokenRevokeCmd(g *globals, stdin io.Reader) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke TOKEN|-",
		Short: "Revoke an access or refresh token of any client (- reads it from standard input)",
		Long: "Revoke an access token (denied until it expires, and no longer reused) or a refresh token\n" +
			"(its whole login: every refresh and access token of the family). Unknown, expired and\n" +
			"already revoked tokens are not an error: there is nothing to do.",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var out server.RevokeOutput
			if done, err := sendToken(g, stdin, args, "/admin/tokens/revoke", &out); done {
				return err
			}
			if out.Revoked {
				fmt.Fprintln(g.out, "revoked")
			} else {
				fmt.Fprintln(g.out, "not a live token (unknown, expired or already revoked): nothing to revoke")
			}
			return nil
		},
	}
}

func tokenIntrospectCmd(g *globals, stdin io.Reader) *cobra.Command {
	return &cobra.Command{
		Use:   "introspect TOKEN|-",
		Short: "Show what a token is and whether it is active (- reads it from standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var in grants.Introspection
			if done, err := sendToken(g, stdin, args, "/admin/tokens/introspect", &in); done {
				return err
			}
			if !in.Active {
				fmt.Fprintln(g.out, "active: false (unknown, malformed, expired or revoked)")
				return nil
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 1, ' ', 0)
			row := func(k, v string) {
				if v != "" {
					fmt.Fprintf(tw, "%s:\t%s\n", k, v)
				}
			}
			row("active", "true")
			row("token_type", in.TokenType)
			row("client_id", in.ClientID)
			row("sub", in.Subject)
			row("username", in.Username)
			row("scope", in.Scope)
			row("aud", strings.Join(in.Audience, ", "))
			row("iss", in.Issuer)
			row("jti", in.ID)
			row("issued", time.Unix(in.IssuedAt, 0).UTC().Format("2006-01-02 15:04:05 MST"))
			row("expires", fmt.Sprintf("%s (in %s)", time.Unix(in.ExpiresAt, 0).UTC().Format("2006-01-02 15:04:05 MST"),
				time.Until(time.Unix(in.ExpiresAt, 0)).Round(time.Second)))
			return tw.Flush()
		},
	}
}
