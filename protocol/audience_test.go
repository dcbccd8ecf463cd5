package protocol_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/tokensmith/tokensmith/protocol"
)

func TestAudienceJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    protocol.Audience
		wantErr string
		// out is how want is written back.
		out string
	}{
		{name: "one as a string", in: `"https://api.example.com"`, want: protocol.Audience{"https://api.example.com"}, out: `"https://api.example.com"`},
		{name: "one in an array", in: `["https://api.example.com"]`, want: protocol.Audience{"https://api.example.com"}, out: `"https://api.example.com"`},
		{name: "many", in: `["a","b"]`, want: protocol.Audience{"a", "b"}, out: `["a","b"]`},
		{name: "none", in: `[]`, want: protocol.Audience{}, out: `[]`},
		{name: "a number", in: `1`, wantErr: "audience must be a string or an array of strings"},
		{name: "an array of numbers", in: `[1]`, wantErr: "audience must be a string or an array of strings"},
		{name: "an object", in: `{"a":1}`, wantErr: "audience must be a string or an array of strings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got protocol.Audience
			err := json.Unmarshal([]byte(tc.in), &got)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Unmarshal(%s) = %v, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) || got == nil {
				t.Fatalf("Unmarshal(%s) = %#v, %v; want %#v", tc.in, got, err, tc.want)
			}
			out, err := json.Marshal(got)
			if err != nil || string(out) != tc.out {
				t.Errorf("Marshal(%#v) = %s, %v; want %s", got, out, err, tc.out)
			}
		})
	}
}

// An audience left out of a document stays unset: PATCH /admin/clients leaves it as it is.
func TestAudienceAbsentOrNull(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{}`, `{"audience":null}`} {
		var v struct {
			Audience *protocol.Audience `json:"audience,omitempty"`
		}
		if err := json.Unmarshal([]byte(in), &v); err != nil || v.Audience != nil {
			t.Errorf("Unmarshal(%s) = %v, %v; want no audience", in, v.Audience, err)
		}
	}
}
