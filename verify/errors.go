package verify

import (
	"errors"
	"net/http"
	"strings"
)

// Reasons a request is refused. Every error Verify and Route.Authenticate return matches
// exactly one of them with errors.Is, so an application can tell an expired token from a
// forged one without parsing text.
var (
	// ErrNoToken: the request carries no token at all (RFC 6750 §3.1: 401 and a challenge
	// without an error code).
	ErrNoToken = errors.New("no token")
	// ErrMalformedRequest: the token is sent in a malformed header or in more than one way
	// (400 invalid_request).
	ErrMalformedRequest = errors.New("malformed request")
	// ErrMalformed: the token is not a compact JWS, or its header or claims do not parse.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgorithm: the token is signed with an algorithm the Verifier does not accept (by
	// default anything but RS256: none, HS256, RS512…), or with another algorithm than the one
	// its key is published for.
	ErrAlgorithm = errors.New("algorithm not accepted")
	// ErrType: the JOSE header's typ is not at+jwt (RFC 9068 §2.1): an ID token or another
	// JWT signed by the same key is not an access token.
	ErrType = errors.New("not an access token")
	// ErrUnknownKey: no published key has the token's kid, even after a refetch.
	ErrUnknownKey = errors.New("unknown key")
	// ErrSignature: the signature does not verify with the key the token names.
	ErrSignature = errors.New("bad signature")
	// ErrIssuer: iss is not the configured issuer.
	ErrIssuer = errors.New("wrong issuer")
	// ErrAudience: aud names none of the configured audiences.
	ErrAudience = errors.New("wrong audience")
	// ErrExpired: exp has passed (beyond the leeway).
	ErrExpired = errors.New("expired")
	// ErrNotYetValid: nbf, or iat, is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("not yet valid")
	// ErrClaims: a claim RFC 9068 §2.2 requires is missing or has the wrong type.
	ErrClaims = errors.New("missing claim")
	// ErrInactive: the introspection endpoint answered active:false (revoked, or, without
	// local checks, also expired or unknown).
	ErrInactive = errors.New("inactive")
	// ErrInsufficientScope: the token is valid but lacks a scope the route requires
	// (403 insufficient_scope).
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrProof: a DPoP proof is missing, malformed, signed by another key than the token is
	// bound to, made for another request, stale or replayed (401 invalid_dpop_proof, with a
	// DPoP challenge).
	ErrProof = errors.New("invalid DPoP proof")
	// ErrBinding: a sender-constrained token came without what binds it (a DPoP-bound token
	// sent as Bearer, a certificate-bound token without its certificate), a bearer token came
	// on a RequireBinding route, or Authorization: DPoP carried an unbound token.
	ErrBinding = errors.New("binding not proven")
	// ErrUnavailable: the keys or the introspection endpoint could not be reached and nothing
	// usable is cached (503): the token may be perfectly good.
	ErrUnavailable = errors.New("authorization server unavailable")
)

// RFC 6750 §3.1 error codes.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
	// CodeInvalidDPoPProof is RFC 9449 §7.1's.
	CodeInvalidDPoPProof = "invalid_dpop_proof"
)

// Error is a refusal: what the middleware answers, and what Verify and Route.Authenticate
// return. Status, Code and Description are what the client is told; the wrapped cause, if any,
// is for logs only.
type Error struct {
	// Status is the HTTP status: 400, 401, 403 or 503.
	Status int
	// Code is the RFC 6750 error code, empty for a request without a token (and for 503).
	Code string
	// Description is the error_description: why, in words safe to show the caller.
	Description string
	// Scope is the scope the route needs, given with insufficient_scope.
	Scope string

	reason error
	cause  error
	// scheme is the challenge's: Bearer when empty, or DPoP with algs.
	scheme, algs string
}

func (e *Error) Error() string {
	s := e.reason.Error()
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Is reports whether target is this error's reason (ErrExpired, ErrSignature…).
func (e *Error) Is(target error) bool { return target == e.reason }

// Unwrap returns the underlying cause (a network error, a go-jose error), if any.
func (e *Error) Unwrap() error { return e.cause }

func refuse(reason error, description string, cause error) *Error {
	e := &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: description, reason: reason, cause: cause}
	switch reason {
	case ErrNoToken:
		e.Code = ""
	case ErrMalformedRequest:
		e.Status, e.Code = http.StatusBadRequest, CodeInvalidRequest
	case ErrInsufficientScope:
		e.Status, e.Code = http.StatusForbidden, CodeInsufficientScope
	case ErrProof:
		e.Code = CodeInvalidDPoPProof
	case ErrUnavailable:
		e.Status, e.Code = http.StatusServiceUnavailable, ""
	}
	return e
}

// asError turns any error into an *Error; an unknown error is an invalid token, never a pass.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return refuse(ErrMalformed, "the token could not be verified", err)
}

// challenge renders the WWW-Authenticate value (RFC 6750 §3). A 503 has no challenge: the
// credentials may be fine, the server could not check them.
func (e *Error) challenge(realm string) string {
	if e.Status == http.StatusServiceUnavailable {
		return ""
	}
	var b strings.Builder
	if e.scheme == "" {
		b.WriteString(schemeBearer)
	} else {
		b.WriteString(e.scheme)
	}
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep + name + `="` + quotable(value) + `"`)
		sep = ", "
	}
	if realm != "" {
		param("realm", realm)
	}
	if e.Code != "" {
		param("error", e.Code)
		if e.Description != "" {
			param("error_description", e.Description)
		}
	}
	if e.Scope != "" {
		param("scope", e.Scope)
	}
	if e.algs != "" {
		param("algs", e.algs)
	}
	return b.String()
}

// quotable keeps only the characters RFC 6750 §3 allows in error_description (%x20-21 /
// %x23-5B / %x5D-7E): no quote or backslash can end the quoted string early, whatever a token
// put into a description.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, s)
}

// printable shortens an attacker-chosen value (an alg, a typ) for a description.
func printable(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return quotable(s)
}
