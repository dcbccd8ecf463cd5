package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
	"github.com/tokensmith/tokensmith/storage"
)

// poolEntry is one slot of a reuse pool: a reservation or a token.
type poolEntry struct {
	Until time.Time            `json:"until"`
	Token *storage.PooledToken `json:"token,omitempty"`
}

// Pool entries are stored as "p2", the reservation's or token's end in Unix nanoseconds and,
// for a token, its storage.EncodePooledToken form, separated by newlines: reuse admission reads
// every entry of its pool on every request, and JSON decoding was the costliest part of it.
// Entries of earlier builds, JSON objects, are still read.
const poolEntryV2 = "p2\n"

func encodePoolEntry(e poolEntry) string {
	s := poolEntryV2 + strconv.FormatInt(e.Until.UnixNano(), 10)
	if e.Token != nil {
		s += "\n" + storage.EncodePooledToken(*e.Token)
	}
	return s
}

func decodePoolEntry(v string) (poolEntry, bool) {
	var e poolEntry
	rest, ok := strings.CutPrefix(v, poolEntryV2)
	if !ok {
		return e, json.Unmarshal([]byte(v), &e) == nil
	}
	until, tok, hasToken := strings.Cut(rest, "\n")
	n, err := strconv.ParseInt(until, 10, 64)
	if err != nil {
		return e, false
	}
	e.Until = time.Unix(0, n)
	if hasToken {
		t, ok := storage.DecodePooledToken(tok)
		if !ok {
			return e, false
		}
		e.Token = &t
	}
	return e, true
}

func putPoolEntry(tx *buntdb.Tx, key string, e poolEntry, now time.Time) error {
	_, _, err := tx.Set(key, encodePoolEntry(e), expiry(now, e.Until))
	return err
}

// poolPrefix names the keys of one pool; only hex digests, so it is safe as a key pattern.
func poolPrefix(p storage.Pool) string {
	return "pool:" + storage.KeyDigest(p.ClientID) + ":" + p.Digest() + ":"
}

func counterKey(a storage.Admission) string {
	return "day:" + storage.KeyDigest(a.Pool.ClientID, a.Pool.Incarnation, a.Pool.Subject) + ":" + a.Day
}

func hourKey(a storage.Admission) string {
	return "hour:" + storage.KeyDigest(a.Pool.ClientID, a.Pool.Incarnation, a.Pool.Subject) + ":" + a.Hour
}

// window is one (client, subject) count with a limit: the day's or the hour's.
type window struct {
	key    string
	limit  int
	shadow bool
	reset  time.Time
	count  *int
}

// windows are the counts a admits against, with where to report each.
func windows(a storage.Admission, out *storage.Admitted) []window {
	var ws []window
	if a.Limit > 0 {
		ws = append(ws, window{counterKey(a), a.Limit, a.Shadow, a.ResetAt, &out.DailyCount})
	}
	if a.HourlyLimit > 0 {
		ws = append(ws, window{hourKey(a), a.HourlyLimit, a.HourlyShadow, a.HourResetAt, &out.HourlyCount})
	}
	return ws
}

func readCount(tx *buntdb.Tx, key string) (int, error) {
	v, err := tx.Get(key)
	if errors.Is(err, buntdb.ErrNotFound) {
		return 0, nil
	}
	n, _ := strconv.Atoi(v)
	return n, err
}

// Admit implements storage.Storage (see storage.Admission for the rules).
func (s *Store) Admit(ctx context.Context, a storage.Admission) (out storage.Admitted, err error) {
	err = s.update(ctx, func(tx *buntdb.Tx) error {
		if a.UserID != "" {
			if err := sameEpoch(tx, a.UserID, a.Epoch); err != nil {
				return err
			}
		}
		if a.Reuse {
			var best *storage.PooledToken
			live := 0
			var dead []string
			err := tx.AscendKeys(poolPrefix(a.Pool)+"*", func(k, v string) bool {
				e, ok := decodePoolEntry(v)
				if !ok || !e.Until.After(a.Now) ||
					(e.Token != nil && (e.Token.Epoch < a.Epoch || revoked(tx, a.Pool.ClientID, e.Token.JTI, e.Token.Family, a.Now))) {
					dead = append(dead, k)
					return true
				}
				live++
				if e.Token != nil && e.Token.Epoch == a.Epoch && (best == nil || e.Token.ExpiresAt.After(best.ExpiresAt)) {
					best = e.Token
				}
				return true
			})
			if err != nil {
				return err
			}
			for _, k := range dead {
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
		ws := windows(a, &out)
		for _, w := range ws {
			n, err := readCount(tx, w.key)
			if err != nil {
				return err
			}
			*w.count = n
			if n >= w.limit && !w.shadow {
				out.Limited = true
			}
		}
		if out.Limited {
			return nil
		}
		for _, w := range ws {
			*w.count++
			if _, _, err := tx.Set(w.key, strconv.Itoa(*w.count), expiry(a.Now, w.reset.Add(time.Minute))); err != nil {
				return err
			}
		}
		if a.Reuse {
			if err := putPoolEntry(tx, poolPrefix(a.Pool)+a.Reservation, poolEntry{Until: a.ReserveUntil}, a.Now); err != nil {
				return err
			}
		}
		if a.Family != nil {
			if err := createFamily(tx, *a.Family); err != nil {
				return err // the whole transaction, counts included, is rolled back
			}
		}
		out.Allowed = true
		return nil
	})
	return out, err
}

// Settle implements storage.Storage. A login whose user's password changed since it was
// checked is settled as a failed issuance (its slot released, its counts given back) and
// answered ErrCredentialsChanged (ErrNotFound when the user is gone).
func (s *Store) Settle(ctx context.Context, st storage.Settlement) error {
	a := st.Admission
	var outcome error
	err := s.update(ctx, func(tx *buntdb.Tx) error {
		tok := st.Token
		if tok != nil && st.Family != nil && st.Family.UserID != "" {
			if outcome = sameEpoch(tx, st.Family.UserID, st.Family.Epoch); outcome != nil {
				tok = nil
			}
		}
		if a.Reuse {
			_, _ = tx.Delete(poolPrefix(a.Pool) + a.Reservation)
			if tok != nil {
				if err := putPoolEntry(tx, poolPrefix(a.Pool)+tok.JTI, poolEntry{Until: tok.ExpiresAt, Token: tok}, a.Now); err != nil {
					return err
				}
			}
		}
		if tok != nil {
			if st.Family != nil {
				return createFamily(tx, *st.Family)
			}
			return nil
		}
		for _, w := range windows(a, &storage.Admitted{}) {
			n, err := readCount(tx, w.key)
			if err != nil {
				return err
			}
			if n > 0 {
				if _, _, err := tx.Set(w.key, strconv.Itoa(n-1), expiry(a.Now, w.reset.Add(time.Minute))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		err = outcome
	}
	return err
}
