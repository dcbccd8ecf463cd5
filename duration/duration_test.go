package duration

import "testing"

func TestDurationFormat(t *testing.T) {
	for in, want := range map[string]string{"3h": "3h", "24h": "24h", "336h": "14d", "14d": "14d", "90s": "1m30s", "5m": "5m", "0s": "0s", "1h30m": "1h30m"} {
		d, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := Format(d); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

func TestDurationRefusesOverflowAndNonsense(t *testing.T) {
	for _, in := range []string{"213504d", "106752d", "36501d", "9223372036854775807d", "-1d", "1.5d", "d", "2562048h", "876001h", "soon"} {
		if d, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %s, want an error", in, d)
		}
	}
	if d, err := Parse("36500d"); err != nil || d != Max {
		t.Errorf("36500d: %s %v, want the maximum", d, err)
	}
}
