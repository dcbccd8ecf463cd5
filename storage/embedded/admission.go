package embedded

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// Heartbeat implements storage.Storage.
func (s *Store) Heartbeat(_ context.Context, r storage.Replica, now time.Time) error {
	return s.db.Update(func(tx *buntdb.Tx) error { return put(tx, "replica:"+r.ID, r, now, r.ExpiresAt) })
}

// Replicas implements storage.Storage.
func (s *Store) Replicas(_ context.Context, now time.Time) ([]storage.Replica, error) {
	all, err := list[storage.Replica](s, "replica:")
	out := all[:0]
	for _, r := range all {
		if r.ExpiresAt.After(now) {
			out = append(out, r)
		}
	}
	return out, err
}

// poolEntry is one slot of a reuse pool: a reservation or a token.
type poolEntry struct {
	Until time.Time            `json:"until"`
	Token *storage.PooledToken `json:"token,omitempty"`
}

func poolPrefix(p storage.Pool) string {
	h := sha256.Sum256([]byte(p.ClientID + "\x00" + p.Subject + "\x00" + p.Scope + "\x00" + p.Audience))
	return "pool:" + p.ClientID + ":" + hex.EncodeToString(h[:12]) + ":"
}

func counterKey(a storage.Admission) string {
	h := sha256.Sum256([]byte(a.Pool.ClientID + "\x00" + a.Pool.Subject))
	return "day:" + a.Pool.ClientID + ":" + hex.EncodeToString(h[:12]) + ":" + a.Day
}

// Admit implements storage.Storage (see storage.Admission for the rules).
func (s *Store) Admit(_ context.Context, a storage.Admission) (out storage.Admitted, err error) {
	err = s.db.Update(func(tx *buntdb.Tx) error {
		if a.Reuse {
			var best *storage.PooledToken
			live := 0
			prefix := poolPrefix(a.Pool)
			var expired []string
			err := tx.AscendKeys(prefix+"*", func(k, v string) bool {
				var e poolEntry
				if json.Unmarshal([]byte(v), &e) != nil || !e.Until.After(a.Now) {
					expired = append(expired, k)
					return true
				}
				live++
				if e.Token != nil && (best == nil || e.Token.ExpiresAt.After(best.ExpiresAt)) {
					best = e.Token
				}
				return true
			})
			if err != nil {
				return err
			}
			for _, k := range expired {
				_, _ = tx.Delete(k)
			}
			switch {
			case best != nil && best.ExpiresAt.Sub(a.Now) >= a.MinRemaining:
				out.Reused = best
				return nil
			case live >= a.Capacity && best != nil:
				out.Reused = best
				return nil
			case live >= a.Capacity:
				out.Busy = true
				return nil
			}
		}
		if a.Limit > 0 {
			n := 0
			if v, err := tx.Get(counterKey(a)); err == nil {
				n, _ = strconv.Atoi(v)
			} else if !errors.Is(err, buntdb.ErrNotFound) {
				return err
			}
			if n >= a.Limit {
				out.Limited = true
				return nil
			}
			if _, _, err := tx.Set(counterKey(a), strconv.Itoa(n+1), expiry(a.Now, a.ResetAt.Add(time.Minute))); err != nil {
				return err
			}
		}
		if a.Reuse {
			if err := put(tx, poolPrefix(a.Pool)+a.Reservation, poolEntry{Until: a.ReserveUntil}, a.Now, a.ReserveUntil); err != nil {
				return err
			}
		}
		out.Allowed = true
		return nil
	})
	return out, err
}

// Settle implements storage.Storage.
func (s *Store) Settle(_ context.Context, st storage.Settlement) error {
	a := st.Admission
	return s.db.Update(func(tx *buntdb.Tx) error {
		if a.Reuse {
			_, _ = tx.Delete(poolPrefix(a.Pool) + a.Reservation)
			if st.Token != nil {
				if err := put(tx, poolPrefix(a.Pool)+st.Token.JTI, poolEntry{Until: st.Token.ExpiresAt, Token: st.Token}, a.Now, st.Token.ExpiresAt); err != nil {
					return err
				}
			}
		}
		if st.Token == nil && a.Limit > 0 {
			if v, err := tx.Get(counterKey(a)); err == nil {
				if n, _ := strconv.Atoi(v); n > 0 {
					_, _, err = tx.Set(counterKey(a), strconv.Itoa(n-1), expiry(a.Now, a.ResetAt.Add(time.Minute)))
					return err
				}
			}
		}
		return nil
	})
}
