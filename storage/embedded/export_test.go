package embedded

import (
	"context"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// PutLegacyUser stores u as a store written before usernames were normalised did: indexed
// under its case-folded name alone (tests only).
func PutLegacyUser(s storage.Storage, u storage.User) error {
	return s.(*Store).update(context.Background(), func(tx *buntdb.Tx) error {
		if _, _, err := tx.Set(usernameIndex(storage.LegacyFoldUsername(u.Username)), u.ID, nil); err != nil {
			return err
		}
		return put(tx, userKey(u.ID), u, time.Time{}, time.Time{})
	})
}
