package cmd

import (
	"strings"
	"testing"
)

// TestStorageURLParameters: a Redis storage URL's parameters are checked with the rest of the
// configuration, so a wrong one stops the server with an error naming it, before anything
// connects (pool_size=-5 used to panic inside go-redis).
func TestStorageURLParameters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"redis://127.0.0.1:1?pool_size=-5", "storage (TOKENSMITH_STORAGE): redis URL: pool_size"},
		{"redis://127.0.0.1:1?pool_size=1000000000", "pool_size"},
		{"redis+sentinel://127.0.0.1:1/m?min_replicas=11", "min_replicas"},
		{"redis+cluster://127.0.0.1:1?replica_timeout=1h", "replica_timeout"},
		{"redis://127.0.0.1:1?poolsize=5", `unknown parameter "poolsize"`},
		{"redis+sentinel://127.0.0.1:1/m?min_replicas=2&replica_timeout=1s", ""},
	} {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			_, _, err := loadConfig("", []string{"TOKENSMITH_STORAGE=" + tc.url})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("a valid URL refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
