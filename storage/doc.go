// Package storage defines the one interface every Tokensmith backend implements, the plain
// records it stores and the sentinel errors it returns. Backends live beside it
// (storage/embedded for memory: and file:, storage/redis for Redis) and all of them pass the same
// conformance suite in storage/conformance.
//
// Security promises are part of the interface, not of the callers: a refresh token rotates
// exactly once even when requests race (RotateRefreshToken is one atomic step), it only rotates
// for the client it was issued to, and secrets reach the store only as SHA-256 digests.
package storage
