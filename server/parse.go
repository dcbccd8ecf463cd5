package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/tokensmith/tokensmith/grants"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
)

// MaxBodyBytes is the largest request body any endpoint reads.
const MaxBodyBytes = 64 << 10

func badRequest(format string, args ...any) *protocol.Error {
	return protocol.Errorf(protocol.InvalidRequest, format, args...)
}

// MaxParamLen is the longest value each token, revocation and introspection parameter may
// have, in bytes; a longer one is refused with 400 before anything is looked up, so no
// oversized value reaches the store, the logs or the failed-login counts. Parameters not named
// here may have up to DefaultMaxParamLen.
var MaxParamLen = map[string]int{
	protocol.ParamGrantType:     128,
	protocol.ParamClientID:      registry.MaxClientIDLen,
	protocol.ParamClientSecret:  256,
	protocol.ParamUsername:      registry.MaxUsernameLen,
	protocol.ParamPassword:      256,
	protocol.ParamScope:         2048,
	protocol.ParamAudience:      512,
	protocol.ParamRefreshToken:  256,
	protocol.ParamToken:         protocol.MaxTokenLen,
	protocol.ParamTokenTypeHint: 64,
}

// DefaultMaxParamLen bounds parameters without an entry in MaxParamLen.
const DefaultMaxParamLen = 8192

// ParseTokenRequest reads a token request (also a revocation or introspection request): a form
// (RFC 6749 §3.2) or a JSON object with the same field names, client credentials from HTTP
// Basic (URL-decoded, RFC 6749 §2.3.1) or the body. Any malformed input is an *protocol.Error
// with a 4xx status, never a panic.
func ParseTokenRequest(r *http.Request) (*grants.Request, error) {
	params, err := readParams(r)
	if err != nil {
		return nil, err
	}
	for k, v := range params {
		limit, ok := MaxParamLen[k]
		if !ok {
			limit = DefaultMaxParamLen
		}
		if len(v) > limit {
			return nil, badRequest("parameter %q is longer than %d bytes", printable(k), limit)
		}
	}
	req := &grants.Request{GrantType: params[protocol.ParamGrantType]}
	delete(params, protocol.ParamGrantType)
	bodyID, bodySecret := params[protocol.ParamClientID], params[protocol.ParamClientSecret]
	delete(params, protocol.ParamClientID)
	delete(params, protocol.ParamClientSecret)
	assertion, assertionType := params[protocol.ParamClientAssertion], params[protocol.ParamClientAssertionType]
	delete(params, protocol.ParamClientAssertion)
	delete(params, protocol.ParamClientAssertionType)
	req.Params = params

	if assertion != "" || assertionType != "" {
		// RFC 7521 §4.2: an assertion is the client's one authentication method.
		if _, _, ok, _ := basicCredentials(r); ok || bodySecret != "" {
			return nil, badRequest("use one client authentication method: a client assertion, HTTP Basic or client_secret, not several")
		}
		if assertionType != protocol.AssertionTypeJWTBearer {
			return nil, badRequest("client_assertion_type must be %s", protocol.AssertionTypeJWTBearer)
		}
		if assertion == "" {
			return nil, badRequest("missing client_assertion")
		}
		req.ClientID, req.ClientAssertion, req.AuthMethod = bodyID, assertion, protocol.AuthPrivateKeyJWT
		return req, nil
	}

	if id, sec, ok, err := basicCredentials(r); err != nil {
		return nil, err
	} else if ok {
		if bodySecret != "" {
			return nil, badRequest("use one client authentication method: HTTP Basic or client_secret in the body, not both")
		}
		if bodyID != "" && bodyID != id {
			return nil, badRequest("client_id in the body differs from the one in HTTP Basic")
		}
		req.ClientID, req.ClientSecret, req.AuthMethod = id, sec, protocol.AuthSecretBasic
		return req, nil
	}
	// A Bearer header (livedigital sends its client token along) is not client
	// authentication; the body carries the credentials.
	req.ClientID, req.ClientSecret, req.AuthMethod = bodyID, bodySecret, protocol.AuthSecretPost
	return req, nil
}

