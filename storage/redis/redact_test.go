package redis

import (
	"strings"
	"testing"
)

// TestRedact: the whole password is hidden, whatever it holds, in the label and in the errors
// a bad URL gives.
func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:s3cret@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"},
		{"redis://user:p@ss@127.0.0.1:6379", "redis://***@127.0.0.1:6379"},
		{"rediss://user:a:b@c@d@redis.example:6380/2?pool_size=5", "rediss://***@redis.example:6380/2?pool_size=5"},
		{"redis+sentinel://:p@w@h1:26379,h2:26379/mymaster", "redis+sentinel://***@h1:26379,h2:26379/mymaster"},
		{"/var/lib/tokensmith/a@b", "/var/lib/tokensmith/a@b"},
	} {
		if got := Redact(tc.raw); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
	for _, raw := range []string{"redis://user:p@ss%zz@127.0.0.1:6379", "redis://:pa ss@wor d@127.0.0.1:6379", "user:p@ss@127.0.0.1"} {
		_, err := Parse(raw)
		if err == nil {
			t.Errorf("Parse(%q) accepted a bad URL", raw)
			continue
		}
		for _, part := range []string{"p@ss", "pa ss", "wor d", "ss%zz"} {
			if strings.Contains(raw, part) && strings.Contains(err.Error(), part) {
				t.Errorf("Parse(%q): the error %q shows the password", raw, err)
			}
		}
	}
}
