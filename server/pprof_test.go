package server_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestPprofNeedsTheAdminToken(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1"} {
		t.Run(path, func(t *testing.T) {
			resp, err := http.Get(ts.AdminURL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("without the admin token: %d, want 401", resp.StatusCode)
			}
			r := ts.admin(t, "GET", path, "")
			if r.Status != http.StatusOK || r.RawBody == "" {
				t.Fatalf("with the admin token: %d %.100q", r.Status, r.RawBody)
			}
			if strings.Contains(path, "debug=1") && !strings.Contains(r.RawBody, "goroutine") && !strings.Contains(r.RawBody, "heap") {
				t.Fatalf("not a profile: %.200s", r.RawBody)
			}
		})
	}
	if r := ts.admin(t, "GET", "/debug/pprof/no-such-profile", ""); r.Status != http.StatusNotFound {
		t.Fatalf("unknown profile: %d, want 404", r.Status)
	}
}
