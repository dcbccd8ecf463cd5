package protocol

import (
	"encoding/json"
	"errors"
)

// Audience is an audience list as JSON carries it: aud in a token (RFC 7519 §4.1.3) and the
// admin API's audience field both take a single string or an array of strings.
type Audience []string

// MarshalJSON writes a single string when there is one audience, as RFC 7519 §4.1.3 allows:
// every byte of an access token counts.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON accepts "a" or ["a","b"].
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("audience must be a string or an array of strings")
	}
	*a = many
	return nil
}
