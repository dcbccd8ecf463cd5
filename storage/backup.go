package storage

import (
	"bytes"
	"encoding/json"
	"time"
)

// Backup and restore (tokensmith export and import) read every record of a kind with the Each
// methods of Storage and write one back with its Restore method. These are the records that
// have no type of their own elsewhere, and the rules every backend applies when it restores.

// DeletedClient is the note DeleteClient leaves: a client with this id was deleted at
// DeletedAt, so a client created later under the id does not take the deleted one's tokens
// for its own (Client.NotBefore).
type DeletedClient struct {
	ID        string    `json:"id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// RefreshFamily is what the refresh tokens of one login share: the client they were issued
// to, whether the family is revoked, and how long it must be remembered
// (RefreshToken.FamilyExpiry of its longest-lived token).
type RefreshFamily struct {
	ID        string    `json:"id"`
	ClientID  string    `json:"client_id"`
	Revoked   bool      `json:"revoked,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	// Epoch is the credential version of the login's user (RefreshToken.Epoch).
	Epoch uint64 `json:"epoch,omitempty"`
}

// RevokedAccessToken is one entry of the access-token deny-list (RevokeAccessToken). A zero
// ExpiresAt is an entry kept until it is deleted.
type RevokedAccessToken struct {
	ClientID  string    `json:"client_id"`
	JTI       string    `json:"jti"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Restore is how a Restore method runs.
type Restore struct {
	// Now is the caller's clock: a record that has expired at Now is not written (Expired),
	// and lifetimes are measured from it.
	Now time.Time
	// DryRun reports the outcome without writing anything.
	DryRun bool
}

// Outcome is what restoring one record did, or would do on a dry run.
type Outcome int

// Outcomes of a Restore method.
const (
	// Unchanged: the store already held the record as restored.
	Unchanged Outcome = iota
	// Created: the store did not hold the record.
	Created
	// Updated: the store held a different version of the record.
	Updated
	// Expired: the record had expired and was not written.
	Expired
)

func (o Outcome) String() string {
	switch o {
	case Created:
		return "created"
	case Updated:
		return "updated"
	case Expired:
		return "expired"
	}
	return "unchanged"
}

// Restored compares the record the store held (nil when it held none) with the one it holds
// after a restore, by their stored JSON form: equal instants in two time zones, or a field a
// later build added with its zero value, do not count as a change.
func Restored[T any](held *T, restored T) Outcome {
	if held == nil {
		return Created
	}
	a, errA := json.Marshal(*held)
	b, errB := json.Marshal(restored)
	if errA == nil && errB == nil && bytes.Equal(a, b) {
		return Unchanged
	}
	if errA == nil && errB == nil && sameInstants(a, b) {
		return Unchanged
	}
	return Updated
}

// sameInstants reports whether two JSON documents differ only in how their times are written
// (the zone a time was recorded in).
func sameInstants(a, b []byte) bool {
	x, errX := decodeAny(a)
	y, errY := decodeAny(b)
	return errX == nil && errY == nil && sameValue(x, y)
}

// decodeAny decodes JSON keeping numbers as written, so large ones compare exactly.
func decodeAny(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

func sameValue(x, y any) bool {
	switch xv := x.(type) {
	case map[string]any:
		yv, ok := y.(map[string]any)
		if !ok || len(xv) != len(yv) {
			return false
		}
		for k, v := range xv {
			if w, ok := yv[k]; !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		yv, ok := y.([]any)
		if !ok || len(xv) != len(yv) {
			return false
		}
		for i := range xv {
			if !sameValue(xv[i], yv[i]) {
				return false
			}
		}
		return true
	case string:
		yv, ok := y.(string)
		if !ok {
			return false
		}
		if xv == yv {
			return true
		}
		tx, errX := time.Parse(time.RFC3339Nano, xv)
		ty, errY := time.Parse(time.RFC3339Nano, yv)
		return errX == nil && errY == nil && tx.Equal(ty)
	default:
		return x == y
	}
}

// Restoring never undoes what only ever happens once. Import makes a record what the backup
// holds, except for the state below, which it merges with what the store holds, so a restore
// over a store that has moved on cannot bring back a revoked or spent credential:

// MergeRefreshToken is the refresh token a restore of t leaves when the store holds held: a
// token the store has seen rotated stays rotated, with the successor it answered.
func MergeRefreshToken(held, t RefreshToken) RefreshToken {
	if !held.UsedAt.IsZero() {
		t.UsedAt, t.Successor = held.UsedAt, held.Successor
	}
	return t
}

// MergeRefreshFamily is the family a restore of f leaves: a revoked family stays revoked, and it is remembered as long as either
// version says.
func MergeRefreshFamily(held, f RefreshFamily) RefreshFamily {
	f.Revoked = f.Revoked || held.Revoked
	if held.ExpiresAt.After(f.ExpiresAt) {
		f.ExpiresAt = held.ExpiresAt
	}
	return f
}

// MergeSigningKey is the key a restore of k leaves: a retired key stays retired (the store's rotation stands), so a backup
// taken before a rotation does not put the old key back to signing.
func MergeSigningKey(held, k SigningKey) SigningKey {
	if !held.RetiredAt.IsZero() && (k.RetiredAt.IsZero() || held.RetiredAt.Before(k.RetiredAt)) {
		k.RetiredAt, k.RemoveAt = held.RetiredAt, held.RemoveAt
	}
	return k
}

// MergePersonalToken is the token a restore of t leaves: the later last use is kept.
func MergePersonalToken(held, t PersonalToken) PersonalToken {
	if held.LastUsedAt.After(t.LastUsedAt) {
		t.LastUsedAt = held.LastUsedAt
	}
	return t
}

// MergeDeletedClient is the note a restore of d leaves: the later deletion is kept; it ends more of the deleted clients' tokens.
func MergeDeletedClient(held, d DeletedClient) DeletedClient {
	if held.DeletedAt.After(d.DeletedAt) {
		d.DeletedAt = held.DeletedAt
	}
	return d
}