// basicCredentials parses Authorization: Basic. ok is false when another scheme (or none) is used.
func basicCredentials(r *http.Request) (id, sec string, ok bool, err error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", "", false, nil
	}
	scheme, value, _ := strings.Cut(h[0], " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", false, nil
	}
	fail := &protocol.Error{Code: protocol.InvalidClient, Description: "malformed HTTP Basic credentials", Basic: true}
	if len(h) > 1 {
		return "", "", false, badRequest("more than one Authorization header")
	}
	raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if derr != nil {
		return "", "", false, fail
	}
	rawID, rawSec, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false, fail
	}
	// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", false, fail
	}
	if sec, err = url.QueryUnescape(rawSec); err != nil {
		return "", "", false, fail
	}
	if !utf8.ValidString(id) || !utf8.ValidString(sec) || id == "" {
		return "", "", false, fail
	}
	if len(id) > MaxParamLen[protocol.ParamClientID] || len(sec) > MaxParamLen[protocol.ParamClientSecret] {
		return "", "", false, badRequest("client credentials are longer than allowed")
	}
	return id, sec, true, nil
}

// readParams reads the body into a map, refusing duplicates (RFC 6749 §3.2) and dropping
// empty values ("sent without a value MUST be treated as if they were omitted").
func readParams(r *http.Request) (map[string]string, error) {
	mt, mparams, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/x-www-form-urlencoded" && mt != "application/json") {
		return nil, badRequest("Content-Type must be application/x-www-form-urlencoded or application/json")
	}
	if cs, ok := mparams["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, badRequest("charset must be UTF-8")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, badRequest("request body is larger than %d bytes", MaxBodyBytes)
		}
		return nil, badRequest("could not read the request body")
	}
	if !utf8.Valid(body) {
		return nil, badRequest("request body is not valid UTF-8")
	}
	if mt == "application/json" {
		return jsonParams(body)
	}
	return formParams(body)
}

func formParams(body []byte) (map[string]string, error) {
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("malformed form body")
	}
	out := make(map[string]string, len(values))
	for k, vs := range values {
		if k == protocol.ParamResource && len(vs) > 1 {
			// RFC 8707 repeats resource for several audiences; a URI holds no space, so the
			// grants read them back with strings.Fields.
			for _, v := range vs {
				if strings.ContainsAny(v, " \t\r\n") || v == "" {
					return nil, protocol.Errorf(protocol.InvalidTarget, "resource %q is not a URI", printable(v))
				}
			}
			vs = []string{strings.Join(vs, " ")}
		} else if len(vs) > 1 {
			return nil, badRequest("parameter %q is repeated", printable(k))
		}
		if !utf8.ValidString(k) || !utf8.ValidString(vs[0]) {
			return nil, badRequest("parameter %q is not valid UTF-8", printable(k))
		}
		if vs[0] != "" {
			out[k] = vs[0]
		}
	}
	return out, nil
}

// jsonParams reads a flat JSON object token by token, so duplicate keys are seen (the
// encoding/json map decoder keeps the last silently). Numbers keep their literal text:
// integrators send numeric client ids.
func jsonParams(body []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	malformed := badRequest("body must be one flat JSON object of strings")
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, malformed
	}
	out := map[string]string{}
	seen := map[string]bool{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, malformed
		}
		k, _ := kt.(string)
		if seen[k] {
			return nil, badRequest("parameter %q is repeated", printable(k))
		}
		seen[k] = true
		vt, err := dec.Token()
		if err != nil {
			return nil, malformed
		}
		switch v := vt.(type) {
		case string:
			if v != "" {
				out[k] = v
			}
		case json.Number:
			out[k] = v.String()
		case nil:
		default:
			return nil, badRequest("parameter %q must be a string", printable(k))
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, malformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("unexpected data after the JSON object")
	}
	return out, nil
}

// noDuplicateKeys walks a JSON document and refuses an object with a key twice, at any depth.
func noDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func() error
	walk = func() error {
		t, err := dec.Token()
		if err != nil {
			return badRequest("invalid JSON body")
		}
		switch t {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return badRequest("invalid JSON body")
				}
				k, _ := kt.(string)
				if seen[k] {
					return badRequest("key %q appears twice", printable(k))
				}
				seen[k] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		}
		if err != nil {
			return badRequest("invalid JSON body")
		}
		return nil
	}
	return walk()
}

// printable keeps error descriptions short and safe to echo.
func printable(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.ToValidUTF8(s, "?")
}
