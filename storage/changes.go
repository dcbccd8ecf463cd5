package storage

// Change names a record that changed, for replicas to drop their cached copy.
type Change struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Kinds of Change.
const (
	ChangeClient        = "client"
	ChangeUser          = "user"
	ChangePersonalToken = "personal_token"
	ChangeSigningKeys   = "signing_keys"
	// ChangeTrustedIssuer: a trusted issuer was added or deleted; ID is its id.
	ChangeTrustedIssuer = "trusted_issuer"
)
