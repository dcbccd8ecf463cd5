package protocol_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	oauth2errors "github.com/go-oauth2/oauth2/v4/errors"
	"github.com/tokensmith/tokensmith/protocol"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want int
	}{
		{protocol.InvalidRequest, http.StatusBadRequest},
		{protocol.InvalidClient, http.StatusUnauthorized},
		{protocol.InvalidGrant, http.StatusBadRequest},
		{protocol.UnauthorizedClient, http.StatusBadRequest},
		{protocol.UnsupportedGrantType, http.StatusBadRequest},
		{protocol.InvalidScope, http.StatusBadRequest},
		{protocol.InvalidTarget, http.StatusBadRequest},
		{protocol.TemporarilyUnavailable, http.StatusServiceUnavailable},
		{protocol.ServerError, http.StatusInternalServerError},
		{protocol.RateLimited, http.StatusTooManyRequests},
		{protocol.InvalidToken, http.StatusUnauthorized},
		{protocol.NotFound, http.StatusNotFound},
		{protocol.AlreadyExists, http.StatusConflict},
		{protocol.Unauthorized, http.StatusUnauthorized},
		{protocol.MethodNotAllowed, http.StatusMethodNotAllowed},
		{"some_new_code", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			if got := protocol.Status(tc.code); got != tc.want {
				t.Errorf("Status(%q) = %d, want %d", tc.code, got, tc.want)
			}
			if got := protocol.Errorf(tc.code, "x").Status(); got != tc.want {
				t.Errorf("Error{%q}.Status() = %d, want %d", tc.code, got, tc.want)
			}
		})
	}
}

// The RFC 6749 codes are go-oauth2's error values by their text.
func TestCodesAreGoOAuth2s(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want error
	}{
		{protocol.InvalidRequest, oauth2errors.ErrInvalidRequest},
		{protocol.InvalidClient, oauth2errors.ErrInvalidClient},
		{protocol.InvalidGrant, oauth2errors.ErrInvalidGrant},
		{protocol.UnauthorizedClient, oauth2errors.ErrUnauthorizedClient},
		{protocol.UnsupportedGrantType, oauth2errors.ErrUnsupportedGrantType},
		{protocol.InvalidScope, oauth2errors.ErrInvalidScope},
		{protocol.TemporarilyUnavailable, oauth2errors.ErrTemporarilyUnavailable},
		{protocol.ServerError, oauth2errors.ErrServerError},
	}
	for _, tc := range tests {
		if tc.code != tc.want.Error() {
			t.Errorf("code %q, want go-oauth2's %q", tc.code, tc.want.Error())
		}
	}
}

func TestIs(t *testing.T) {
	t.Parallel()
	grant := protocol.Errorf(protocol.InvalidGrant, "refresh token is unknown")
	wrapped := fmt.Errorf("refresh: %w", grant)
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same code", grant, &protocol.Error{Code: protocol.InvalidGrant}, true},
		{"same code, other description", grant, protocol.Errorf(protocol.InvalidGrant, "other"), true},
		{"other code", grant, &protocol.Error{Code: protocol.InvalidClient}, false},
		{"go-oauth2's value of the code", grant, oauth2errors.ErrInvalidGrant, true},
		{"go-oauth2's value of another code", grant, oauth2errors.ErrInvalidRequest, false},
		{"wrapped, same code", wrapped, &protocol.Error{Code: protocol.InvalidGrant}, true},
		{"wrapped, go-oauth2's value", wrapped, oauth2errors.ErrInvalidGrant, true},
		{"invalid_client", protocol.Errorf(protocol.InvalidClient, ""), oauth2errors.ErrInvalidClient, true},
		{"unauthorized_client", protocol.Errorf(protocol.UnauthorizedClient, ""), oauth2errors.ErrUnauthorizedClient, true},
		{"unsupported_grant_type", protocol.Errorf(protocol.UnsupportedGrantType, ""), oauth2errors.ErrUnsupportedGrantType, true},
		{"invalid_scope", protocol.Errorf(protocol.InvalidScope, ""), oauth2errors.ErrInvalidScope, true},
		{"temporarily_unavailable", protocol.Unavailable(errors.New("down")), oauth2errors.ErrTemporarilyUnavailable, true},
		{"server_error", protocol.As(errors.New("boom")), oauth2errors.ErrServerError, true},
		{"a code of our own has no go-oauth2 value", protocol.Errorf(protocol.RateLimited, ""), oauth2errors.ErrInvalidRequest, false},
		{"the hidden cause", protocol.Unavailable(errCause), errCause, true},
		{"another error of the same text", grant, errors.New(protocol.InvalidGrant), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", tc.err, tc.target, got, tc.want)
			}
		})
	}
}

var errCause = errors.New("store down")
