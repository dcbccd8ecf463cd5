package grants

import (
	"slices"
	"strings"

	"github.com/tokensmith/tokensmith/protocol"
)

// resolveScope checks a requested scope (RFC 6749 §3.3) against the client's allowed scopes.
// No scope requested means every allowed scope.
func resolveScope(allowed []string, requested string) (string, error) {
	if requested == "" {
		return strings.Join(allowed, " "), nil
	}
	var out []string
	for _, s := range strings.Split(requested, " ") {
		if s == "" {
			continue
		}
		if !validScopeToken(s) {
			return "", protocol.Errorf(protocol.InvalidScope, "scope %q has characters RFC 6749 §3.3 does not allow", s)
		}
		if !slices.Contains(allowed, s) {
			return "", protocol.Errorf(protocol.InvalidScope, "scope %q is not allowed for this client", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " "), nil
}

// intersect is the members of a also in b, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func validScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x21 || b == 0x22 || b == 0x5c || b > 0x7e {
			return false
		}
	}
	return true
}

// target resolves the scope and audience a new token is asked for (RFC 6749 §3.3, RFC 8707).
func (c *core) target(cl *Client, r *Request) (scope string, aud []string, err error) {
	if scope, err = resolveScope(cl.Scopes, r.Params[protocol.ParamScope]); err != nil {
		return "", nil, err
	}
	aud, err = c.audienceFor(cl, r.Params)
	return scope, aud, err
}

// audienceFor is the aud a new token of cl gets, for every grant that issues one from the
// client's registration: audience (RFC 8693) and resource (RFC 8707, repeated parameters
// arrive space-separated, which no URI contains) both name it. Each must be one the client may
// have, else invalid_target; none asked means all of them.
func (c *core) audienceFor(cl *Client, p map[string]string) ([]string, error) {
	aud := p[protocol.ParamAudience]
	res := strings.Fields(p[protocol.ParamResource])
	if len(res) == 0 {
		return c.resolveAudience(cl, aud)
	}
	if aud != "" && (len(res) != 1 || res[0] != aud) {
		return nil, protocol.Errorf(protocol.InvalidTarget, "audience and resource differ")
	}
	var out []string
	for _, r := range res {
		if _, err := c.resolveAudience(cl, r); err != nil {
			return nil, err
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// resolveAudience picks the aud: the requested one if the client may have it, else all of the
// client's audiences (or the server default).
func (c *core) resolveAudience(cl *Client, requested string) ([]string, error) {
	allowed := cl.Audience
	if len(allowed) == 0 {
		allowed = c.policy.Audience
	}
	if requested == "" {
		return allowed, nil
	}
	if !slices.Contains(allowed, requested) {
		return nil, protocol.Errorf(protocol.InvalidTarget, "audience %q is not allowed for this client", requested)
	}
	return []string{requested}, nil
}
