package secret

import (
	"strings"
	"testing"
)

func TestPersonalTokenFormat(t *testing.T) {
	id := NewID()
	tok := NewPersonalToken(id)
	if len(tok) != PersonalTokenLen || !strings.HasPrefix(tok, "tsp_") {
		t.Fatalf("token %q", tok)
	}
	if got, ok := ParsePersonalToken(tok); !ok || got != id {
		t.Fatalf("Parse = %q %v, want %q", got, ok, id)
	}
	if NewPersonalToken(id) == tok {
		t.Fatal("two tokens alike")
	}
	// Every single-character change is caught by the checksum.
	for i := len(PersonalPrefix); i < len(tok); i++ {
		for _, c := range []byte(base62) {
			if c == tok[i] {
				continue
			}
			typo := tok[:i] + string(c) + tok[i+1:]
			if _, ok := ParsePersonalToken(typo); ok {
				t.Fatalf("a change at %d (%q → %q) passed the checksum", i, tok[i], c)
			}
		}
	}
	for _, bad := range []string{"", "tsp_", tok[:len(tok)-1], tok + "x", "tsr_" + tok[4:], "TSP_" + tok[4:]} {
		if _, ok := ParsePersonalToken(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParsePersonalToken(f *testing.F) {
	f.Add(NewPersonalToken(NewID()))
	f.Add("tsp_aaaaaaaaaaaa")
	f.Fuzz(func(t *testing.T, s string) {
		if id, ok := ParsePersonalToken(s); ok && (len(id) != personalIDLen || !strings.HasPrefix(s, PersonalPrefix)) {
			t.Fatalf("accepted %q as %q", s, id)
		}
	})
}
