// Package verify checks Tokensmith access tokens in Go resource servers: net/http middleware
// here, Gin middleware in verify/ginverify (a separate package, so an API on net/http does not
// build Gin).
//
// A Verifier is configured with the issuer (the JWKS is found through RFC 8414 metadata, then
// OpenID Connect discovery) or a JWKS URL, and the audiences the API answers to. A Route adds
// what one endpoint needs: scopes, extra places to read the token from, introspection.
//
//	v, err := verify.New(verify.Config{Issuer: "https://auth.example.com", Audience: []string{"https://api.example.com"}})
//	mux.Handle("GET /orders", v.Middleware(verify.Scopes("orders:read"))(orders))
//	// in the handler:
//	claims, _ := verify.FromContext(r.Context())
//
// What is accepted (RFC 9068 §4): a JWS in compact form signed with RS256, or with the
// algorithms Config.Algorithms names instead (any of RS256, PS256, ES256 and EdDSA, for a
// server whose clients choose access_token_signing_alg), and nothing else (no none, no HS256
// keyed with the public key, no RS512), whose header says typ at+jwt and names in kid a key of
// the published JWKS that is for the token's algorithm (its alg member; without one, the
// algorithm its type implies: RS256 for RSA, ES256 for P-256, EdDSA for Ed25519); the key is
// never taken from the token itself (jwk, jku, x5u and x5c headers are ignored). Then iss must be the issuer, aud must name one
// of the audiences, exp must not have passed and nbf and iat must not be in the future, each
// with a small leeway, and sub, client_id, iat and jti must be present.
//
// The JWKS is cached as long as its Cache-Control allows (Tokensmith says max-age=300). A
// token naming a kid that is not cached makes the Verifier fetch the set again, at most once
// per RefreshInterval however many such tokens arrive, and concurrent requests share that
// fetch. When the JWKS endpoint fails, the keys fetched before keep verifying. Tokensmith
// publishes a new key (keys.publish_ahead, 10 minutes by default) before it signs with it, so a
// rotation normally reaches the cache before the first token signed with the new key.
//
// The token is read from "Authorization: Bearer …", and, per route, from extra headers
// (TokenHeader: EvotorHeader takes the raw token as Evotor sends it, a "Bearer " prefix is
// tolerated) and query parameters (TokenQuery). Refusals are RFC 6750 §3 answers: 401 with
// WWW-Authenticate: Bearer realm="…", error="invalid_token", error_description="…" saying
// why (an expired token is told apart from an invalid one, see the Err variables); 401 with no
// error for a request without a token; 400 invalid_request for a malformed header; 403
// insufficient_scope with scope="…"; 503, without a challenge, when the keys or the
// introspection endpoint cannot be reached and nothing cached decides. An API with an error
// envelope of its own renders the body (Config.ErrorBody, RenderError); the status and the
// challenge stay RFC 6750's.
//
// A sender-constrained token is checked against what binds it: a token with cnf.jkt must come
// as "Authorization: DPoP …" with a DPoP proof (RFC 9449) signed by that key for this request
// and this token, never seen before (DPoPConfig); a token with cnf x5t#S256 must come over a
// connection with that client certificate (RFC 8705). RequireBinding refuses bearer tokens on
// a route. Package dpop signs the proofs on the caller's side.
//
// Routes that must see a revocation at once ask the introspection endpoint (RFC 7662) as
// well (Introspect) or instead (IntrospectOnly), with a short cache; PersonalTokens accepts
// Tokensmith personal tokens (tsp_…), which only introspection can check. The resource server
// authenticates there as a client created with resource_server: true
// (tokensmith client create --resource-server); without it, every other client's token is
// answered active:false.
//
// # Which JOSE library
//
// Parsing and signature checks are go-jose (github.com/go-jose/go-jose/v4), not code of
// ours, and not golang-jwt, whose output format the server's signer reproduces. go-jose makes the allowed algorithms
// an argument of parsing (jwt.ParseSigned refuses any other alg before a key is touched), it
// reads JWKs and JWK sets (RSA key decoding and validation, which golang-jwt leaves to extra
// libraries), it validates iss, aud (a string or an array) and the times with a leeway, and it
// depends on nothing outside the standard library, so a resource server pulls in one small
// module. Verifying with another implementation than the one the server signs with also
// checks the wire format rather than one library's agreement with itself.
package verify
