package storage_test

import (
	"testing"

	"github.com/tokensmith/tokensmith/storage"
)

func TestFoldUsername(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{{"Bob", "bob"}, {"BOB", "bOb"}, {"Straße", "STRASSE"}, {"ΣΊΣΥΦΟΣ", "σίσυφος"}} {
		if storage.FoldUsername(pair[0]) != storage.FoldUsername(pair[1]) {
			t.Errorf("%q and %q fold differently", pair[0], pair[1])
		}
	}
	if storage.FoldUsername("bob") == storage.FoldUsername("rob") {
		t.Error("different names fold alike")
	}
}
