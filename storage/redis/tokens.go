package redis

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// pipelined sends the commands fn queues as one pipeline: one round trip, whatever slots they
// touch (go-redis sends a Cluster's per-node parts at once). Scripts go as EVALSHA; if Redis has
// lost them (it restarted), they are loaded and the pipeline is sent again. That is safe because
// a command answered NOSCRIPT did not run, and the other commands of these pipelines are reads.
func (s *Store) pipelined(ctx context.Context, scripts []*goredis.Script, fn func(p goredis.Pipeliner)) ([]goredis.Cmder, error) {
	for attempt := 0; ; attempt++ {
		cmds, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error { fn(p); return nil })
		noScript := false
		for _, c := range cmds {
			if e := c.Err(); e != nil && strings.HasPrefix(e.Error(), "NOSCRIPT") {
				noScript = true
			}
		}
		if !noScript || attempt > 0 {
			if err != nil && !errors.Is(err, goredis.Nil) && !noScript {
				return cmds, fail(err)
			}
			return cmds, nil
		}
		for _, sc := range scripts {
			if err := sc.Load(ctx, s.rdb).Err(); err != nil {
				return nil, fail(err)
			}
		}
	}
}

// storedRefresh is how records written before the family's hash held its current token
// kept a refresh token's immutable part, in the data field of the token's own key: without
// the family and hash its key names and the client its client field holds (records older
// still left them in). decodeRefresh reads them as they are.
type storedRefresh struct {
	storage.RefreshToken
	// The same JSON names as RefreshToken's, which they hide, but left out when empty.
	Hash     string `json:"hash,omitempty"`
	FamilyID string `json:"family_id,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

// tokenFields is a refresh token's immutable part (all of it but its hash, family and client,
// which its family's hash and key hold) as the field/value pairs of a family's hash, each small
// enough that the hash stays listpack-encoded, and named by one letter, since a login's whole
// record is a few hundred bytes: i issue time and l access token lifetime in nanoseconds (so
// they read back exactly), e expiry in milliseconds (the scripts compare it), s subject, o
// scope, a audience (JSON), u user, p credential version, k DPoP key and x certificate
// thumbprints; empty values are left out. tokenFieldsLua lists the same names.
func tokenFields(t storage.RefreshToken) ([]any, error) {
	f := []any{"i", t.IssuedAt.UnixNano(), "e", ms(t.ExpiresAt), "l", int64(t.AccessTTL)}
	add := func(name, v string) {
		if v != "" {
			f = append(f, name, v)
		}
	}
	add("s", t.Subject)
	add("o", t.Scope)
	if len(t.Audience) > 0 {
		b, err := json.Marshal(t.Audience)
		if err != nil {
			return nil, err
		}
		add("a", string(b))
	}
	add("u", t.UserID)
	if t.Epoch != 0 {
		add("p", strconv.FormatUint(t.Epoch, 10))
	}
	add("k", t.JKT)
	add("x", t.X5T)
	return f, nil
}

// tokenJSON is tokenFields as the JSON object a used token's key keeps in its tok field.
func tokenJSON(fields []any) ([]byte, error) {
	m := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		m[fields[i].(string)] = fmt.Sprint(fields[i+1])
	}
	return json.Marshal(m)
}

// fromFields is the refresh token whose tokenFields are f.
func fromFields(f map[string]string, familyID, hash, client string) (storage.RefreshToken, error) {
	t := storage.RefreshToken{Hash: hash, FamilyID: familyID, ClientID: client, Subject: f["s"], Scope: f["o"],
		UserID: f["u"], JKT: f["k"], X5T: f["x"]}
	iat, err := strconv.ParseInt(f["i"], 10, 64)
	if err != nil {
		return t, fmt.Errorf("refresh token %s: issue time %q", hash, f["i"])
	}
	exp, err := strconv.ParseInt(f["e"], 10, 64)
	if err != nil {
		return t, fmt.Errorf("refresh token %s: expiry %q", hash, f["e"])
	}
	ttl, err := strconv.ParseInt(f["l"], 10, 64)
	if err != nil {
		return t, fmt.Errorf("refresh token %s: access token lifetime %q", hash, f["l"])
	}
	t.IssuedAt, t.ExpiresAt, t.AccessTTL = time.Unix(0, iat).UTC(), time.UnixMilli(exp).UTC(), time.Duration(ttl)
	if v := f["a"]; v != "" {
		if err := json.Unmarshal([]byte(v), &t.Audience); err != nil {
			return t, fmt.Errorf("refresh token %s: audience: %w", hash, err)
		}
	}
	if v := f["p"]; v != "" {
		if t.Epoch, err = strconv.ParseUint(v, 10, 64); err != nil {
			return t, fmt.Errorf("refresh token %s: credential version %q", hash, v)
		}
	}
	return t, nil
}

// storedHash is how a family's hash keeps a token's hash: the 32 bytes the hex of a SHA-256
// (every hash the server makes) stands for, half its length. Any other text is kept as it is
// when shorter than that, and with a byte behind it when not, so only a halved hash is ever 32
// bytes long.
func storedHash(h string) string {
	if len(h) == 64 && strings.ToLower(h) == h {
		if b, err := hex.DecodeString(h); err == nil {
			return string(b)
		}
	}
	if len(h) >= 32 {
		return h + "\x00"
	}
	return h
}

// readHash is the hash storedHash(h) keeps.
func readHash(stored string) string {
	switch {
	case len(stored) == 32:
		return hex.EncodeToString([]byte(stored))
	case len(stored) > 32:
		return stored[:len(stored)-1]
	}
	return stored
}

// createArgs are createRefresh's arguments for the first token of a family.
func createArgs(t storage.RefreshToken) ([]any, error) {
	f, err := tokenFields(t)
	if err != nil {
		return nil, err
	}
	return append([]any{t.ClientID, ms(t.IssuedAt), ms(t.FamilyExpiry()), t.Epoch, storedHash(t.Hash)}, f...), nil
}

// CreateRefreshToken implements storage.Storage. An unconfirmed family is left in place: its
// token was never answered, so nobody can use it, and it expires. A user's login is checked
// against its user in the same pipeline (userStep), and removed again when the password
// changed meanwhile.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	args, err := createArgs(t)
	if err != nil {
		return err
	}
	keys := []string{familyKey(t.FamilyID)}
	var cmd *goredis.Cmd
	var user *goredis.StringCmd
	steps := []step{durable(keys[0], func(p goredis.Pipeliner) {
		cmd = createRefresh.EvalSha(ctx, p, keys, args...)
	})}
	if t.UserID != "" {
		steps = append(steps, userStep(ctx, t.UserID, &user))
	}
	unconfirmed := s.exec(ctx, []*goredis.Script{createRefresh}, steps...)
	if unconfirmed != nil && !errors.Is(unconfirmed, storage.ErrUnconfirmed) {
		return unconfirmed
	}
	n, err := cmd.Int()
	if err != nil {
		return fail(err)
	}
	if n == 0 {
		return storage.ErrAlreadyExists
	}
	if err := sameEpoch(user, t.Epoch); err != nil {
		// Its token was never answered: nobody holds it.
		if derr := s.rdb.Del(ctx, keys...).Err(); derr != nil {
			return errors.Join(err, fail(derr))
		}
		return err
	}
	return unconfirmed
}

// userStep reads a login's user beside the write that stores the login. The user lives in the
// users' slot and the login in its family's or its client's, so no one script can hold both;
// the login records the credential version it was checked against, and every later use of it
// compares that with the user's, so a login that slips past this check is still dead.
func userStep(ctx context.Context, userID string, out **goredis.StringCmd) step {
	return plain(usersByID, func(p goredis.Pipeliner) { *out = p.HGet(ctx, usersByID, userID) })
}

// sameEpoch reads a userStep's answer: nil when no user was read or its credential version is
// epoch, ErrNotFound when the user is gone, ErrCredentialsChanged when its version is another.
func sameEpoch(user *goredis.StringCmd, epoch uint64) error {
	if user == nil {
		return nil
	}
	js, err := user.Result()
	if err != nil {
		return fail(err)
	}
	u, err := decode[storage.User](js)
	if err != nil {
		return err
	}
	if u.Epoch != epoch {
		return storage.ErrCredentialsChanged
	}
	return nil
}

// GetRefreshToken implements storage.Storage: the family's hash and the token's own keys, in
// one round trip. A family's current token is answered until its family expires, which may
// be after the token does: the caller's clock decides whether it is still valid.
func (s *Store) GetRefreshToken(ctx context.Context, familyID, hash string) (storage.RefreshToken, error) {
	var fam, own *goredis.MapStringStringCmd
	var used *goredis.StringCmd
	if _, err := s.pipelined(ctx, nil, func(p goredis.Pipeliner) {
		fam, own, used = p.HGetAll(ctx, familyKey(familyID)), p.HGetAll(ctx, refreshKey(familyID, hash)), p.Get(ctx, usedKey(familyID, hash))
	}); err != nil {
		return storage.RefreshToken{}, err
	}
	f, err := fam.Result()
	if err != nil {
		return storage.RefreshToken{}, fail(err)
	}
	if f["h"] != "" && f["h"] == storedHash(hash) {
		return decodeCurrent(f, familyID)
	}
	if v, err := used.Result(); err == nil {
		return decodeUsed(v, familyID, hash)
	} else if !errors.Is(err, goredis.Nil) {
		return storage.RefreshToken{}, fail(err)
	}
	m, err := own.Result()
	if err != nil {
		return storage.RefreshToken{}, fail(err)
	}
	return decodeRefresh(m, familyID, hash)
}

// decodeCurrent reads the current token of the family hash f: ErrNotFound when it has none.
func decodeCurrent(f map[string]string, familyID string) (storage.RefreshToken, error) {
	if f["h"] == "" {
		return storage.RefreshToken{}, storage.ErrNotFound
	}
	return fromFields(f, familyID, readHash(f["h"]), f["client"])
}

// decodeUsed reads a used token's string (see the scripts): its fields as JSON, a newline,
// its sealed successor.
func decodeUsed(v, familyID, hash string) (storage.RefreshToken, error) {
	head, succ, ok := strings.Cut(v, "\n")
	var f map[string]string
	if !ok || json.Unmarshal([]byte(head), &f) != nil {
		return storage.RefreshToken{}, fmt.Errorf("refresh token %s: unreadable record", hash)
	}
	t, err := fromFields(f, familyID, hash, f["C"])
	if err != nil {
		return t, err
	}
	used, err := strconv.ParseInt(f["U"], 10, 64)
	if err != nil {
		return t, fmt.Errorf("refresh token %s: use time %q", hash, f["U"])
	}
	t.UsedAt = time.UnixMilli(used).UTC()
	if succ != "" {
		t.Successor = []byte(succ)
	}
	return t, nil
}

// decodeRefresh reads the hash key of the refresh token familyID, hash (one written before the
// family's hash held its current token, or restored beside another): ErrNotFound when it is
// empty (gone). What a record of the older, longer form says of its family, hash and client is taken
// as it is.
func decodeRefresh(m map[string]string, familyID, hash string) (storage.RefreshToken, error) {
	var t storage.RefreshToken
	switch {
	case m["tok"] != "":
		var f map[string]string
		if err := json.Unmarshal([]byte(m["tok"]), &f); err != nil {
			return t, fmt.Errorf("refresh token %s: %w", hash, err)
		}
		var err error
		if t, err = fromFields(f, familyID, hash, m["client"]); err != nil {
			return t, err
		}
	case m["data"] != "":
		var r storedRefresh
		if err := json.Unmarshal([]byte(m["data"]), &r); err != nil {
			return t, err
		}
		t = r.RefreshToken
		t.FamilyID, t.Hash, t.ClientID = cmp.Or(r.FamilyID, familyID), cmp.Or(r.Hash, hash), cmp.Or(r.ClientID, m["client"])
	default:
		return t, storage.ErrNotFound
	}
	if used, err := strconv.ParseInt(m["used"], 10, 64); err == nil {
		t.UsedAt = time.UnixMilli(used).UTC()
	}
	if m["succ"] != "" {
		t.Successor = []byte(m["succ"])
	}
	return t, nil
}

// RotateRefreshToken implements storage.Storage. The family's keys share a slot, so the
// rotation itself is one script; whether the user still exists lives in another slot and is
// read in the same pipeline. A rotation whose user is gone is undone by revoking the family
// before anything is answered. A fresh rotation too few replicas confirmed is taken back
// (unrotate), so the client's retry with the same refresh token rotates it again rather than
// finding it used; a replay's revocation is confirmed by the RevokeFamily that follows it.
func (s *Store) RotateRefreshToken(ctx context.Context, r storage.Rotation) (storage.Rotated, error) {
	args := []any{r.ClientID, ms(r.Now), r.Grace.Milliseconds(), r.Sealed, ms(r.Next.ExpiresAt), storedHash(r.Next.Hash), ms(r.Next.FamilyExpiry()), storedHash(r.Hash)}
	if r.Next.Hash != "" {
		f, err := tokenFields(r.Next)
		if err != nil {
			return storage.Rotated{}, err
		}
		args = append(args, f...)
	}
	var rot *goredis.Cmd
	var user *goredis.StringCmd
	steps := []step{durable(familyKey(r.FamilyID), func(p goredis.Pipeliner) {
		rot = rotate.EvalSha(ctx, p,
			[]string{familyKey(r.FamilyID), refreshKey(r.FamilyID, r.Hash), refreshKey(r.FamilyID, r.Next.Hash), usedKey(r.FamilyID, r.Hash)}, args...)
	})}
	if r.UserID != "" {
		steps = append(steps, plain(usersByID, func(p goredis.Pipeliner) { user = p.HGet(ctx, usersByID, r.UserID) }))
	}
	unconfirmed := s.exec(ctx, []*goredis.Script{rotate}, steps...)
	if unconfirmed != nil && !errors.Is(unconfirmed, storage.ErrUnconfirmed) {
		return storage.Rotated{}, unconfirmed
	}
	res, err := rot.StringSlice()
	if err != nil {
		return storage.Rotated{}, fail(err)
	}
	if user != nil {
		js, err := user.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return storage.Rotated{}, fail(err)
		}
		gone := err != nil
		if !gone {
			u, err := decode[storage.User](js)
			gone = err != nil || r.IssuedAt.Before(u.NotBefore) || r.Epoch != u.Epoch
		}
		if gone && (res[0] == "fresh" || res[0] == "grace") {
			if err := s.RevokeFamily(ctx, r.FamilyID, r.Now); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return storage.Rotated{}, err
			}
			return storage.Rotated{}, storage.ErrRevoked
		}
	}
	switch res[0] {
	case "fresh":
		if unconfirmed != nil {
			return storage.Rotated{}, s.undo(ctx, unconfirmed, func(ctx context.Context) error {
				return unrotate.Run(ctx, s.rdb, []string{refreshKey(r.FamilyID, r.Hash), familyKey(r.FamilyID), refreshKey(r.FamilyID, r.Next.Hash), usedKey(r.FamilyID, r.Hash)},
					r.Sealed, storedHash(r.Hash), storedHash(r.Next.Hash)).Err()
			})
		}
		return storage.Rotated{Fresh: true, Sealed: []byte(res[1])}, nil
	case "grace":
		if unconfirmed != nil {
			return storage.Rotated{}, unconfirmed
		}
		return storage.Rotated{Sealed: []byte(res[1])}, nil
	case "revoked":
		return storage.Rotated{}, storage.ErrRevoked
	case "replay":
		// The script revoked the family; the client's pools must learn it too.
		if err := s.RevokeFamily(ctx, r.FamilyID, r.Now); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return storage.Rotated{}, err
		}
		return storage.Rotated{}, storage.ErrReplay
	default:
		return storage.Rotated{}, storage.ErrNotFound
	}
}

// RevokeFamily implements storage.Storage in two steps, each atomic and each confirmed by the
// replicas: the family is marked in its own slot, then in its client's slot, where reuse pools
// and TokenState look. A failure between them is answered as an error; the call is
// idempotent, so the caller's retry (an RFC 7009 client retries a failed revocation) completes
// it. An unconfirmed first step still takes the second (without waiting for replicas again),
// so the revocation is as complete as it can be before the error is answered.
func (s *Store) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	cmd, unconfirmed := s.run(ctx, revokeFamily, []string{familyKey(familyID)}, ms(now))
	if cmd == nil {
		return unconfirmed
	}
	res, _ := cmd.StringSlice()
	if len(res) < 2 {
		return storage.ErrNotFound
	}
	exp, _ := strconv.ParseInt(res[1], 10, 64)
	ttl := time.Duration(max(exp-ms(now), 1)) * time.Millisecond
	key := revokedFamilyKey(res[0], familyID)
	var set *goredis.StatusCmd
	mark := step{key: key, durable: unconfirmed == nil, queue: func(p goredis.Pipeliner) { set = p.Set(ctx, key, "1", ttl) }}
	err := s.exec(ctx, nil, mark)
	if err == nil || errors.Is(err, storage.ErrUnconfirmed) {
		if serr := set.Err(); serr != nil {
			err = fail(serr)
		}
	}
	if err != nil {
		return err
	}
	return unconfirmed
}

// RevokeAccessToken implements storage.Storage: deny-list entry and pool removal share the
// client's slot, so this is one script. An unconfirmed revocation is left in place; retried,
// it is the same revocation.
func (s *Store) RevokeAccessToken(ctx context.Context, r storage.AccessRevocation) error {
	ttl := max(ms(r.ExpiresAt)-ms(r.Now), 1)
	_, err := s.run(ctx, revokeAccess, []string{revokedJTIKey(r.Pool.ClientID, r.JTI), poolKey(r.Pool)}, ttl, r.JTI)
	return err
}

// TokenState implements storage.Storage: one pipeline of reads.
func (s *Store) TokenState(ctx context.Context, q storage.TokenQuery) (storage.TokenState, error) {
	var st storage.TokenState
	var marks *goredis.IntCmd
	var fam *goredis.SliceCmd
	var user, pat *goredis.StringCmd
	var famEpoch uint64
	_, err := s.pipelined(ctx, nil, func(p goredis.Pipeliner) {
		var keys []string
		if q.JTI != "" {
			keys = append(keys, revokedJTIKey(q.ClientID, q.JTI))
		}
		if q.FamilyID != "" {
			keys = append(keys, revokedFamilyKey(q.ClientID, q.FamilyID))
			fam = p.HMGet(ctx, familyKey(q.FamilyID), "revoked", "exp", "epoch")
		}
		if len(keys) > 0 {
			marks = p.Exists(ctx, keys...)
		}
		if q.UserID != "" {
			user = p.HGet(ctx, usersByID, q.UserID)
		}
		if q.PersonalTokenID != "" {
			pat = p.HGet(ctx, patsKey, q.PersonalTokenID)
		}
	})
	if err != nil {
		return st, err
	}
	if marks != nil {
		n, err := marks.Result()
		if err != nil {
			return st, fail(err)
		}
		st.Revoked = n > 0
	}
	if fam != nil {
		v, err := fam.Result()
		if err != nil {
			return st, fail(err)
		}
		exp, _ := v[1].(string)
		until, _ := strconv.ParseInt(exp, 10, 64)
		st.Revoked = st.Revoked || v[0] == "1" || until <= ms(q.Now)
		ep, _ := v[2].(string)
		famEpoch, _ = strconv.ParseUint(ep, 10, 64)
	}
	if pat != nil {
		v, err := pat.Result()
		switch {
		case errors.Is(err, goredis.Nil):
			st.Revoked = true
		case err != nil:
			return st, fail(err)
		default:
			t, err := decode[storage.PersonalToken](v)
			st.Revoked = st.Revoked || err != nil || !t.Live(q.Now)
		}
	}
	if user != nil {
		v, err := user.Result()
		switch {
		case err == nil:
			u, err := decode[storage.User](v)
			if err != nil {
				return st, err
			}
			st.User = &u
			// A login whose password was checked against another credential version.
			st.Revoked = st.Revoked || (fam != nil && famEpoch != u.Epoch)
		case !errors.Is(err, goredis.Nil):
			return st, fail(err)
		}
	}
	return st, nil
}

// UseAssertion implements storage.Storage: SET NX in a script, so the write goes through the
// path that waits for replicas. An unconfirmed entry is taken back: no token was answered for
// the assertion, and a failover could lose the entry anyway.
func (s *Store) UseAssertion(ctx context.Context, a storage.AssertionUse) error {
	key := assertionKey(a.ClientID, a.JTI)
	cmd, err := s.run(ctx, useAssertion, []string{key}, max(ms(a.ExpiresAt)-ms(a.Now), 1))
	if cmd == nil {
		return err
	}
	if n, _ := cmd.Int(); n == 0 {
		return storage.ErrAlreadyExists
	}
	if err != nil {
		return s.undo(ctx, err, func(ctx context.Context) error { return s.rdb.Del(ctx, key).Err() })
	}
	return nil
}
