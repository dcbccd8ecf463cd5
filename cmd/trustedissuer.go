package cmd

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokensmith/tokensmith/registry"
)

func trustedIssuerCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "trusted-issuer", Short: "Manage the outside issuers whose workload tokens clients may authenticate with"}
	c.AddCommand(trustedIssuerAddCmd(g), trustedIssuerListCmd(g), trustedIssuerDeleteCmd(g))
	return c
}

func trustedIssuerAddCmd(g *globals) *cobra.Command {
	var jwksURI, name string
	var audiences []string
	c := &cobra.Command{Use: "add ISSUER", Short: "Trust an issuer (its exact iss URL); clients then list which of its subjects they accept",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			api, err := g.client()
			if err != nil {
				return err
			}
			in := registry.TrustedIssuerInput{Issuer: args[0], JWKSURI: jwksURI, Audiences: audiences, Name: name}
			var v registry.TrustedIssuerView
			raw, err := api.do("POST", "/admin/trusted-issuers", in, &v)
			if err != nil || g.json {
				return orJSON(g, raw, err)
			}
			fmt.Fprintf(g.out, "id:        %s\nissuer:    %s\njwks_uri:  %s\naudiences: %s\n",
				v.ID, v.Issuer, orValue(v.JWKSURI, "(from the issuer's OpenID configuration)"), orValue(strings.Join(v.Audiences, " "), "(this server's issuer URL)"))
			return nil
		}}
	c.Flags().StringVar(&jwksURI, "jwks-uri", "", "where the issuer's keys are (default: the jwks_uri of ISSUER/.well-known/openid-configuration)")
	c.Flags().StringSliceVar(&audiences, "audience", nil, "aud values accepted from this issuer (repeat or comma-separate; default: this server's issuer URL)")
	c.Flags().StringVar(&name, "name", "", "a name for people")
	return c
}

func trustedIssuerListCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List the trusted issuers", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			api, err := g.client()
			if err != nil {
				return err
			}
			return listTable(g, api, "/admin/trusted-issuers", "ID\tISSUER\tAUDIENCES\tJWKS URI\tNAME", func(v registry.TrustedIssuerView) []string {
				return []string{v.ID, v.Issuer, dash(strings.Join(v.Audiences, " ")), dash(v.JWKSURI), dash(v.Name)}
			})
		}}
}

func trustedIssuerDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "delete ID", Short: "Stop trusting an issuer; its workloads lose access at once on every replica", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			api, err := g.client()
			if err != nil {
				return err
			}
			return deleteAndSay(g, api, "/admin/trusted-issuers/"+url.PathEscape(args[0]), "trusted issuer "+args[0]+" deleted")
		}}
}
