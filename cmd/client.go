package cmd

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/storage"
)

func clientCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "client", Short: "Manage OAuth2 clients"}
	c.AddCommand(clientCreateCmd(g), clientListCmd(g), clientShowCmd(g), clientUpdateCmd(g),
		clientRotateCmd(g), clientDeleteCmd(g))
	return c
}

// clientFlags declares the client fields as flags and returns a function that builds a
// ClientInput from the flags that were set (so update changes only what was given).
func clientFlags(fs *pflag.FlagSet, withID bool) func() (registry.ClientInput, error) {
	var (
		id, name, attl, rttl, grace, reuseMin, auth, owner, alg string
		jwksFile, jwksURI                                       string
		grants, scopes, aud, federated                          []string
		reuse, resourceServer, dailyShadow, hourlyShadow        bool
		dpopBound, dpopNonce, certBound                         bool
		subjectDN, sanDNS, sanURI, sanIP, sanEmail              string
		limit, hourly                                           int
	)
	if withID {
		fs.StringVar(&id, "id", "", "client id (generated when empty)")
	}
	fs.StringVar(&name, "name", "", "display name")
	fs.StringSliceVar(&grants, "grant", nil, "allowed grant types: client_credentials, password, refresh_token, token-exchange (repeat or comma-separate)")
	fs.StringSliceVar(&scopes, "scope", nil, "allowed scopes (repeat or comma-separate)")
	fs.StringSliceVar(&aud, "audience", nil, "token audience(s)")
	fs.StringVar(&attl, "access-token-ttl", "", "access token lifetime, e.g. 3h (empty: server default)")
	fs.StringVar(&rttl, "refresh-token-ttl", "", "refresh token lifetime, e.g. 14d")
	fs.StringVar(&grace, "refresh-grace", "", "refresh rotation grace window, e.g. 5s; 0 turns it off")
	fs.BoolVar(&reuse, "reuse", false, "hand out the earlier token while it has enough life left")
	fs.StringVar(&reuseMin, "reuse-min-remaining", "", "least lifetime a reused token must have left, e.g. 5m")
	fs.IntVar(&limit, "daily-limit", 0, "new tokens per subject per day (0: no limit)")
	fs.IntVar(&hourly, "hourly-limit", 0, "new tokens per subject per clock hour (0: no limit)")
	fs.BoolVar(&dailyShadow, "daily-limit-shadow", false, "count the daily limit and report who passes it, without refusing")
	fs.BoolVar(&hourlyShadow, "hourly-limit-shadow", false, "count the hourly limit and report who passes it, without refusing")
	fs.StringVar(&auth, "auth-method", "", "client_secret_basic, client_secret_post (empty: both), private_key_jwt (signed assertions, no secret: give --jwks or --jwks-uri), "+
		"tls_client_auth (a certificate from the server's client CA: give one of --tls-subject-dn, --tls-san-dns, --tls-san-uri, --tls-san-ip, --tls-san-email), "+
		"self_signed_tls_client_auth (a self-signed certificate whose key is in --jwks or --jwks-uri), "+
		"or none: a public client without a secret, password and refresh_token grants only")
	fs.StringVar(&auth, "auth", "", "short for --auth-method")
	fs.StringVar(&jwksFile, "jwks", "", "file holding the client's public keys (a JWK set) for --auth private_key_jwt or self_signed_tls_client_auth; empty removes them")
	fs.StringVar(&jwksURI, "jwks-uri", "", "https URL where the client publishes its public keys, for --auth private_key_jwt or self_signed_tls_client_auth; empty removes it")
	fs.StringVar(&subjectDN, "tls-subject-dn", "", "for --auth tls_client_auth: the certificate's subject DN in RFC 4514 form, as openssl x509 -noout -subject -nameopt RFC2253 prints it (CN=orders,O=Example); empty removes it")
	fs.StringVar(&sanDNS, "tls-san-dns", "", "for --auth tls_client_auth: a DNS name of the certificate's subject alternative names; empty removes it")
	fs.StringVar(&sanURI, "tls-san-uri", "", "for --auth tls_client_auth: a URI of the certificate's subject alternative names (spiffe://…); empty removes it")
	fs.StringVar(&sanIP, "tls-san-ip", "", "for --auth tls_client_auth: an IP address of the certificate's subject alternative names; empty removes it")
	fs.StringVar(&sanEmail, "tls-san-email", "", "for --auth tls_client_auth: an email address of the certificate's subject alternative names; empty removes it")
	fs.BoolVar(&certBound, "tls-bound", false, "bind every access token to the TLS client certificate the client asks with (cnf x5t#S256): no bearer tokens usable without it")
	fs.StringArrayVar(&federated, "federated", nil, "a workload that may act as the client with a token its platform issued: ISSUER=SUBJECT, "+
		"ISSUER a trusted issuer, SUBJECT exact or ending in ':*' or '/*' (repeat; on create it implies --auth private_key_jwt; on update it replaces the list, and one empty value removes it)")
	fs.StringVar(&owner, "owner", "", "id of the user who manages this client")
	fs.StringVar(&alg, "signing-alg", "", "algorithm of the client's access tokens: one of the server's keys.algorithms (RS256, PS256, ES256, EdDSA); empty: the first of them")
	fs.BoolVar(&resourceServer, "resource-server", false, "may introspect every client's tokens (an API checking what integrators send it)")
	fs.BoolVar(&dpopBound, "dpop-bound", false, "every token request must carry a DPoP proof: no bearer tokens for this client")
	fs.BoolVar(&dpopNonce, "dpop-nonce", false, "DPoP proofs must carry a nonce the server handed out (DPoP-Nonce)")
	return func() (registry.ClientInput, error) {
		var in registry.ClientInput
		var err error
		set := func(flag string, apply func()) {
			if fs.Changed(flag) {
				apply()
			}
		}
		set("id", func() { in.ClientID = &id })
		set("name", func() { in.Name = &name })
		set("grant", func() {
			for i, g := range grants {
				if g == "token-exchange" || g == "token_exchange" {
					grants[i] = protocol.GrantTokenExchange
				}
			}
			in.GrantTypes = &grants
		})
		set("scope", func() { in.Scopes = &scopes })
		set("audience", func() { a := protocol.Audience(aud); in.Audience = &a })
		set("access-token-ttl", func() { in.AccessTokenTTL = &attl })
		set("refresh-token-ttl", func() { in.RefreshTokenTTL = &rttl })
		set("refresh-grace", func() { in.RefreshGrace = &grace })
		set("reuse", func() { in.Reuse = &reuse })
		set("reuse-min-remaining", func() { in.ReuseMinRemaining = &reuseMin })
		set("daily-limit", func() { in.DailyLimit = &limit })
		set("hourly-limit", func() { in.HourlyLimit = &hourly })
		set("daily-limit-shadow", func() { in.DailyLimitShadow = &dailyShadow })
		set("hourly-limit-shadow", func() { in.HourlyLimitShadow = &hourlyShadow })
		set("auth-method", func() { in.TokenEndpointAuthMethod = &auth })
		set("auth", func() { in.TokenEndpointAuthMethod = &auth })
		set("jwks", func() {
			raw := json.RawMessage("null")
			if jwksFile != "" {
				var b []byte
				if b, err = os.ReadFile(jwksFile); err != nil {
					err = usagef("--jwks: %v", err)
					return
				}
				raw = b
			}
			in.JWKS = &raw
		})
		set("jwks-uri", func() { in.JWKSURI = &jwksURI })
		set("federated", func() {
			fis := []storage.FederatedIdentity{}
			for _, f := range federated {
				if f == "" && len(federated) == 1 {
					break
				}
				iss, sub, ok := strings.Cut(f, "=")
				if !ok || iss == "" || sub == "" {
					err = usagef("--federated %q: want ISSUER=SUBJECT, e.g. https://kubernetes.default.svc.cluster.local=system:serviceaccount:prod:billing", f)
					return
				}
				fis = append(fis, storage.FederatedIdentity{Issuer: iss, Subject: sub})
			}
			in.FederatedIdentities = &fis
		})
		set("owner", func() { in.Owner = &owner })
		set("resource-server", func() { in.ResourceServer = &resourceServer })
		set("signing-alg", func() { in.AccessTokenSigningAlg = &alg })
		set("dpop-bound", func() { in.DPoPBoundAccessTokens = &dpopBound })
		set("dpop-nonce", func() { in.DPoPNonceRequired = &dpopNonce })
		set("tls-subject-dn", func() { in.TLSClientAuthSubjectDN = &subjectDN })
		set("tls-san-dns", func() { in.TLSClientAuthSANDNS = &sanDNS })
		set("tls-san-uri", func() { in.TLSClientAuthSANURI = &sanURI })
		set("tls-san-ip", func() { in.TLSClientAuthSANIP = &sanIP })
		set("tls-san-email", func() { in.TLSClientAuthSANEmail = &sanEmail })
		set("tls-bound", func() { in.TLSClientCertificateBoundAccessTokens = &certBound })
		return in, err
	}
}

func clientCreateCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "create", Short: "Register a client; its secret is printed once", Args: cobra.NoArgs}
	input := clientFlags(c.Flags(), true)
	c.RunE = func(*cobra.Command, []string) error {
		api, err := g.client()
		if err != nil {
			return err
		}
		var v registry.ClientView
		in, err := input()
		if err != nil {
			return err
		}
		raw, err := api.do("POST", "/admin/clients", in, &v)
		if err != nil {
			return err
		}
		if g.json {
			return g.printJSON(raw)
		}
		printClient(g, v)
		switch {
		case v.ClientSecret == "" && v.TokenEndpointAuthMethod == protocol.AuthPrivateKeyJWT:
			fmt.Fprintln(g.out, "\nNo secret: the client authenticates with a signed assertion (its own key, or its workload's platform token).")
			return nil
		case v.ClientSecret == "" && grants.CertificateMethod(v.TokenEndpointAuthMethod):
			fmt.Fprintln(g.out, "\nNo secret: the client authenticates with its TLS client certificate, sending its client_id.")
			return nil
		case v.ClientSecret == "":
			fmt.Fprintln(g.out, "\nA public client: it has no secret and is identified by its client_id alone.")
			return nil
		}
		fmt.Fprintf(g.out, "\nclient_secret: %s\nStore the secret now: it is not shown again.\n", v.ClientSecret)
		return nil
	}
	return c
}

func clientUpdateCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "update CLIENT_ID", Short: "Change the given fields of a client", Args: cobra.ExactArgs(1)}
	input := clientFlags(c.Flags(), false)
	c.RunE = func(_ *cobra.Command, args []string) error {
		in, err := input()
		if err != nil {
			return err
		}
		if in == (registry.ClientInput{}) {
			return usagef("nothing to change: give at least one field, e.g. --name or --scope")
		}
		return showOrJSON(g, "PATCH", "/admin/clients/"+url.PathEscape(args[0]), in)
	}
	return c
}

func clientShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "show CLIENT_ID", Short: "Show one client", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return showOrJSON(g, "GET", "/admin/clients/"+url.PathEscape(args[0]), nil)
		}}
}

func showOrJSON(g *globals, method, path string, in any) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	var v registry.ClientView
	raw, err := api.do(method, path, in, &v)
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(raw)
	}
	printClient(g, v)
	return nil
}

func clientListCmd(g *globals) *cobra.Command {
	return listCmd(g, "List clients", "/admin/clients", "CLIENT ID\tNAME\tGRANTS\tSCOPES\tCREATED", func(v registry.ClientView) []string {
		return []string{v.ClientID, dash(v.Name), strings.Join(v.GrantTypes, ","),
			dash(strings.Join(v.Scopes, " ")), v.CreatedAt.Format("2006-01-02 15:04")}
	})
}

func clientRotateCmd(g *globals) *cobra.Command {
	var grace string
	c := &cobra.Command{Use: "rotate-secret CLIENT_ID", Short: "Issue a new client secret (printed once)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			api, err := g.client()
			if err != nil {
				return err
			}
			var out server.RotateSecretOutput
			raw, err := api.do("POST", "/admin/clients/"+url.PathEscape(args[0])+"/rotate-secret", server.RotateSecretInput{Grace: grace}, &out)
			if err != nil || g.json {
				return orJSON(g, raw, err)
			}
			fmt.Fprintf(g.out, "client_secret: %s\n", out.ClientSecret)
			if out.PreviousSecretValidUntil != "" {
				fmt.Fprintf(g.out, "The previous secret keeps working until %s.\n", out.PreviousSecretValidUntil)
			} else {
				fmt.Fprintln(g.out, "The previous secret no longer works.")
			}
			fmt.Fprintln(g.out, "Store the secret now: it is not shown again.")
			return nil
		}}
	c.Flags().StringVar(&grace, "grace", "", "how long the old secret keeps working, e.g. 1h (default 0)")
	return c
}

func clientDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "delete CLIENT_ID", Short: "Delete a client", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			api, err := g.client()
			if err != nil {
				return err
			}
			return deleteAndSay(g, api, "/admin/clients/"+url.PathEscape(args[0]), "client "+args[0]+" deleted")
		}}
}

