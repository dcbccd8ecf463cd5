// Package grants turns an authenticated token request into tokens. Each grant type
// (client_credentials, password, refresh_token) is a small unit behind the Grant interface;
// the Handler owns the steps every grant shares (client authentication, the client's allowed
// grants, scope and audience checks, minting), so no grant can skip one.
//
// It builds on go-oauth2's vocabulary (oauth2.GrantType, oauth2.ClientInfo with
// ClientPasswordVerifier) but not on its manage.Manager: that manager reads a refresh token
// and then writes its successor (two racing refreshes both win), never checks that the caller
// owns the refresh token, compares secrets with != and writes a record per access token.
// Rotation here is one atomic store operation (storage.Rotation).
package grants
