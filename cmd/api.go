package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
)

// adminClient calls the admin API with the admin bearer token.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// adminTokenFile is where serve writes a generated admin token.
func adminTokenFile(dataDir string) string { return filepath.Join(dataDir, "admin-token") }

func (g *globals) client() (*adminClient, error) {
	tok := os.Getenv("TOKENSMITH_ADMIN_TOKEN")
	if tok == "" {
		path := adminTokenFile(envOr("TOKENSMITH_DATA_DIR", "./data"))
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("no admin token: set TOKENSMITH_ADMIN_TOKEN or run from the directory holding %s (%v)", path, err)
		}
		tok = strings.TrimSpace(string(b))
	}
	return &adminClient{base: strings.TrimRight(g.adminURL, "/"), token: tok, http: &http.Client{Timeout: 15 * time.Second}}, nil
}

// do sends in (if not nil) as JSON and decodes the answer into out (if not nil). raw receives
// the answer body for --json output.
func (a *adminClient) do(method, path string, in, out any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s is unreachable: %w", a.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		var pe protocol.Error
		if json.Unmarshal(raw, &pe) == nil && pe.Code != "" {
			return raw, &pe
		}
		return raw, fmt.Errorf("admin API answered %s", resp.Status)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("unexpected admin API answer: %w", err)
		}
	}
	return raw, nil
}

// printJSON re-indents an API answer for --json.
func (g *globals) printJSON(raw []byte) error {
	var buf bytes.Buffer
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := g.out.Write(buf.Bytes())
	return err
}
