package tlscert

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/config"
	"github.com/tokensmith/tokensmith/internal/testlog"
)

// writeCA writes a fresh self-signed certificate to path by rename and returns it as a pool.
func writeCA(t *testing.T, path string) []byte {
	t.Helper()
	certPEM, _, err := newDev(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".new", certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	return certPEM
}

// TestClientCAsReload: a replaced CA file is picked up on the next look; a broken one keeps
// the previous CAs in service and is reported once.
func TestClientCAsReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.pem")
	first := writeCA(t, path)
	logs := &testlog.Buffer{}
	c, err := LoadClientCAs(path, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := config.ParseCAs(first)
	if !c.Pool().Equal(want) {
		t.Fatal("the loaded pool is not the file's")
	}

	second := writeCA(t, path)
	c.r.refresh(time.Now().Add(2 * checkEvery))
	want, _ = config.ParseCAs(second)
	if !c.r.value.Load().Equal(want) {
		t.Fatal("the replaced file was not picked up")
	}
	if !strings.Contains(logs.String(), "TLS client CA reloaded") {
		t.Fatalf("no log line for the reload:\n%s", logs.String())
	}

	if err := os.WriteFile(path, []byte("not PEM, and longer than before"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.r.refresh(time.Now().Add(4 * checkEvery))
	c.r.refresh(time.Now().Add(6 * checkEvery))
	if !c.r.value.Load().Equal(want) {
		t.Fatal("a broken file replaced the CAs in service")
	}
	if n := strings.Count(logs.String(), "cannot be loaded"); n != 1 {
		t.Fatalf("%d warnings about one broken write, want 1:\n%s", n, logs.String())
	}
}
