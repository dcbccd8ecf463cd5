package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

func testChangeFeed(t *testing.T, s storage.Storage) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan storage.Change, 10)
	health := make(chan bool, 10)
	go s.Watch(ctx, func(c storage.Change) { got <- c }, func(ok bool) { health <- ok })
	deadline := time.After(5 * time.Second)
	for healthy := false; !healthy; {
		select {
		case healthy = <-health:
		case <-deadline:
			t.Fatal("the change feed never became healthy")
		}
	}
	want := storage.Change{Kind: storage.ChangeClient, ID: "c1"}
	mustNoErr(t, s.Publish(context.Background(), want))
	select {
	case c := <-got:
		if c != want {
			t.Fatalf("got %+v, want %+v", c, want)
		}
	case <-deadline:
		t.Fatal("a published change was not delivered")
	}
}
