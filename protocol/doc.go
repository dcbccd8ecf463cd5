// Package protocol holds the OAuth2 names Tokensmith speaks (grant types, parameter names,
// error codes) and the one Error type every layer returns. The mapping from an error code to
// an HTTP status lives here, in Status, so the token endpoint, the admin API and later the
// revocation and introspection endpoints answer the same way (RFC 6749 §5.2).
package protocol
