package registry

import (
	"context"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// TrustedIssuerInput is the body of POST /admin/trusted-issuers.
type TrustedIssuerInput struct {
	Issuer string `json:"issuer"`
	// JWKSURI is optional: without it the keys are found through the issuer's OpenID
	// configuration.
	JWKSURI   string   `json:"jwks_uri,omitempty"`
	Audiences []string `json:"audiences,omitempty"`
	Name      string   `json:"name,omitempty"`
}

// TrustedIssuerView is a trusted issuer as the admin API shows it.
type TrustedIssuerView struct {
	ID        string    `json:"id"`
	Issuer    string    `json:"issuer"`
	JWKSURI   string    `json:"jwks_uri,omitempty"`
	Audiences []string  `json:"audiences"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func trustedIssuerView(ti storage.TrustedIssuer) TrustedIssuerView {
	return TrustedIssuerView{ID: ti.ID, Issuer: ti.Issuer, JWKSURI: ti.JWKSURI, Audiences: nonNil(ti.Audiences), Name: ti.Name, CreatedAt: ti.CreatedAt}
}

// Audit actions of trusted issuers.
const (
	ActionTrustedIssuerCreate = "trusted_issuer.create"
	ActionTrustedIssuerDelete = "trusted_issuer.delete"
)

// CheckIssuerURL accepts what may name an outside issuer or its keys: an absolute https URL
// without credentials, query or fragment, or http on a loopback host (a test issuer on the same
// machine). Keys fetched over plain http from elsewhere could be swapped on the way, and
// anyone holding swapped keys could sign in as any workload.
func CheckIssuerURL(field, raw string) error {
	if raw == "" || len(raw) > 2000 || !printable(raw) {
		return invalid("%s must be an https URL of at most 2000 bytes", field)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return invalid("%s must be an absolute https URL without credentials, query or fragment", field)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopbackHost(u.Hostname()) {
			return nil
		}
	}
	return invalid("%s must use https (http only on a loopback address)", field)
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// CreateTrustedIssuer trusts an outside issuer. Trusting it lets no workload in yet: each client
// lists the (issuer, subject) pairs it accepts.
func (s *Service) CreateTrustedIssuer(ctx context.Context, in TrustedIssuerInput) (TrustedIssuerView, error) {
	if err := CheckIssuerURL("issuer", in.Issuer); err != nil {
		return TrustedIssuerView{}, err
	}
	if in.JWKSURI != "" {
		if err := CheckIssuerURL("jwks_uri", in.JWKSURI); err != nil {
			return TrustedIssuerView{}, err
		}
	}
	name := strings.TrimSpace(in.Name)
	if utf8.RuneCountInString(name) > 100 || !printable(name) {
		return TrustedIssuerView{}, invalid("name must be at most 100 printable characters")
	}
	auds, err := uniq("audiences", in.Audiences, func(a string) error {
		if !printable(a) {
			return invalid("audiences: values must be printable")
		}
		return nil
	})
	if err != nil {
		return TrustedIssuerView{}, err
	}
	if len(auds) > 20 {
		return TrustedIssuerView{}, invalid("audiences: at most 20 values")
	}
	ti := storage.TrustedIssuer{ID: secret.NewID(), Issuer: in.Issuer, JWKSURI: in.JWKSURI, Audiences: auds, Name: name, CreatedAt: s.now().UTC()}
	if err := s.store.CreateTrustedIssuer(ctx, ti); err != nil {
		return TrustedIssuerView{}, storeErr(err, "trusted issuer "+in.Issuer)
	}
	v := trustedIssuerView(ti)
	s.recordChange(ctx, ActionTrustedIssuerCreate, ti.ID, nil, v)
	return v, nil
}

// GetTrustedIssuer returns one trusted issuer.
func (s *Service) GetTrustedIssuer(ctx context.Context, id string) (TrustedIssuerView, error) {
	ti, err := s.store.GetTrustedIssuer(ctx, id)
	if err != nil {
		return TrustedIssuerView{}, storeErr(err, "trusted issuer "+id)
	}
	return trustedIssuerView(ti), nil
}

// ListTrustedIssuers lists the trusted issuers, ordered by issuer URL.
func (s *Service) ListTrustedIssuers(ctx context.Context) ([]TrustedIssuerView, error) {
	all, err := s.store.ListTrustedIssuers(ctx)
	if err != nil {
		return nil, storeErr(err, "trusted issuers")
	}
	out := make([]TrustedIssuerView, 0, len(all))
	for _, ti := range all {
		out = append(out, trustedIssuerView(ti))
	}
	slices.SortFunc(out, func(a, b TrustedIssuerView) int { return strings.Compare(a.Issuer, b.Issuer) })
	return out, nil
}

// DeleteTrustedIssuer stops trusting an issuer. Its workloads lose access on every replica at
// once: the change is announced, so no replica keeps a cached copy.
func (s *Service) DeleteTrustedIssuer(ctx context.Context, id string) error {
	ti, err := s.store.GetTrustedIssuer(ctx, id)
	if err != nil {
		return storeErr(err, "trusted issuer "+id)
	}
	if err := s.store.DeleteTrustedIssuer(ctx, id); err != nil {
		return storeErr(err, "trusted issuer "+id)
	}
	s.changed(ctx, storage.ChangeTrustedIssuer, id)
	s.recordChange(ctx, ActionTrustedIssuerDelete, id, trustedIssuerView(ti), nil)
	return nil
}
