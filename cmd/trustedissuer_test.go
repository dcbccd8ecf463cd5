package cmd

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTrustedIssuerCLI: add, list and delete through the admin API; a refused add exits
// non-zero naming the field.
func TestTrustedIssuerCLI(t *testing.T) {
	addr, _ := startAdminAPI(t, "", "")
	t.Setenv("TOKENSMITH_ADMIN_URL", "http://"+addr)
	t.Setenv("TOKENSMITH_ADMIN_TOKEN", testAdminToken)

	if status, _, stderr := runCLI(t, "trusted-issuer", "add", "http://issuer.example"); status == 0 || !strings.Contains(stderr, "issuer must use https") {
		t.Fatalf("http issuer: exit %d: %s", status, stderr)
	}
	status, stdout, stderr := runCLI(t, "--json", "trusted-issuer", "add", "https://token.actions.githubusercontent.com", "--audience", "https://tokensmith.example", "--name", "GitHub Actions")
	if status != 0 {
		t.Fatalf("add: exit %d: %s", status, stderr)
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || v.ID == "" {
		t.Fatalf("add printed %q (%v)", stdout, err)
	}
	status, stdout, stderr = runCLI(t, "trusted-issuer", "list")
	if status != 0 || !strings.Contains(stdout, v.ID) || !strings.Contains(stdout, "https://token.actions.githubusercontent.com") || !strings.Contains(stdout, "https://tokensmith.example") {
		t.Fatalf("list: exit %d: %s%s", status, stdout, stderr)
	}
	// A client a workload of the issuer acts as: create and show list the identity.
	const fed = "https://token.actions.githubusercontent.com=repo:acme/app:*"
	if status, _, stderr := runCLI(t, "client", "create", "--id", "deployer", "--federated", "https://other.example=repo:acme/app:*"); status == 0 ||
		!strings.Contains(stderr, "is not a trusted issuer") {
		t.Fatalf("client with an untrusted issuer: exit %d: %s", status, stderr)
	}
	if status, _, stderr := runCLI(t, "client", "create", "--id", "deployer", "--federated", "bad"); status == 0 || !strings.Contains(stderr, "ISSUER=SUBJECT") {
		t.Fatalf("--federated without '=': exit %d: %s", status, stderr)
	}
	status, stdout, stderr = runCLI(t, "client", "create", "--id", "deployer", "--federated", fed)
	if status != 0 || !strings.Contains(stdout, "private_key_jwt") || !strings.Contains(stdout, "No secret") {
		t.Fatalf("client create --federated: exit %d: %s%s", status, stdout, stderr)
	}
	status, stdout, stderr = runCLI(t, "client", "show", "deployer")
	if status != 0 || !strings.Contains(stdout, "https://token.actions.githubusercontent.com = repo:acme/app:*") {
		t.Fatalf("client show: exit %d: %s%s", status, stdout, stderr)
	}
	if status, _, stderr := runCLI(t, "trusted-issuer", "delete", v.ID); status != 0 {
		t.Fatalf("delete: exit %d: %s", status, stderr)
	}
	if status, _, _ := runCLI(t, "trusted-issuer", "delete", v.ID); status == 0 {
		t.Fatal("second delete succeeded")
	}
}
