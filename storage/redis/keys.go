package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// EnsureSigningKey implements storage.Storage. The first key of a store is written by the
// script that restores lost keys (one round trip, nothing to compare); the first key of
// another algorithm by a compare-and-set on the key set's version.
func (s *Store) EnsureSigningKey(ctx context.Context, candidate storage.SigningKey) ([]storage.SigningKey, bool, error) {
	created, err := s.RestoreSigningKeys(ctx, []storage.SigningKey{candidate})
	if err != nil {
		return nil, false, err
	}
	if !created {
		keys, err := s.changeSigningKeys(ctx, func(keys []storage.SigningKey) ([]storage.SigningKey, []string, error) {
			created = !storage.Live(keys, candidate.Alg())
			if !created {
				return nil, nil, nil
			}
			return []storage.SigningKey{candidate}, nil, nil
		})
		return keys, created && err == nil, err
	}
	keys, err := s.ListSigningKeys(ctx)
	return keys, created, err
}

// RestoreSigningKeys implements storage.Storage. An unconfirmed store is left in place;
// retried, it finds the keys there and changes nothing.
func (s *Store) RestoreSigningKeys(ctx context.Context, keys []storage.SigningKey) (bool, error) {
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		b, err := json.Marshal(k)
		if err != nil {
			return false, err
		}
		args = append(args, k.ID, b)
	}
	if len(args) == 0 {
		return false, nil
	}
	cmd, err := s.run(ctx, ensureKey, []string{keysKey, keysVersion}, args...)
	if cmd == nil {
		return false, err
	}
	n, _ := cmd.Int()
	if n == 0 {
		err = nil
	}
	return n == 1, err
}

// ListSigningKeys implements storage.Storage.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	_, keys, err := s.readSigningKeys(ctx)
	return keys, err
}

func (s *Store) readSigningKeys(ctx context.Context) (string, []storage.SigningKey, error) {
	vals, err := readKeys.Run(ctx, s.rdb, []string{keysKey, keysVersion}).StringSlice()
	if err != nil {
		return "", nil, fail(err)
	}
	keys := make([]storage.SigningKey, 0, len(vals)-1)
	for _, v := range vals[1:] {
		k, err := decode[storage.SigningKey](v)
		if err != nil {
			return "", nil, err
		}
		keys = append(keys, k)
	}
	return vals[0], keys, nil
}

// changeSigningKeys reads the keys, lets change compute what to write and delete, and writes
// it only if no other replica wrote meanwhile (else starts over). An unconfirmed change is
// left in place: a rotation retried finds the new key waiting (storage.ErrAlreadyExists), a
// removal retried finds the keys gone.
func (s *Store) changeSigningKeys(ctx context.Context, change func([]storage.SigningKey) (write []storage.SigningKey, del []string, err error)) ([]storage.SigningKey, error) {
	for range maxCASAttempts {
		version, keys, err := s.readSigningKeys(ctx)
		if err != nil {
			return nil, err
		}
		write, del, err := change(keys)
		if err != nil {
			return nil, err
		}
		if len(write) == 0 && len(del) == 0 {
			return keys, nil
		}
		args := []any{version, len(del)}
		for _, id := range del {
			args = append(args, id)
		}
		for _, k := range write {
			b, err := json.Marshal(k)
			if err != nil {
				return nil, err
			}
			args = append(args, k.ID, b)
		}
		cmd, err := s.run(ctx, writeKeys, []string{keysKey, keysVersion}, args...)
		if cmd == nil {
			return nil, err
		}
		if n, _ := cmd.Int(); n == 1 {
			if err != nil {
				return nil, err
			}
			return s.ListSigningKeys(ctx)
		}
	}
	return nil, fmt.Errorf("%w: signing keys changed concurrently too often", storage.ErrUnavailable)
}

// RotateSigningKey implements storage.Storage.
func (s *Store) RotateSigningKey(ctx context.Context, next storage.SigningKey, now time.Time, lifetime time.Duration) ([]storage.SigningKey, error) {
	return s.changeSigningKeys(ctx, func(keys []storage.SigningKey) ([]storage.SigningKey, []string, error) {
		if storage.Pending(keys, next.Alg(), now) {
			return nil, nil, storage.ErrAlreadyExists
		}
		return append(storage.Retire(keys, next.Alg(), next.Activation(), lifetime), next), nil, nil
	})
}

// RetireSigningKeys implements storage.Storage.
func (s *Store) RetireSigningKeys(ctx context.Context, alg string, at time.Time, lifetime time.Duration) ([]storage.SigningKey, error) {
	return s.changeSigningKeys(ctx, func(keys []storage.SigningKey) ([]storage.SigningKey, []string, error) {
		var write []storage.SigningKey
		for i, k := range storage.Retire(keys, alg, at, lifetime) {
			if !k.RetiredAt.Equal(keys[i].RetiredAt) {
				write = append(write, k)
			}
		}
		return write, nil, nil
	})
}

// RemoveSigningKeys implements storage.Storage.
func (s *Store) RemoveSigningKeys(ctx context.Context, now time.Time) ([]storage.SigningKey, error) {
	return s.changeSigningKeys(ctx, func(keys []storage.SigningKey) ([]storage.SigningKey, []string, error) {
		var del []string
		for _, k := range keys {
			if !k.RemoveAt.IsZero() && !now.Before(k.RemoveAt) {
				del = append(del, k.ID)
			}
		}
		return nil, del, nil
	})
}
