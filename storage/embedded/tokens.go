package embedded

import (
	"context"
	"errors"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

type family struct {
	ClientID  string    `json:"client_id"`
	Subject   string    `json:"subject"`
	Revoked   bool      `json:"revoked,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	// Epoch is the credential version of the login's user (storage.RefreshToken.Epoch).
	Epoch uint64 `json:"epoch,omitempty"`
}

// CreateRefreshToken implements storage.Storage.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	return s.update(ctx, func(tx *buntdb.Tx) error { return createFamily(tx, t) })
}

// createFamily stores the first refresh token of a new family, a user's login only while the
// user's credential version is the one its password was checked against.
func createFamily(tx *buntdb.Tx, t storage.RefreshToken) error {
	if t.UserID != "" {
		if err := sameEpoch(tx, t.UserID, t.Epoch); err != nil {
			return err
		}
	}
	if exists(tx, familyKey(t.FamilyID)) {
		return storage.ErrAlreadyExists
	}
	f := family{ClientID: t.ClientID, Subject: t.Subject, ExpiresAt: t.FamilyExpiry(), Epoch: t.Epoch}
	if err := put(tx, familyKey(t.FamilyID), f, t.IssuedAt, f.ExpiresAt); err != nil {
		return err
	}
	return put(tx, refreshKey(t.FamilyID, t.Hash), t, t.IssuedAt, t.ExpiresAt)
}

// sameEpoch answers ErrNotFound when the user is gone and ErrCredentialsChanged when its
// credential version is no longer epoch.
func sameEpoch(tx *buntdb.Tx, userID string, epoch uint64) error {
	u, err := get[storage.User](tx, userKey(userID))
	if err != nil {
		return err
	}
	if u.Epoch != epoch {
		return storage.ErrCredentialsChanged
	}
	return nil
}

// GetRefreshToken implements storage.Storage.
func (s *Store) GetRefreshToken(ctx context.Context, familyID, hash string) (storage.RefreshToken, error) {
	return getOne[storage.RefreshToken](ctx, s, refreshKey(familyID, hash))
}

// RotateRefreshToken implements storage.Storage (see storage.Rotation for the contract).
func (s *Store) RotateRefreshToken(ctx context.Context, r storage.Rotation) (out storage.Rotated, err error) {
	// A replay or a deleted user revokes the family; that write must commit even though the
	// caller gets an error, so the outcome travels out of the transaction rather than as its
	// error.
	var outcome error
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		old, err := get[storage.RefreshToken](tx, refreshKey(r.FamilyID, r.Hash))
		if err != nil {
			return err
		}
		if old.ClientID != r.ClientID || !r.Now.Before(old.ExpiresAt) {
			return storage.ErrNotFound
		}
		fam, err := get[family](tx, familyKey(r.FamilyID))
		if err != nil {
			return err
		}
		if fam.Revoked {
			return storage.ErrRevoked
		}
		if r.UserID != "" {
			u, err := get[storage.User](tx, userKey(r.UserID))
			if errors.Is(err, storage.ErrNotFound) || (err == nil && (old.IssuedAt.Before(u.NotBefore) || old.Epoch != u.Epoch)) {
				fam.Revoked, outcome = true, storage.ErrRevoked
				return replace(tx, familyKey(r.FamilyID), fam)
			} else if err != nil {
				return err
			}
		}
		if !old.UsedAt.IsZero() {
			if r.Grace > 0 && r.Now.Sub(old.UsedAt) <= r.Grace && len(old.Successor) > 0 {
				out = storage.Rotated{Sealed: old.Successor}
				return nil
			}
			fam.Revoked, outcome = true, storage.ErrReplay
			return replace(tx, familyKey(r.FamilyID), fam)
		}
		old.UsedAt = r.Now
		old.Successor = r.Sealed
		if err := replace(tx, refreshKey(r.FamilyID, r.Hash), old); err != nil {
			return err
		}
		if exp := r.Next.FamilyExpiry(); exp.After(fam.ExpiresAt) {
			fam.ExpiresAt = exp
			if err := put(tx, familyKey(r.FamilyID), fam, r.Now, fam.ExpiresAt); err != nil {
				return err
			}
		}
		out = storage.Rotated{Fresh: true, Sealed: r.Sealed}
		return put(tx, refreshKey(r.Next.FamilyID, r.Next.Hash), r.Next, r.Now, r.Next.ExpiresAt)
	})
	if err == nil && outcome != nil {
		return storage.Rotated{}, outcome
	}
	return out, err
}

// RevokeFamily implements storage.Storage. Pools check the family when they hand out a token,
// so marking it is all revocation takes here.
func (s *Store) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		fam, err := get[family](tx, familyKey(familyID))
		if err != nil {
			return err
		}
		if !now.Before(fam.ExpiresAt) {
			return storage.ErrNotFound
		}
		if fam.Revoked {
			return nil
		}
		fam.Revoked = true
		return replace(tx, familyKey(familyID), fam)
	})
}

// RevokeAccessToken implements storage.Storage. The entry holds whom it belongs to, which its
// key keeps only as a digest, for a backup to carry it.
func (s *Store) RevokeAccessToken(ctx context.Context, r storage.AccessRevocation) error {
	return s.update(ctx, func(tx *buntdb.Tx) error {
		entry := storage.RevokedAccessToken{ClientID: r.Pool.ClientID, JTI: r.JTI, ExpiresAt: r.ExpiresAt}
		if err := put(tx, revokedKey(r.Pool.ClientID, r.JTI), entry, r.Now, r.ExpiresAt); err != nil {
			return err
		}
		_, err := tx.Delete(poolPrefix(r.Pool) + r.JTI)
		if errors.Is(err, buntdb.ErrNotFound) {
			return nil
		}
		return err
	})
}

// TokenState implements storage.Storage.
func (s *Store) TokenState(ctx context.Context, q storage.TokenQuery) (st storage.TokenState, err error) {
	err = s.view(ctx, func(tx *buntdb.Tx) error {
		st.Revoked = revoked(tx, q.ClientID, q.JTI, q.FamilyID, q.Now)
		var famEpoch uint64
		if q.FamilyID != "" {
			if fam, err := get[family](tx, familyKey(q.FamilyID)); err == nil {
				famEpoch = fam.Epoch
			}
		}
		if q.PersonalTokenID != "" {
			pat, err := get[storage.PersonalToken](tx, patKey(q.PersonalTokenID))
			st.Revoked = st.Revoked || err != nil || !pat.Live(q.Now)
		}
		if q.UserID != "" {
			u, err := get[storage.User](tx, userKey(q.UserID))
			switch {
			case err == nil:
				st.User = &u
				// A login whose password was checked against another credential version.
				st.Revoked = st.Revoked || (q.FamilyID != "" && famEpoch != u.Epoch)
			case !errors.Is(err, storage.ErrNotFound):
				return err
			}
		}
		return nil
	})
	return st, err
}

// revoked reports whether an access token with jti (and family, if any) may no longer be used
// at now. An expired or unknown family counts as revoked: nothing descended from it is valid.
func revoked(tx *buntdb.Tx, client, jti, familyID string, now time.Time) bool {
	if jti != "" && exists(tx, revokedKey(client, jti)) {
		return true
	}
	if familyID == "" {
		return false
	}
	fam, err := get[family](tx, familyKey(familyID))
	return err != nil || fam.Revoked || !now.Before(fam.ExpiresAt)
}

// UseAssertion implements storage.Storage.
func (s *Store) UseAssertion(ctx context.Context, a storage.AssertionUse) error {
	key := "assertion:" + storage.KeyDigest(a.ClientID) + ":" + a.JTI
	return s.update(ctx, func(tx *buntdb.Tx) error {
		if _, err := tx.Get(key); err == nil {
			return storage.ErrAlreadyExists
		} else if !errors.Is(err, buntdb.ErrNotFound) {
			return err
		}
		_, _, err := tx.Set(key, "1", expiry(a.Now, a.ExpiresAt))
		return err
	})
}
