package storage

import (
	"context"
	"time"
)

// TrustedIssuer is an outside identity provider (a Kubernetes cluster, a SPIFFE trust domain,
// a CI system) whose signed tokens a workload may present instead of a secret of its own.
// Which workloads it vouches for is decided per client (federated identities); the record
// only says where the issuer's keys are and which audiences its tokens must name.
type TrustedIssuer struct {
	ID string `json:"id"`
	// Issuer is the exact iss of the tokens; it is unique among trusted issuers.
	Issuer string `json:"issuer"`
	// JWKSURI is where the issuer's keys are; empty means the jwks_uri its OpenID
	// configuration names.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// Audiences are the aud values accepted from this issuer; empty means Tokensmith's own
	// issuer URL.
	Audiences []string  `json:"audiences,omitempty"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// TrustedIssuers is the part of Storage that keeps trusted issuers. Deleting one must end the
// access of its workloads on every replica at once, so callers publish ChangeTrustedIssuer
// after a delete and replicas cache nothing of it beyond the next change.
type TrustedIssuers interface {
	// CreateTrustedIssuer stores a trusted issuer; ErrAlreadyExists when its id is taken or
	// its Issuer is already trusted.
	CreateTrustedIssuer(ctx context.Context, ti TrustedIssuer) error
	// GetTrustedIssuer returns one trusted issuer by id.
	GetTrustedIssuer(ctx context.Context, id string) (TrustedIssuer, error)
	// TrustedIssuerByIssuer returns the trusted issuer whose Issuer is exactly iss.
	TrustedIssuerByIssuer(ctx context.Context, iss string) (TrustedIssuer, error)
	// ListTrustedIssuers returns every trusted issuer, in any order.
	ListTrustedIssuers(ctx context.Context) ([]TrustedIssuer, error)
	// DeleteTrustedIssuer removes one; ErrNotFound when there is none with that id.
	DeleteTrustedIssuer(ctx context.Context, id string) error
	// RestoreTrustedIssuer writes a trusted issuer as ListTrustedIssuers read it (import; see
	// Storage's Restore methods): ErrAlreadyExists, writing nothing, when its Issuer is
	// another record's.
	RestoreTrustedIssuer(ctx context.Context, ti TrustedIssuer, r Restore) (Outcome, error)
}
