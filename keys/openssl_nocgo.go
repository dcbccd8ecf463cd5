//go:build openssl && !cgo

package keys

// The openssl tag links libcrypto through cgo; without cgo it would silently fall back to
// nothing, so the build stops here instead, with the fix in the name.
var _ = the_openssl_build_tag_needs_CGO_ENABLED_1_and_the_libssl_dev_headers
