// Package grants turns authenticated token requests into tokens, and takes them back. Each
// grant type (client_credentials, password, refresh_token, RFC 8693 token exchange) is a small
// unit behind the Grant interface; the Service owns the steps every grant shares (client
// authentication, the client's allowed grants, scope and audience checks, reuse and limits,
// minting), so no grant can skip one. Revocation (RFC 7009) and introspection (RFC 7662) share
// one lookup of what a presented token is (tokens.go), for access, refresh and personal tokens.
//
// It builds on go-oauth2's vocabulary (oauth2.GrantType, oauth2.ClientInfo with
// ClientPasswordVerifier) but not on its manage.Manager: that manager reads a refresh token
// and then writes its successor (two racing refreshes both win), never checks that the caller
// owns the refresh token, compares secrets with != and writes a record per access token.
// Rotation here is one atomic store operation (storage.Rotation).
//
// The store it uses is declared here (Store) and every call to it is bounded by the store
// deadline (store.go); cached clients and personal tokens are dropped on every replica through
// the change feed (Handler.Forget).
package grants
