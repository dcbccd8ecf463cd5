package config_test

import (
	"reflect"
	"testing"

	"github.com/tokensmith/tokensmith/config"
)

// TestExampleFile: examples/tokensmith.yaml loads, and says what it claims to say: the defaults
// of every setting it sets (its changes are commented out; cmd's example test loads those).
func TestExampleFile(t *testing.T) {
	t.Parallel()
	got, err := config.Load("../examples/tokensmith.yaml", nil)
	if err != nil {
		t.Fatalf("examples/tokensmith.yaml: %v", err)
	}
	want, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("examples/tokensmith.yaml gives\n%+v\nthe defaults are\n%+v", got, want)
	}
}
