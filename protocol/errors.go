package protocol

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error codes of RFC 6749 §5.2, plus the few Tokensmith adds for its own policies and admin API.
const (
	InvalidRequest         = "invalid_request"
	InvalidClient          = "invalid_client"
	InvalidGrant           = "invalid_grant"
	UnauthorizedClient     = "unauthorized_client"
	UnsupportedGrantType   = "unsupported_grant_type"
	InvalidScope           = "invalid_scope"
	RateLimited            = "rate_limited"
	TemporarilyUnavailable = "temporarily_unavailable"
	ServerError            = "server_error"
	InvalidToken           = "invalid_token"

	// Admin API codes.
	NotFound       = "not_found"
	AlreadyExists  = "already_exists"
	Unauthorized   = "unauthorized"
	MethodNotFound = "method_not_allowed"
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

// Is reports whether target is an *Error with the same code, so callers can write
// errors.Is(err, &protocol.Error{Code: protocol.InvalidGrant}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Status is the HTTP status for this error (SPEC §3 table).
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
	case MethodNotFound:
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

// InvalidTarget is RFC 8707's error for an audience or resource the client may not have.
const InvalidTarget = "invalid_target"

// RateLimit is where a caller stands against the tightest of its client's quotas (daily or
// hourly limit), answered as X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset.
type RateLimit struct {
	Limit     int
	Remaining int
	Reset     time.Time
}
