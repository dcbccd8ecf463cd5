//go:build !openssl

package keys

func opensslImplementation() (implementation, bool) { return implementation{}, false }
