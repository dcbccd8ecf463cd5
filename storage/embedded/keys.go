package embedded

import (
	"context"
	"encoding/json"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// EnsureSigningKey implements storage.Storage.
func (s *Store) EnsureSigningKey(ctx context.Context, candidate storage.SigningKey) (keys []storage.SigningKey, created bool, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		keys, err := signingKeys(tx)
		if err != nil || storage.Live(keys, candidate.Alg()) {
			return err
		}
		created = true
		return put(tx, signingKeyKey(candidate.ID), candidate, time.Time{}, time.Time{})
	})
	if err != nil {
		return nil, false, err
	}
	keys, err = s.ListSigningKeys(ctx)
	return keys, created, err
}

// RestoreSigningKeys implements storage.Storage.
func (s *Store) RestoreSigningKeys(ctx context.Context, keys []storage.SigningKey) (restored bool, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		n := 0
		if err := tx.AscendKeys("key:*", func(string, string) bool { n++; return false }); err != nil || n > 0 {
			return err
		}
		for _, k := range keys {
			if err := put(tx, signingKeyKey(k.ID), k, time.Time{}, time.Time{}); err != nil {
				return err
			}
		}
		restored = len(keys) > 0
		return nil
	})
	return restored, err
}

// RotateSigningKey implements storage.Storage.
func (s *Store) RotateSigningKey(ctx context.Context, next storage.SigningKey, now time.Time, lifetime time.Duration) (out []storage.SigningKey, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		keys, err := signingKeys(tx)
		if err != nil {
			return err
		}
		if storage.Pending(keys, next.Alg(), now) {
			return storage.ErrAlreadyExists
		}
		out = append(storage.Retire(keys, next.Alg(), next.Activation(), lifetime), next)
		for _, k := range out {
			if err := put(tx, signingKeyKey(k.ID), k, time.Time{}, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// RetireSigningKeys implements storage.Storage.
func (s *Store) RetireSigningKeys(ctx context.Context, alg string, at time.Time, lifetime time.Duration) (out []storage.SigningKey, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		keys, err := signingKeys(tx)
		if err != nil {
			return err
		}
		out = storage.Retire(keys, alg, at, lifetime)
		for i, k := range out {
			if !k.RetiredAt.Equal(keys[i].RetiredAt) {
				if err := put(tx, signingKeyKey(k.ID), k, time.Time{}, time.Time{}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

// RemoveSigningKeys implements storage.Storage.
func (s *Store) RemoveSigningKeys(ctx context.Context, now time.Time) (left []storage.SigningKey, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		keys, err := signingKeys(tx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if !k.RemoveAt.IsZero() && !now.Before(k.RemoveAt) {
				if _, err := tx.Delete(signingKeyKey(k.ID)); err != nil {
					return err
				}
				continue
			}
			left = append(left, k)
		}
		return nil
	})
	return left, err
}

func signingKeys(tx *buntdb.Tx) ([]storage.SigningKey, error) {
	var out []storage.SigningKey
	var derr error
	err := tx.AscendKeys("key:*", func(_, v string) bool {
		var k storage.SigningKey
		if derr = json.Unmarshal([]byte(v), &k); derr != nil {
			return false
		}
		out = append(out, k)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, derr
}

// ListSigningKeys implements storage.Storage.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	return list[storage.SigningKey](ctx, s, "key:")
}
