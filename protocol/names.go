package protocol

import "github.com/go-oauth2/oauth2/v4"

// Grant types served by the token endpoint. They are go-oauth2's constants, so values flow into
// its interfaces unchanged.
const (
	GrantClientCredentials = string(oauth2.ClientCredentials)
	GrantPassword          = string(oauth2.PasswordCredentials)
	GrantRefreshToken      = string(oauth2.Refreshing)
	// GrantTokenExchange is RFC 8693 §2.1.
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Token type identifiers of RFC 8693 §3, and Tokensmith's own for personal tokens.
const (
	TokenTypeURIAccess   = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeURIJWT      = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeURIPersonal = "urn:tokensmith:params:oauth:token-type:personal_token"
)

// Client authentication methods (RFC 7591 §2).
const (
	AuthSecretBasic = "client_secret_basic"
	AuthSecretPost  = "client_secret_post"
	// AuthNone is a public client (RFC 6749 §2.1): identified by its client_id, no secret.
	AuthNone = "none"
	// AuthPrivateKeyJWT is a client that signs an assertion with its key (RFC 7523 §2.2).
	AuthPrivateKeyJWT = "private_key_jwt"
	// AuthTLSClient is a client that presents a certificate from the client CA on the TLS
	// connection, matched by its subject or one subject alternative name (RFC 8705 §2.1).
	AuthTLSClient = "tls_client_auth"
	// AuthSelfSignedTLSClient is a client that presents a certificate whose key is in its
	// registered key set (RFC 8705 §2.2).
	AuthSelfSignedTLSClient = "self_signed_tls_client_auth"
)

// Client assertion parameters (RFC 7521 §4.2) and the JWT assertion type (RFC 7523 §2.2).
const (
	ParamClientAssertion     = "client_assertion"
	ParamClientAssertionType = "client_assertion_type"
	AssertionTypeJWTBearer   = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
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
	// RFC 8693 §2.1.
	ParamSubjectToken       = "subject_token"
	ParamSubjectTokenType   = "subject_token_type"
	ParamActorToken         = "actor_token"
	ParamActorTokenType     = "actor_token_type"
	ParamRequestedTokenType = "requested_token_type"
	ParamResource           = "resource"
)

// MaxTokenLen is the longest token, in bytes, that the revocation and introspection endpoints
// take in their token parameter (RFC 7009 §2.1, RFC 7662 §2.1). Nothing issued may be longer:
// a client whose registered scopes and audiences could make a longer access token is refused
// when it is saved, so every token can be taken back and looked at.
const MaxTokenLen = 8192

// Token type hints (RFC 7009 §2.1) and introspection token_type values.
const (
	TokenTypeAccess  = "access_token"
	TokenTypeRefresh = "refresh_token"
)

// Token types of a token response and of introspection (RFC 6750, RFC 9449 §5).
const (
	TokenTypeBearer = "Bearer"
	TokenTypeDPoP   = "DPoP"
)
