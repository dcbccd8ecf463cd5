package embedded_test

import (
	"path/filepath"
	"testing"

	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/conformance"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

func TestMemory(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) storage.Storage {
		s, err := embedded.OpenMemory()
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFile(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) storage.Storage {
		s, err := embedded.OpenFile(filepath.Join(t.TempDir(), "sub", "ts.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
