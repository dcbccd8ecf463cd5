package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// The federated identity index: fedid:<issuer>\n<registered subject> holds the JSON list of the
// ids of the clients that registered it. Issuers and subjects are printable, so the newline
// cannot be part of either. Every client write updates it in its own transaction.
func fedKey(iss, sub string) string { return "fedid:" + iss + "\n" + sub }

// putClient writes c and moves its entries in the owner and federated identity indexes from
// what old (nil for a new client) had.
func putClient(tx *buntdb.Tx, old *storage.Client, c storage.Client) error {
	if old != nil {
		if err := unindex(tx, *old, c.FederatedIdentities); err != nil {
			return err
		}
	}
	for _, f := range c.FederatedIdentities {
		if old != nil && slices.Contains(old.FederatedIdentities, f) {
			continue
		}
		if err := indexEdit(tx, fedKey(f.Issuer, f.Subject), func(ids []string) []string {
			if slices.Contains(ids, c.ID) {
				return ids
			}
			return append(ids, c.ID)
		}); err != nil {
			return err
		}
	}
	if err := indexClient(tx, old, &c); err != nil {
		return err
	}
	return put(tx, clientKey(c.ID), c, time.Time{}, time.Time{})
}

// unindex removes old's entries that keep is not keeping.
func unindex(tx *buntdb.Tx, old storage.Client, keep []storage.FederatedIdentity) error {
	for _, f := range old.FederatedIdentities {
		if slices.Contains(keep, f) {
			continue
		}
		if err := indexEdit(tx, fedKey(f.Issuer, f.Subject), func(ids []string) []string {
			return slices.DeleteFunc(ids, func(id string) bool { return id == old.ID })
		}); err != nil {
			return err
		}
	}
	return nil
}

func indexEdit(tx *buntdb.Tx, key string, edit func([]string) []string) error {
	ids, err := get[[]string](tx, key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	ids = edit(ids)
	if len(ids) == 0 {
		if _, err := tx.Delete(key); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, _, err = tx.Set(key, string(b), nil)
	return err
}

// ClientsByFederatedIdentity implements storage.Storage: one point read per form sub can be
// registered as (storage.SubjectLookups).
func (s *Store) ClientsByFederatedIdentity(ctx context.Context, iss, sub string) (out []string, err error) {
	err = s.view(ctx, func(tx *buntdb.Tx) error {
		for _, l := range storage.SubjectLookups(sub) {
			ids, err := get[[]string](tx, fedKey(iss, l))
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			for _, id := range ids {
				if !slices.Contains(out, id) {
					out = append(out, id)
				}
			}
		}
		return nil
	})
	return out, err
}
