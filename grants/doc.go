// Package grants turns authenticated token requests into tokens, and takes them back. Each
// grant type (client_credentials, password, refresh_token, RFC 8693 token exchange) is a small
// unit behind the Grant interface; the Service (service.go) owns the steps every grant shares
// (client authentication in clientauth.go, the client's allowed grants, scope and audience
// checks in scopes.go, reuse and limits in issue.go, minting in mint.go), so no grant can skip
// one. Revocation (RFC 7009) and introspection (RFC 7662) share one lookup of what a presented
// token is (tokens.go), for access, refresh and personal tokens.
//
// go-oauth2 is its vocabulary (grant type names, error codes; see the protocol package), not
// its token manager. That manager reads a refresh token and then writes its successor, so two
// racing refreshes both win; and it writes a record per access token, where ours are
// self-contained JWTs and a rotation is one atomic store step (storage.Rotation).
//
// The store it uses is declared here (Store); every call to it is bounded by the store
// deadline and measured (store.go). Cached clients and personal tokens are dropped on every
// replica through the change feed (Service.Forget).
package grants
