package embedded

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// Trusted issuers: the record under trustiss:<id> and an index from the issuer URL to the id
// under trustissurl:<issuer>, which keeps issuers unique and answers the lookup an assertion
// needs in one read.
func trustedIssuerKey(id string) string     { return "trustiss:" + id }
func trustedIssuerURLKey(iss string) string { return "trustissurl:" + iss }

// CreateTrustedIssuer implements storage.Storage.
func (s *Store) CreateTrustedIssuer(ctx context.Context, ti storage.TrustedIssuer) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		if exists(tx, trustedIssuerKey(ti.ID)) || exists(tx, trustedIssuerURLKey(ti.Issuer)) {
			return storage.ErrAlreadyExists
		}
		if _, _, err := tx.Set(trustedIssuerURLKey(ti.Issuer), ti.ID, nil); err != nil {
			return err
		}
		return put(tx, trustedIssuerKey(ti.ID), ti, time.Time{}, time.Time{})
	})
}

// GetTrustedIssuer implements storage.Storage.
func (s *Store) GetTrustedIssuer(ctx context.Context, id string) (storage.TrustedIssuer, error) {
	return getOne[storage.TrustedIssuer](ctx, s, trustedIssuerKey(id))
}

// TrustedIssuerByIssuer implements storage.Storage.
func (s *Store) TrustedIssuerByIssuer(ctx context.Context, iss string) (ti storage.TrustedIssuer, err error) {
	err = s.view(ctx, func(tx *buntdb.Tx) error {
		id, err := tx.Get(trustedIssuerURLKey(iss))
		if err != nil {
			return storage.ErrNotFound
		}
		ti, err = get[storage.TrustedIssuer](tx, trustedIssuerKey(id))
		return err
	})
	return ti, err
}

// ListTrustedIssuers implements storage.Storage.
func (s *Store) ListTrustedIssuers(ctx context.Context) ([]storage.TrustedIssuer, error) {
	return list[storage.TrustedIssuer](ctx, s, "trustiss:")
}

// DeleteTrustedIssuer implements storage.Storage.
func (s *Store) DeleteTrustedIssuer(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		ti, err := get[storage.TrustedIssuer](tx, trustedIssuerKey(id))
		if err != nil {
			return err
		}
		if _, err := tx.Delete(trustedIssuerURLKey(ti.Issuer)); err != nil {
			return err
		}
		_, err = tx.Delete(trustedIssuerKey(id))
		return err
	})
}

// RestoreTrustedIssuer implements storage.Storage.
func (s *Store) RestoreTrustedIssuer(ctx context.Context, ti storage.TrustedIssuer, r storage.Restore) (storage.Outcome, error) {
	return s.restore(ctx, r.DryRun, func(tx *buntdb.Tx) (storage.Outcome, error) {
		h, err := held[storage.TrustedIssuer](tx, trustedIssuerKey(ti.ID))
		if err != nil {
			return 0, err
		}
		if owner, err := tx.Get(trustedIssuerURLKey(ti.Issuer)); err == nil && owner != ti.ID {
			return 0, fmt.Errorf("%w: issuer %q is trusted issuer %s", storage.ErrAlreadyExists, ti.Issuer, owner)
		}
		out := storage.Restored(h, ti)
		if out == storage.Unchanged || r.DryRun {
			return out, nil
		}
		if h != nil && h.Issuer != ti.Issuer {
			if _, err := tx.Delete(trustedIssuerURLKey(h.Issuer)); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
				return 0, err
			}
		}
		if _, _, err := tx.Set(trustedIssuerURLKey(ti.Issuer), ti.ID, nil); err != nil {
			return 0, err
		}
		return out, put(tx, trustedIssuerKey(ti.ID), ti, time.Time{}, time.Time{})
	})
}
