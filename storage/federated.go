package storage

import (
	"context"
	"strings"
)

// FederatedIdentity names a workload allowed to act as a client: the iss and sub of the tokens
// its platform gives it. Subject is exact, or a pattern: a prefix ending in a separator (':' or
// '/') followed by one '*', which matches every subject that starts with the prefix
// (repo:ORG/REPO:* for every ref of one repository). Because the prefix must end at a
// separator, repo:ORG/REPO:* never matches repo:ORG/REPO-evil:…
type FederatedIdentity struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

// SubjectSeparators end the prefix of a subject pattern.
const SubjectSeparators = ":/"

// MaxSubjectLen bounds a registered subject and the sub of a workload's token, and with it the
// number of index lookups one token costs.
const MaxSubjectLen = 512

// IsSubjectPattern reports whether a registered subject is a pattern (ends in '*').
func IsSubjectPattern(subject string) bool { return strings.HasSuffix(subject, "*") }

// Matches reports whether a token's iss and sub are this identity.
func (f FederatedIdentity) Matches(iss, sub string) bool {
	if f.Issuer != iss || sub == "" {
		return false
	}
	if !IsSubjectPattern(f.Subject) {
		return f.Subject == sub
	}
	prefix := strings.TrimSuffix(f.Subject, "*")
	return prefix != "" && strings.HasPrefix(sub, prefix)
}

// SubjectLookups lists what a token's sub can be registered as: itself, and every pattern
// that could match it (each prefix of sub that ends at a separator, with '*'). A backend looks
// each of them up in its index, so finding the clients of an identity takes a handful of
// point reads whatever the number of clients. The patterns a registry accepts are a subset of
// these (it also wants two non-empty segments before the '*').
func SubjectLookups(sub string) []string {
	out := []string{sub}
	for i := 0; i < len(sub); i++ {
		if strings.IndexByte(SubjectSeparators, sub[i]) >= 0 {
			out = append(out, sub[:i+1]+"*")
		}
	}
	return out
}

// FederatedClients is the part of Storage that finds the clients a workload may act as.
// Backends keep an index from (issuer, registered subject) to client ids, maintained in the
// same atomic step as every client write (create, update, delete, restore, seed).
type FederatedClients interface {
	// ClientsByFederatedIdentity returns the ids of the clients whose FederatedIdentities
	// include iss with sub or a pattern matching sub, in any order and each once. It is a
	// candidate list: callers match the client's record again before trusting it.
	ClientsByFederatedIdentity(ctx context.Context, iss, sub string) ([]string, error)
}
