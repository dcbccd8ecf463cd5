package redis_test

import (
	"context"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/conformance"
	"github.com/tokensmith/tokensmith/storage/redis"
	"github.com/tokensmith/tokensmith/storage/redis/redistest"
)

func open(t *testing.T, url string) storage.Storage {
	t.Helper()
	s, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	// Each conformance test wants an empty store.
	if err := redis.FlushAll(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// openWithRaw starts a Redis and opens a store of this version on it, with a plain client
// beside it for what a test writes or weighs behind the store's back (records as earlier
// versions left them, INFO, OBJECT ENCODING); both close with the test.
func openWithRaw(t *testing.T) (*redis.Store, *goredis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	s, err := redis.Open(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	raw := srv.Client()
	t.Cleanup(func() { _ = raw.Close() })
	return s, raw
}

func TestSingleNode(t *testing.T) {
	srv := redistest.Start(t)
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return open(t, srv.URL()) })
}

func TestCluster(t *testing.T) {
	url := patient(redistest.StartCluster(t, 3))
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return open(t, url) })
}

func TestSentinel(t *testing.T) {
	url := patient(redistest.StartSentinel(t))
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return open(t, url) })
}

// patient gives the conformance suite's writes on a replicated store 5 s for their replicas
// to confirm them instead of the default 500 ms: on a loaded test machine a replica that has
// just synchronised can take longer than that to answer WAIT, which is not what the suite
// tests (confirm_test.go tests the timeout itself).
func patient(url string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "replica_timeout=5s"
}

// TestLegacyUsernames: users stored before usernames were normalised.
func TestLegacyUsernames(t *testing.T) {
	srv := redistest.Start(t)
	conformance.RunLegacyUsernameTests(t, func(t *testing.T) storage.Storage { return open(t, srv.URL()) }, redis.PutLegacyUser)
}
