package cmd

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/tlscert"
)

// TestCLIFindsTheDevCertificate: run where the server keeps its dev certificate (a new shell,
// no TLS variables), the CLI reaches a dev-TLS admin API over HTTPS and trusts it, as the
// server's banner says; a certificate left from an earlier dev-TLS run does not keep it from a
// plain server; what the operator says (TOKENSMITH_DEV_TLS, an admin URL) wins over the guess.
func TestCLIFindsTheDevCertificate(t *testing.T) {
	dataDir, emptyDir := t.TempDir(), t.TempDir()
	certFile, keyFile, _, err := tlscert.EnsureDev(dataDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr, _ := startAdminAPI(t, certFile, keyFile)
	plainAddr, _ := startAdminAPI(t, "", "")
	for _, tc := range []struct {
		name   string
		env    map[string]string
		status int
		stderr string
	}{
		{"dev-TLS server, its certificate in the data directory",
			map[string]string{"TOKENSMITH_ADMIN_LISTEN": tlsAddr, "TOKENSMITH_DATA_DIR": dataDir}, 0, ""},
		{"plain server, a dev certificate left from an earlier run",
			map[string]string{"TOKENSMITH_ADMIN_LISTEN": plainAddr, "TOKENSMITH_DATA_DIR": dataDir}, 0, ""},
		{"no dev certificate in the data directory: plain HTTP, as before",
			map[string]string{"TOKENSMITH_ADMIN_LISTEN": tlsAddr, "TOKENSMITH_DATA_DIR": emptyDir}, 1, "serves HTTPS"},
		{"TOKENSMITH_DEV_TLS=false keeps plain HTTP",
			map[string]string{"TOKENSMITH_ADMIN_LISTEN": tlsAddr, "TOKENSMITH_DATA_DIR": dataDir, "TOKENSMITH_DEV_TLS": "false"}, 1, "serves HTTPS"},
		{"an admin URL given is used as given",
			map[string]string{"TOKENSMITH_ADMIN_URL": "http://" + tlsAddr, "TOKENSMITH_DATA_DIR": dataDir}, 1, "serves HTTPS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"TOKENSMITH_ADMIN_URL", "TOKENSMITH_ADMIN_LISTEN", "TOKENSMITH_DEV_TLS",
				"TOKENSMITH_ADMIN_TLS_CERT", "TOKENSMITH_ADMIN_CACERT", "TOKENSMITH_DATA_DIR"} {
				t.Setenv(k, tc.env[k])
			}
			t.Setenv("TOKENSMITH_ADMIN_TOKEN", testAdminToken)
			status, stdout, stderr := runCLI(t, "client", "list")
			if status != tc.status || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d; stderr %q, want %q\nstdout: %s", status, tc.status, stderr, tc.stderr, stdout)
			}
			if status == 0 && !strings.Contains(stdout, "CLIENT ID") {
				t.Fatalf("stdout %q, want the client table", stdout)
			}
		})
	}
}

// TestDevTLSBanner: the banner names the certificate for each kind of client, and says how the
// CLI finds it: from the server's directory when the data directory is the default one,
// else only through TOKENSMITH_DATA_DIR.
func TestDevTLSBanner(t *testing.T) {
	t.Parallel()
	elsewhere := t.TempDir()
	defaultCert, _ := filepath.Abs(filepath.Join("data", tlscert.DevCertFile))
	for _, tc := range []struct {
		name, cert string
		want, not  []string
	}{
		{"default data directory", filepath.Join("data", tlscert.DevCertFile),
			[]string{"curl --cacert " + defaultCert + " https://localhost:8080/", "REQUESTS_CA_BUNDLE=" + defaultCert,
				"NODE_EXTRA_CA_CERTS=" + defaultCert, "SSL_CERT_FILE=" + defaultCert, "when run from this directory",
				"TOKENSMITH_DATA_DIR=" + filepath.Dir(defaultCert)}, nil},
		{"another data directory", filepath.Join(elsewhere, tlscert.DevCertFile),
			[]string{"SSL_CERT_FILE=" + filepath.Join(elsewhere, tlscert.DevCertFile), "with TOKENSMITH_DATA_DIR=" + elsewhere + "."},
			[]string{"from this directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			printDevTLS(&buf, "https://localhost:8080", tc.cert)
			for _, w := range tc.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("banner lacks %q:\n%s", w, buf.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(buf.String(), n) {
					t.Errorf("banner says %q:\n%s", n, buf.String())
				}
			}
		})
	}
}
