package cmd

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// exampleConfig is the annotated configuration the docs point newcomers to.
const exampleConfig = "../examples/tokensmith.yaml"

// commentedSetting is a setting the example shows commented out: "# key: value", at its
// section's indentation.
var commentedSetting = regexp.MustCompile(`(?m)^(\s*)# ([a-z_]+: \S.*)$`)

// TestExampleConfigServes: the example configuration is one serve accepts (config.Load and the
// profiles' routes) as it is, and with every setting it shows commented out turned on, so a
// newcomer who uncomments a line gets a working value.
func TestExampleConfigServes(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadConfig(exampleConfig, nil); err != nil {
		t.Fatalf("%s as it is: %v", exampleConfig, err)
	}

	if n := len(commentedSetting.FindAll(body, -1)); n < 5 {
		t.Fatalf("%d commented-out settings found, want the usual changes shown (issuer, TLS, storage, profiles…)", n)
	}
	all := filepath.Join(t.TempDir(), "all.yaml")
	if err := os.WriteFile(all, commentedSetting.ReplaceAll(body, []byte("$1$2")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, eps, err := loadConfig(all, nil)
	if err != nil {
		t.Fatalf("%s with its commented settings on: %v", exampleConfig, err)
	}
	if cfg.Issuer != "https://auth.example.com" || cfg.TLSCert == "" || len(eps) == 0 {
		t.Fatalf("the commented settings were not all read: issuer %q, tls_cert %q, %d profile routes", cfg.Issuer, cfg.TLSCert, len(eps))
	}
}
