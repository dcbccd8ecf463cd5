package redis_test

import (
	"context"
	"testing"

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

func TestSingleNode(t *testing.T) {
	srv := redistest.Start(t)
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return open(t, srv.URL()) })
}

func TestCluster(t *testing.T) {
	url := redistest.StartCluster(t, 3)
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return open(t, url) })
}

func TestSentinel(t *testing.T) {
	url := redistest.StartSentinel(t)
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return open(t, url) })
}
