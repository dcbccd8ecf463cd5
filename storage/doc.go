// Package storage defines the one interface every Tokensmith backend implements, the plain
// records it stores and the sentinel errors it returns. Backends live beside it
// (storage/embedded for memory: and file:, storage/redis for Redis) and all of them pass the same
// conformance suite in storage/conformance.
//
// Consumers do not take the whole Storage: each package declares the few methods it calls
// (grants.Store for the token path, keys.Store for signing keys, registry.Store for clients,
// users and personal tokens, replica.Store for heartbeats and replica.Feed for the change feed,
// console.Store for sessions, and the one-method server.Pinger, server.ReplicaLister and
// outage.Pinger), so a decorator such as the token path's store deadline is typed to exactly
// what it wraps.
//
// Security promises are part of the interface, not of the callers: a refresh token rotates
// exactly once even when requests race (RotateRefreshToken is one atomic step), it only rotates
// for the client it was issued to, a revoked token is never handed out again by reuse, and
// secrets reach the store only as SHA-256 digests.
//
// Time is always the caller's: every method that decides validity takes a now, and backends
// measure lifetimes from it, never from the wall clock.
package storage
