package embedded

import (
	"context"
	"errors"

	"github.com/tidwall/buntdb"
)

// EnsureServerSecret implements storage.Storage.
func (s *Store) EnsureServerSecret(ctx context.Context, name, candidate string) (stored string, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		v, err := tx.Get(serverSecretKey(name))
		if err == nil {
			stored = v
			return nil
		}
		if !errors.Is(err, buntdb.ErrNotFound) {
			return err
		}
		stored = candidate
		_, _, err = tx.Set(serverSecretKey(name), candidate, nil)
		return err
	})
	return stored, err
}

func serverSecretKey(name string) string { return "secret:" + name }