func deleteAndSay(g *globals, api *adminClient, path, msg string) error {
	if _, err := api.do("DELETE", path, nil, nil); err != nil {
		return err
	}
	if g.json {
		return g.printJSON([]byte(`{"deleted":true}`))
	}
	fmt.Fprintln(g.out, msg)
	return nil
}

// listCmd is a "list" command: the list the admin API answers at path, as listTable prints it.
func listCmd[T any](g *globals, short, path, header string, row func(T) []string) *cobra.Command {
	return &cobra.Command{Use: "list", Short: short, Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			api, err := g.client()
			if err != nil {
				return err
			}
			return listTable(g, api, path, header, row)
		}}
}

// listTable prints the list the admin API answers at path as a table under header (its
// columns tab-separated), one row per item, or with --json the answer as it is.
func listTable[T any](g *globals, api *adminClient, path, header string, row func(T) []string) error {
	var all []T
	raw, err := api.do("GET", path, nil, &all)
	if err != nil || g.json {
		return orJSON(g, raw, err)
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, v := range all {
		fmt.Fprintln(tw, strings.Join(row(v), "\t"))
	}
	return tw.Flush()
}

func orJSON(g *globals, raw []byte, err error) error {
	if err != nil {
		return err
	}
	return g.printJSON(raw)
}

func printClient(g *globals, v registry.ClientView) {
	tw := tabwriter.NewWriter(g.out, 0, 4, 1, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, val) }
	row("client_id", v.ClientID)
	row("name", dash(v.Name))
	row("grant_types", strings.Join(v.GrantTypes, ", "))
	row("scopes", dash(strings.Join(v.Scopes, " ")))
	row("audience", orDefault(strings.Join(v.Audience, ", ")))
	row("access_token_ttl", orDefault(v.AccessTokenTTL))
	row("refresh_token_ttl", orDefault(v.RefreshTokenTTL))
	row("refresh_grace", orDefault(v.RefreshGrace))
	row("reuse", fmt.Sprint(v.Reuse))
	row("reuse_min_remaining", orDefault(v.ReuseMinRemaining))
	limit := func(n int, shadow bool) string {
		switch {
		case n == 0:
			return "none"
		case shadow:
			return fmt.Sprint(n, " (shadow: counted and reported, not enforced)")
		}
		return fmt.Sprint(n)
	}
	row("daily_limit", limit(v.DailyLimit, v.DailyLimitShadow))
	row("hourly_limit", limit(v.HourlyLimit, v.HourlyLimitShadow))
	row("auth_method", orValue(v.TokenEndpointAuthMethod, "client_secret_basic or client_secret_post"))
	if v.JWKSURI != "" {
		row("jwks_uri", v.JWKSURI)
	}
	if len(v.KeyIDs) > 0 {
		row("key_ids", strings.Join(v.KeyIDs, ", "))
	}
	for _, f := range v.FederatedIdentities {
		row("federated", f.Issuer+" = "+f.Subject)
	}
	for _, n := range [][2]string{{"tls_subject_dn", v.TLSClientAuthSubjectDN}, {"tls_san_dns", v.TLSClientAuthSANDNS},
		{"tls_san_uri", v.TLSClientAuthSANURI}, {"tls_san_ip", v.TLSClientAuthSANIP}, {"tls_san_email", v.TLSClientAuthSANEmail}} {
		if n[1] != "" {
			row(n[0], n[1])
		}
	}
	row("tls_bound", fmt.Sprint(v.TLSClientCertificateBoundAccessTokens))
	row("signing_alg", v.AccessTokenSigningAlg)
	row("owner", dash(v.Owner))
	row("resource_server", fmt.Sprint(v.ResourceServer))
	row("dpop_bound", fmt.Sprint(v.DPoPBoundAccessTokens))
	row("dpop_nonce", fmt.Sprint(v.DPoPNonceRequired))
	if !v.SecretGraceUntil.IsZero() {
		row("previous_secret_until", v.SecretGraceUntil.Format("2006-01-02 15:04:05 MST"))
	}
	row("created", v.CreatedAt.Format("2006-01-02 15:04:05 MST"))
	_ = tw.Flush()
}

func dash(s string) string      { return orValue(s, "-") }
func orDefault(s string) string { return orValue(s, "(server default)") }
func orValue(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain structs are passed
	}
	return b
}
