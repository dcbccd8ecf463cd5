package protocol

import "github.com/go-oauth2/oauth2/v4"

// Grant types served by the token endpoint. They are go-oauth2's constants, so values flow into
// its interfaces unchanged.
const (
	GrantClientCredentials = string(oauth2.ClientCredentials)
	GrantPassword          = string(oauth2.PasswordCredentials)
	GrantRefreshToken      = string(oauth2.Refreshing)
)

// Client authentication methods (RFC 7591 §2).
const (
	AuthSecretBasic = "client_secret_basic"
	AuthSecretPost  = "client_secret_post"
)

// Token endpoint parameter names (RFC 6749 §4, §6).
const (
	ParamGrantType    = "grant_type"
	ParamClientID     = "client_id"
	ParamClientSecret = "client_secret"
	ParamScope        = "scope"
	ParamUsername     = "username"
	ParamPassword     = "password"
	ParamRefreshToken = "refresh_token"
	ParamAudience     = "audience"
	// RFC 7009 §2.1 and RFC 7662 §2.1.
	ParamToken         = "token"
	ParamTokenTypeHint = "token_type_hint"
)

// Token type hints (RFC 7009 §2.1) and introspection token_type values.
const (
	TokenTypeAccess  = "access_token"
	TokenTypeRefresh = "refresh_token"
)
