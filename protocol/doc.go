// Package protocol holds the OAuth2 names Tokensmith speaks (grant types, parameter names,
// error codes) and the one Error type every layer returns. The names and RFC 6749 error codes
// are go-oauth2's, so an Error matches go-oauth2's error values with errors.Is. The mapping
// from an error code to an HTTP status lives here, in Status, so the token, revocation and
// introspection endpoints and the admin API answer the same way (RFC 6749 §5.2).
package protocol
