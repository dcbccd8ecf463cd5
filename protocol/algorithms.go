package protocol

import (
	"fmt"
	"slices"
	"strings"
)

// Access-token signing algorithms (JWS alg values, RFC 7518 §3.1; EdDSA with Ed25519, RFC 8037
// §3.1). RS256 is the default: every integration that predates the choice verifies it.
const (
	AlgRS256 = "RS256"
	AlgPS256 = "PS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// SigningAlgorithms lists the algorithms a server can publish keys for: asymmetric ones only,
// so a resource server holds nothing that can sign.
func SigningAlgorithms() []string { return []string{AlgRS256, AlgPS256, AlgES256, AlgEdDSA} }

// CheckSigningAlgorithm says why alg cannot sign access tokens, or returns nil. The message
// names the value, not the field: callers prefix the field they read it from.
func CheckSigningAlgorithm(alg string) error {
	known := SigningAlgorithms()
	switch up := strings.ToUpper(alg); {
	case slices.Contains(known, alg):
		return nil
	case up == "NONE":
		return fmt.Errorf("%q means an unsigned token; use one of %s", alg, strings.Join(known, ", "))
	case strings.HasPrefix(up, "HS"):
		return fmt.Errorf("%s is symmetric: every resource server would hold the key that signs; use one of %s",
			alg, strings.Join(known, ", "))
	default:
		return fmt.Errorf("%q is not one of %s", alg, strings.Join(known, ", "))
	}
}
