package server_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTrustedIssuersAdminAPI: create answers 201 with an id; list, get and delete by id;
// refusals are 400 naming the field and store nothing.
func TestTrustedIssuersAdminAPI(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		name, body, field string
	}{
		{"issuer missing", `{}`, "issuer"},
		{"issuer over http elsewhere", `{"issuer":"http://issuer.example"}`, "issuer"},
		{"jwks_uri over http elsewhere", `{"issuer":"https://issuer.example","jwks_uri":"http://issuer.example/jwks"}`, "jwks_uri"},
		{"empty audience", `{"issuer":"https://issuer.example","audiences":[""]}`, "audiences"},
		{"unknown field", `{"issuer":"https://issuer.example","subject":"x"}`, "subject"},
	} {
		r := ts.admin(t, "POST", "/admin/trusted-issuers", tc.body)
		if r.Status != 400 || !strings.Contains(r.RawBody, tc.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.name, r.Status, r.RawBody, tc.field)
		}
	}
	if l := ts.admin(t, "GET", "/admin/trusted-issuers", ""); l.Status != 200 || strings.TrimSpace(l.RawBody) != "[]" {
		t.Fatalf("refusals stored something: %d %s", l.Status, l.RawBody)
	}

	r := ts.admin(t, "POST", "/admin/trusted-issuers", `{"issuer":"https://kubernetes.default.svc.cluster.local","audiences":["tokensmith"],"name":"prod"}`)
	var created struct {
		ID        string   `json:"id"`
		Issuer    string   `json:"issuer"`
		Audiences []string `json:"audiences"`
	}
	if r.Status != 201 || json.Unmarshal([]byte(r.RawBody), &created) != nil || created.ID == "" || created.Issuer != "https://kubernetes.default.svc.cluster.local" {
		t.Fatalf("create: %d %s", r.Status, r.RawBody)
	}
	if r := ts.admin(t, "POST", "/admin/trusted-issuers", `{"issuer":"https://kubernetes.default.svc.cluster.local"}`); r.Status != 409 {
		t.Fatalf("same issuer twice: %d %s, want 409", r.Status, r.RawBody)
	}
	if g := ts.admin(t, "GET", "/admin/trusted-issuers/"+created.ID, ""); g.Status != 200 || !strings.Contains(g.RawBody, `"audiences":["tokensmith"]`) {
		t.Fatalf("get: %d %s", g.Status, g.RawBody)
	}
	if l := ts.admin(t, "GET", "/admin/trusted-issuers", ""); l.Status != 200 || !strings.Contains(l.RawBody, created.ID) {
		t.Fatalf("list: %d %s", l.Status, l.RawBody)
	}
	if d := ts.admin(t, "DELETE", "/admin/trusted-issuers/"+created.ID, ""); d.Status != 204 {
		t.Fatalf("delete: %d %s", d.Status, d.RawBody)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if r := ts.admin(t, m, "/admin/trusted-issuers/"+created.ID, ""); r.Status != 404 {
			t.Fatalf("%s after delete: %d, want 404", m, r.Status)
		}
	}
}
