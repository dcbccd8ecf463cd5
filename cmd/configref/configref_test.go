package configref

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/duration"
)

func TestPlain(t *testing.T) {
	t.Parallel()
	names := map[string]string{"DataDir": "data_dir", "PublishAhead": "keys.publish_ahead", "Listen": "listen"}
	for _, tc := range []struct{ name, doc, field, want string }{
		{"leading is", "Listen is the public\nlistener.\n", "Listen", "the public listener."},
		{"leading are", "TrustedProxies are the addresses.", "TrustedProxies", "the addresses."},
		{"leading verb", "DevTLS serves both listeners.", "DevTLS", "serves both listeners."},
		{"other fields become keys", "RotateEvery is longer than PublishAhead, kept in DataDir.", "RotateEvery",
			"longer than `keys.publish_ahead`, kept in `data_dir`."},
		{"a word that only starts like a field", "Issuer is derived from Listening.", "Issuer", "derived from Listening."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := plain(tc.doc, tc.field, names); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   any
		want string
	}{
		{duration.Duration(14 * 24 * time.Hour), "14d"},
		{duration.Duration(0), "0s"},
		{"", ""},
		{":8080", ":8080"},
		{[]string(nil), ""},
		{[]string{"a", "b"}, "a,b"},
		{true, "true"},
		{int64(1_000_000), "1000000"},
		{map[string]int{}, ""},
	} {
		if got := value(reflect.ValueOf(tc.in)); got != tc.want {
			t.Errorf("value(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSectionsNeedDocComments: a field without a doc comment stops the generator, naming it,
// rather than leaving a row nobody can read.
func TestSectionsNeedDocComments(t *testing.T) {
	t.Parallel()
	docs, err := fieldDocs("../../config")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sections(docs); err != nil {
		t.Fatalf("with every comment: %v", err)
	}
	delete(docs, "Tokens.RefreshTTL")
	if _, err := Sections(docs); err == nil || !strings.Contains(err.Error(), "config.Tokens.RefreshTTL") {
		t.Fatalf("error %v, want one naming config.Tokens.RefreshTTL", err)
	}
}
