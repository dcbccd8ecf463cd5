package protocol

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	oauth2errors "github.com/go-oauth2/oauth2/v4/errors"
)

// Error codes of RFC 6749 §5.2. They are go-oauth2's own error values, by their text, so an
// Error matches them with errors.Is (see Error.Is).
var (
	InvalidRequest         = oauth2errors.ErrInvalidRequest.Error()
	InvalidClient          = oauth2errors.ErrInvalidClient.Error()
	InvalidGrant           = oauth2errors.ErrInvalidGrant.Error()
	UnauthorizedClient     = oauth2errors.ErrUnauthorizedClient.Error()
	UnsupportedGrantType   = oauth2errors.ErrUnsupportedGrantType.Error()
	InvalidScope           = oauth2errors.ErrInvalidScope.Error()
	TemporarilyUnavailable = oauth2errors.ErrTemporarilyUnavailable.Error()
	ServerError            = oauth2errors.ErrServerError.Error()
)

// oauth2Errors are go-oauth2's error values for the codes above.
var oauth2Errors = map[string]error{}

func init() {
	for _, e := range []error{oauth2errors.ErrInvalidRequest, oauth2errors.ErrInvalidClient, oauth2errors.ErrInvalidGrant,
		oauth2errors.ErrUnauthorizedClient, oauth2errors.ErrUnsupportedGrantType, oauth2errors.ErrInvalidScope,
		oauth2errors.ErrTemporarilyUnavailable, oauth2errors.ErrServerError} {
		oauth2Errors[e.Error()] = e
	}
}

// Codes Tokensmith adds: for its own policies, RFC 6750's, and the admin API's.
const (
	RateLimited  = "rate_limited"
	InvalidToken = "invalid_token"

	// Admin API codes.
	NotFound         = "not_found"
	AlreadyExists    = "already_exists"
	Unauthorized     = "unauthorized"
	MethodNotAllowed = "method_not_allowed"
)

// Error is an RFC 6749 §5.2 error value. Grants and services return it; exactly one writer per
// listener renders it, using Status for the HTTP code.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// RetryAfter, when positive, becomes the Retry-After header in seconds.
	RetryAfter int `json:"-"`
	// Basic marks an invalid_client answer to a request that authenticated with HTTP Basic:
	// RFC 6749 §5.2 then requires a WWW-Authenticate challenge.
	Basic bool `json:"-"`
	// RateLimit, when set, is the quota that refused the request, for X-RateLimit-* headers.
	RateLimit *RateLimit `json:"-"`
	// DPoPNonce, when set, is the server's current DPoP nonce, for the DPoP-Nonce header
	// (RFC 9449 §8): with use_dpop_nonce, the nonce to retry with.
	DPoPNonce string `json:"-"`
	// cause is kept for logs and errors.Unwrap; it is never sent to the caller.
	cause error
}

// Errorf builds an Error with a formatted description.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// Wrap builds an Error that remembers the internal cause (for logs) without exposing it.
func Wrap(code, description string, cause error) *Error {
	return &Error{Code: code, Description: description, cause: cause}
}

func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// Unwrap returns the internal cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same code, or go-oauth2's error value for
// that code, so callers can write errors.Is(err, &protocol.Error{Code: protocol.InvalidGrant})
// or errors.Is(err, errors.ErrInvalidGrant) with go-oauth2's errors package.
func (e *Error) Is(target error) bool {
	if t, ok := target.(*Error); ok {
		return t.Code == e.Code
	}
	sentinel, ok := oauth2Errors[e.Code]
	return ok && sentinel == target
}

// Status is the HTTP status for this error (the error table in docs/integrators.md).
func (e *Error) Status() int { return Status(e.Code) }

// Status maps an error code to its HTTP status. It is the only place that does.
// go-oauth2's own table answers 401 for invalid_grant and 500 for a wrong password; ours
// follows RFC 6749 §5.2.
func Status(code string) int {
	switch code {
	case InvalidClient, Unauthorized, InvalidToken:
		return http.StatusUnauthorized
	case RateLimited:
		return http.StatusTooManyRequests
	case TemporarilyUnavailable:
		return http.StatusServiceUnavailable
	case NotFound:
		return http.StatusNotFound
	case AlreadyExists:
		return http.StatusConflict
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case ServerError:
		return http.StatusInternalServerError
	default:
		return http.StatusBadRequest
	}
}

// As converts any error into an *Error. Errors that are not already protocol errors become
// server_error, keeping the original as the hidden cause.
func As(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return Wrap(ServerError, "internal error", err)
}

// Unavailable is the answer to a store that cannot be reached or did not answer in time: retry
// later (503). The cause is kept for the logs.
func Unavailable(cause error) *Error {
	return Wrap(TemporarilyUnavailable, "the store is unavailable, retry later", cause)
}

// InvalidTarget is RFC 8707's error for an audience or resource the client may not have.
const InvalidTarget = "invalid_target"

// InvalidDPoPProof is RFC 9449 §5's error for a DPoP proof the token endpoint refuses (400).
const InvalidDPoPProof = "invalid_dpop_proof"

// UseDPoPNonce is RFC 9449 §8's error for a DPoP proof without the server's current nonce
// (400, with the nonce in the DPoP-Nonce header).
const UseDPoPNonce = "use_dpop_nonce"

// RateLimit is where a caller stands against the tightest of its client's quotas (daily or
// hourly limit), answered as X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset.
type RateLimit struct {
	Limit     int
	Remaining int
	Reset     time.Time
}
