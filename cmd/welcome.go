package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/secret"
)

// ensureAdminToken returns the configured admin token or the one in the data directory,
// generating it (mode 0600) on first start.
func ensureAdminToken(cfg config.Config) (tok, path string, err error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, "", nil
	}
	path = adminTokenFile(cfg.DataDir)
	if b, err := os.ReadFile(path); err == nil {
		if tok = strings.TrimSpace(string(b)); tok != "" {
			if err := config.CheckAdminToken(tok); err != nil {
				return "", "", fmt.Errorf("admin token in %s: %w; delete the file to have one generated", path, err)
			}
			return tok, path, nil
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", "", fmt.Errorf("data_dir: %w", err)
	}
	tok = "tsa_" + secret.NewSecret()
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("admin token: %w", err)
	}
	return tok, path, nil
}

// printWelcome creates the demo client on the very first start and prints how to use it. It
// goes to standard output, not the log: the secret is shown this once and never logged. The
// curl line uses the issuer, the URL the server says it is reached at.
func printWelcome(ctx context.Context, w io.Writer, reg *registry.Service, issuer, devCert, adminTokenPath string, consoleOn bool) error {
	name := "demo"
	grantsAllowed := []string{protocol.GrantClientCredentials}
	scopes := []string{"demo"}
	v, err := reg.CreateClient(ctx, registry.ClientInput{Name: &name, GrantTypes: &grantsAllowed, Scopes: &scopes})
	if err != nil {
		return fmt.Errorf("demo client: %w", err)
	}
	tokenPath := "(TOKENSMITH_ADMIN_TOKEN)"
	if adminTokenPath != "" {
		tokenPath, _ = filepath.Abs(adminTokenPath)
	}
	cacert := ""
	if devCert != "" {
		abs, _ := filepath.Abs(devCert)
		cacert = "--cacert " + abs + " "
	}
	fmt.Fprintf(w, `
Tokensmith first start: created a demo client.

  client_id:     %s
  client_secret: %s   (shown once)

Get a token:

  curl -s %s-u '%s:%s' -d grant_type=client_credentials %s/oauth2/token

Public keys:  %s/.well-known/jwks.json
Admin token:  %s
`, v.ClientID, v.ClientSecret, cacert, v.ClientID, v.ClientSecret, issuer, issuer, tokenPath)
	if consoleOn {
		fmt.Fprintf(w, "Console:      %s/console/  (for users: tokensmith user create, then client update ID --owner USER_ID)\n", issuer)
	}
	fmt.Fprintln(w)
	return nil
}

// printDevTLS says, on every start with the dev certificate, how to trust it.
func printDevTLS(w io.Writer, issuer, devCert string) {
	abs, _ := filepath.Abs(devCert)
	// The CLI looks for the certificate in its data directory (devCertGuess): the default one,
	// relative to where it runs, or TOKENSMITH_DATA_DIR.
	dir := filepath.Dir(abs)
	cli := "The tokensmith CLI finds it, and uses HTTPS, with TOKENSMITH_DATA_DIR=" + dir + "."
	if def, _ := filepath.Abs(config.Default().DataDir); def == dir {
		cli = "The tokensmith CLI finds it, and uses HTTPS, when run from this directory (or with TOKENSMITH_DATA_DIR=" + dir + ")."
	}
	fmt.Fprintf(w, `Dev TLS: both listeners serve HTTPS with a self-signed certificate for localhost, 127.0.0.1 and ::1.
Trust it, and only it, for this server:

  curl --cacert %s %s/.well-known/oauth-authorization-server
  Python requests: REQUESTS_CA_BUNDLE=%s    Node: NODE_EXTRA_CA_CERTS=%s
  urllib (PyJWT's PyJWKClient), OpenSSL and unmodified Go programs: SSL_CERT_FILE=%s (in place of the system's CAs)
  Go: add it to tls.Config.RootCAs.  %s

`, abs, issuer, abs, abs, abs, cli)
}
