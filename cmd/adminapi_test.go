package cmd

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/tokensmith/tokensmith/metrics"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

// testAdminToken is the admin token of startAdminAPI's server; the CLI is given it in
// TOKENSMITH_ADMIN_TOKEN.
const testAdminToken = "tsa_cli-tests-admin-token-0123456789abcdef"

// startAdminAPI serves the real admin API on an in-memory store, over HTTPS with the
// certificate and key files when certFile is not empty, and returns its listener address and
// the registry behind it.
func startAdminAPI(t *testing.T, certFile, keyFile string) (string, *registry.Service) {
	t.Helper()
	store, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := registry.New(store, nil)
	adm := &server.Admin{TokenHash: secret.Hash(testAdminToken), Registry: reg, Store: store, Metrics: metrics.New(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"}
	srv := httptest.NewUnstartedServer(adm.Handler())
	if certFile == "" {
		srv.Start()
	} else {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
	}
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), reg
}

// runCLI runs the command line as the tokensmith binary would, with the environment set by the
// caller (t.Setenv), and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	status = Execute(args, &out, &errOut)
	return status, out.String(), errOut.String()
}
