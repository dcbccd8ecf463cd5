package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// The client index: one key per owned client, named by a digest of its owner (so one owner's
// keys sort together and no owner id can reach into another's range), and the longest access
// token lifetime any client has been given. A store written before the index existed has no
// indexedKey; the first open builds the index once (indexClients).
const (
	indexedKey = "meta:client-index"
	longestKey = "meta:longest-access-ttl"
)

func ownedPrefix(owner string) string  { return "owned:" + storage.KeyDigest(owner) + ":" }
func ownedKey(owner, id string) string { return ownedPrefix(owner) + id }

// indexClient keeps the index in step with one client write, in the write's transaction: old
// is the record replaced (nil for none), c the one written (nil for a deletion).
func indexClient(tx *buntdb.Tx, old, c *storage.Client) error {
	oldOwner, newOwner := "", ""
	if old != nil {
		oldOwner = old.Owner
	}
	if c != nil {
		newOwner = c.Owner
	}
	if oldOwner != "" && (oldOwner != newOwner || c == nil) {
		if _, err := tx.Delete(ownedKey(oldOwner, old.ID)); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
			return err
		}
	}
	if c == nil {
		return nil
	}
	if newOwner != "" {
		if _, _, err := tx.Set(ownedKey(newOwner, c.ID), c.ID, nil); err != nil {
			return err
		}
	}
	return raiseLongest(tx, c.AccessTokenTTL)
}

// raiseLongest records ttl as the longest access token lifetime if it is longer.
func raiseLongest(tx *buntdb.Tx, ttl time.Duration) error {
	held, err := longest(tx)
	if err != nil || ttl <= held {
		return err
	}
	_, _, err = tx.Set(longestKey, strconv.FormatInt(int64(ttl), 10), nil)
	return err
}

func longest(tx *buntdb.Tx) (time.Duration, error) {
	v, err := tx.Get(longestKey)
	if errors.Is(err, buntdb.ErrNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return time.Duration(n), err
}

// indexClients builds the index of a store written before it existed, once, in one
// transaction; a store that has it (or a new one, once marked) is left alone.
func indexClients(db *buntdb.DB) error {
	return db.Update(func(tx *buntdb.Tx) error {
		if _, err := tx.Get(indexedKey); err == nil {
			return nil
		}
		var clients []storage.Client
		var derr error
		err := tx.AscendKeys("client:*", func(k, v string) bool {
			var c storage.Client
			if derr = json.Unmarshal([]byte(v), &c); derr != nil {
				derr = fmt.Errorf("embedded store: decode %s: %w", k, derr)
				return false
			}
			clients = append(clients, c)
			return true
		})
		if err = errors.Join(err, derr); err != nil {
			return err
		}
		for i := range clients {
			if err := indexClient(tx, nil, &clients[i]); err != nil {
				return err
			}
		}
		_, _, err = tx.Set(indexedKey, "1", nil)
		return err
	})
}

// OwnedClients implements storage.Storage: a range of the owner's index keys, then each of
// those clients.
func (s *Store) OwnedClients(ctx context.Context, owner string) (out []storage.Client, err error) {
	if owner == "" {
		return nil, nil
	}
	err = s.view(ctx, func(tx *buntdb.Tx) error {
		prefix := ownedPrefix(owner)
		var ids []string
		err := tx.AscendGreaterOrEqual("", prefix, func(k, v string) bool {
			if !strings.HasPrefix(k, prefix) {
				return false
			}
			ids = append(ids, v)
			return true
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			c, err := get[storage.Client](tx, clientKey(id))
			if errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if c.Owner == owner {
				out = append(out, c)
			}
		}
		return nil
	})
	return out, err
}

// LongestAccessTokenTTL implements storage.Storage.
func (s *Store) LongestAccessTokenTTL(ctx context.Context) (d time.Duration, err error) {
	err = s.view(ctx, func(tx *buntdb.Tx) error {
		d, err = longest(tx)
		return err
	})
	return d, err
}
