package registry

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/tokensmith/tokensmith/storage"
)

// Bounds on a client's federated identities.
const (
	// MaxFederatedIdentities is how many workloads one client may list.
	MaxFederatedIdentities = 20
)

// checkFederatedIdentities validates a client's federated identities: each issuer an https URL
// (checkFederated also wants it trusted), each subject exact or a pattern that ends in one '*'
// right after a separator, with at least two non-empty segments before it, so that
// "repo:ORG/REPO:*" is accepted but "repo:*" (every repository on the platform) and
// "repo:ORG/REPO*" (which would match repo:ORG/REPO-evil too) are not.
func checkFederatedIdentities(in []storage.FederatedIdentity) ([]storage.FederatedIdentity, error) {
	if len(in) > MaxFederatedIdentities {
		return nil, invalid("federated_identities: at most %d", MaxFederatedIdentities)
	}
	out := make([]storage.FederatedIdentity, 0, len(in))
	for _, f := range in {
		if err := CheckIssuerURL("federated_identities: issuer", f.Issuer); err != nil {
			return nil, err
		}
		if err := checkSubject(f.Subject); err != nil {
			return nil, err
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

func checkSubject(sub string) error {
	if sub == "" || len(sub) > storage.MaxSubjectLen || !printable(sub) || strings.ContainsRune(sub, ' ') {
		return invalid("federated_identities: subject must be 1 to %d printable bytes without spaces", storage.MaxSubjectLen)
	}
	star := strings.IndexByte(sub, '*')
	if star < 0 {
		return nil
	}
	if star != len(sub)-1 {
		return invalid("federated_identities: subject %q: '*' may only be the last character", sub)
	}
	prefix := sub[:star]
	if prefix == "" || strings.IndexByte(storage.SubjectSeparators, prefix[len(prefix)-1]) < 0 {
		return invalid("federated_identities: subject %q: '*' must follow a separator (':' or '/'), as in repo:ORG/REPO:*", sub)
	}
	segments := strings.FieldsFunc(prefix, func(r rune) bool { return strings.ContainsRune(storage.SubjectSeparators, r) })
	if len(segments) < 2 {
		return invalid("federated_identities: subject %q matches too much: name at least two segments before the '*'", sub)
	}
	return nil
}

// checkFederated makes sure every issuer of the federated identities being set is a trusted
// issuer: an identity under an issuer nobody trusts could never authenticate, so it is a typo
// worth a 400 now rather than a refusal later. Deleting a trusted issuer afterwards leaves the
// identity in place, inert until the issuer is trusted again.
func (s *Service) checkFederated(ctx context.Context, in ClientInput) error {
	if in.FederatedIdentities == nil {
		return nil
	}
	var seen []string
	for _, f := range *in.FederatedIdentities {
		if slices.Contains(seen, f.Issuer) {
			continue
		}
		seen = append(seen, f.Issuer)
		if err := CheckIssuerURL("federated_identities: issuer", f.Issuer); err != nil {
			return err
		}
		_, err := s.store.TrustedIssuerByIssuer(ctx, f.Issuer)
		if errors.Is(err, storage.ErrNotFound) {
			return invalid("federated_identities: issuer %q is not a trusted issuer (tokensmith trusted-issuer add)", f.Issuer)
		}
		if err != nil {
			return storeErr(err, "trusted issuers")
		}
	}
	return nil
}
