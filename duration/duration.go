// Package duration is the one way Tokensmith reads and writes lengths of time in its YAML,
// environment and admin JSON: Go duration strings, and whole days ("14d") because refresh
// lifetimes are said in days. It imports nothing of the project, so every layer can use it.
package duration

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes Go duration strings ("3h", "90s") and also
// accepts a whole number of days ("14d"), because refresh lifetimes are usually said in days.
type Duration time.Duration

// Max is the longest duration accepted anywhere (100 years): far beyond any token
// lifetime, and far enough from time.Duration's limit (292 years) that adding one to a date
// cannot overflow.
const Max = 100 * 365 * 24 * time.Hour

// Parse parses a Go duration string or a whole number of days ("14d"), up to
// Max. Negative Go durations parse; each caller states its own minimum.
func Parse(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if n > int64(Max/(24*time.Hour)) {
			return 0, fmt.Errorf("duration %q is longer than %s", s, Format(Max))
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 90s, 3h, 14d)", s)
		}
	}
	if d > Max {
		return 0, fmt.Errorf("duration %q is longer than %s", s, Format(Max))
	}
	return d, nil
}

// Format renders d the way a person would write it ("3h", "24h", "14d", "1h30m"):
// whole days from two days up, as refresh lifetimes are said.
func Format(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d >= 48*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String() // e.g. "3h0m0s", "1m30s"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText implements encoding.TextUnmarshaler (used by YAML and environment variables).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(Format(time.Duration(d))), nil }
