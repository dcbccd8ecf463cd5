package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokensmith/tokensmith/storage"
)

// Admit implements storage.Storage. A count that too few replicas confirmed is given back
// before the error is answered, so a failover never lets more tokens out than the limit; a
// reuse pool's reservation needs no confirmation (losing one only mints another token). A
// user's login reads its user in the same pipeline (userStep): when the password changed
// meanwhile, a pooled token is not handed out and whatever was counted is given back.
func (s *Store) Admit(ctx context.Context, a storage.Admission) (storage.Admitted, error) {
	keys := []string{poolKey(a.Pool), counterKey(a.Pool, a.Day), hourKey(a.Pool, a.Hour)}
	args := []any{ms(a.Now), flag(a.Reuse), a.MinRemaining.Milliseconds(), a.Capacity, a.Reservation, ms(a.ReserveUntil),
		a.Limit, ms(a.ResetAt), clientTag(a.Pool.ClientID), flag(a.Shadow),
		a.HourlyLimit, ms(a.HourResetAt), flag(a.HourlyShadow), a.Epoch}
	var res []string
	var err error
	if a.Family == nil {
		var adm *goredis.Cmd
		var user *goredis.StringCmd
		steps := []step{s.admitStep(ctx, a, keys, args, &adm)}
		if a.UserID != "" {
			steps = append(steps, userStep(ctx, a.UserID, &user))
		}
		if err = s.exec(ctx, []*goredis.Script{admit}, steps...); err == nil || errors.Is(err, storage.ErrUnconfirmed) {
			var aerr error
			if res, aerr = adm.StringSlice(); aerr != nil {
				err = aerr
			} else if serr := sameEpoch(user, a.Epoch); serr != nil {
				err = serr
				if res[0] == "allowed" {
					err = errors.Join(serr, s.giveBack(ctx, a))
				}
			} else if err != nil && res[0] == "allowed" {
				err = s.undo(ctx, err, func(ctx context.Context) error { return s.giveBack(ctx, a) })
			} else {
				// Nothing counted, or nothing that needed confirming.
				err = nil
			}
		}
	} else {
		res, err = s.admitWithFamily(ctx, a, keys, args)
	}
	if err != nil {
		return storage.Admitted{}, fail(err)
	}
	var counts storage.Admitted
	if len(res) == 3 {
		counts.DailyCount, _ = strconv.Atoi(res[1])
		counts.HourlyCount, _ = strconv.Atoi(res[2])
	}
	switch res[0] {
	case "reused":
		t, ok := storage.DecodePooledToken(res[1])
		if !ok {
			return storage.Admitted{}, errors.New("redis: unreadable pooled token")
		}
		return storage.Admitted{Reused: &t}, nil
	case "limited":
		counts.Limited = true
		return counts, nil
	case "busy":
		return storage.Admitted{Busy: true}, nil
	default:
		counts.Allowed = true
		return counts, nil
	}
}

// admitStep is the admission script as a step of exec: durable when it counts against a limit.
func (s *Store) admitStep(ctx context.Context, a storage.Admission, keys []string, args []any, adm **goredis.Cmd) step {
	queue := func(p goredis.Pipeliner) { *adm = admit.EvalSha(ctx, p, keys, args...) }
	if a.Limit > 0 || a.HourlyLimit > 0 {
		return durable(keys[0], queue)
	}
	return plain(keys[0], queue)
}

// giveBack takes back what an allowed admission counted and reserved (a Settlement without a
// token), without waiting for replicas: a give-back lost in a failover only lets out one token
// fewer.
func (s *Store) giveBack(ctx context.Context, a storage.Admission) error {
	return settle.Run(ctx, s.rdb, []string{poolKey(a.Pool), counterKey(a.Pool, a.Day), hourKey(a.Pool, a.Hour)},
		flag(a.Reuse), a.Reservation, "", 0, "", a.Limit, ms(a.Now), "", a.HourlyLimit).Err()
}

// admitWithFamily sends the admission and the new family in one pipeline: they live in
// different slots, so no script can hold both. The family is therefore written whatever the
// admission answers, and taken away again when it was not allowed (its token was never handed
// out, so until then it was unusable); a failure to write it, or too few replicas confirming
// either, gives the count back.
func (s *Store) admitWithFamily(ctx context.Context, a storage.Admission, keys []string, args []any) ([]string, error) {
	t := *a.Family
	famArgs, err := createArgs(t)
	if err != nil {
		return nil, err
	}
	var adm, created *goredis.Cmd
	var user *goredis.StringCmd
	famKeys := []string{familyKey(t.FamilyID)}
	steps := []step{s.admitStep(ctx, a, keys, args, &adm),
		durable(famKeys[0], func(p goredis.Pipeliner) {
			created = createRefresh.EvalSha(ctx, p, famKeys, famArgs...)
		})}
	if t.UserID != "" {
		steps = append(steps, userStep(ctx, t.UserID, &user))
	}
	unconfirmed := s.exec(ctx, []*goredis.Script{admit, createRefresh}, steps...)
	if unconfirmed != nil && !errors.Is(unconfirmed, storage.ErrUnconfirmed) {
		return nil, unconfirmed
	}
	res, err := adm.StringSlice()
	if err != nil {
		return nil, err
	}
	n, cerr := created.Int()
	stale := sameEpoch(user, t.Epoch)
	switch {
	case res[0] != "allowed" || stale != nil:
		if cerr == nil && n == 1 {
			_ = s.rdb.Del(ctx, famKeys...).Err()
		}
		if stale != nil {
			if res[0] == "allowed" {
				return nil, errors.Join(stale, s.giveBack(ctx, a))
			}
			return nil, stale
		}
	case cerr != nil || n != 1:
		// Counted but not stored: give the count back (a Settlement without a token).
		return nil, errors.Join(fmt.Errorf("storing the new refresh family: %v", cerr), s.Settle(ctx, storage.Settlement{Admission: a}))
	case unconfirmed != nil:
		// The family's token is never answered; it expires unused.
		return nil, s.undo(ctx, unconfirmed, func(ctx context.Context) error { return s.giveBack(ctx, a) })
	}
	return res, nil
}

// Settle implements storage.Storage. Only a login's refresh family waits for replicas: a pool
// entry or a count given back that a failover loses costs one more token minted, or one fewer.
// An unconfirmed family is left in place; its token is not answered, and it expires.
func (s *Store) Settle(ctx context.Context, st storage.Settlement) error {
	a := st.Admission
	var jti, fam string
	var until int64
	var payload string
	if st.Token != nil {
		payload = storage.EncodePooledToken(*st.Token)
		jti, fam, until = st.Token.JTI, st.Token.Family, ms(st.Token.ExpiresAt)
	}
	keys := []string{poolKey(a.Pool), counterKey(a.Pool, a.Day), hourKey(a.Pool, a.Hour)}
	args := []any{flag(a.Reuse), a.Reservation, jti, until, payload, a.Limit, ms(a.Now), fam, a.HourlyLimit}
	if st.Family == nil || st.Token == nil {
		return fail(settle.Run(ctx, s.rdb, keys, args...).Err())
	}
	// The family and the pool live in different slots: one pipeline, two scripts.
	t := *st.Family
	famArgs, err := createArgs(t)
	if err != nil {
		return err
	}
	var settled, created *goredis.Cmd
	var user *goredis.StringCmd
	famKeys := []string{familyKey(t.FamilyID)}
	steps := []step{plain(keys[0], func(p goredis.Pipeliner) { settled = settle.EvalSha(ctx, p, keys, args...) }),
		durable(famKeys[0], func(p goredis.Pipeliner) {
			created = createRefresh.EvalSha(ctx, p, famKeys, famArgs...)
		})}
	if t.UserID != "" {
		steps = append(steps, userStep(ctx, t.UserID, &user))
	}
	unconfirmed := s.exec(ctx, []*goredis.Script{settle, createRefresh}, steps...)
	if unconfirmed != nil && !errors.Is(unconfirmed, storage.ErrUnconfirmed) {
		return unconfirmed
	}
	if err := settled.Err(); err != nil {
		return fail(err)
	}
	n, err := created.Int()
	if stale := sameEpoch(user, t.Epoch); stale != nil {
		// The password changed since the login checked it: the login is not answered, so
		// its family, its pooled token and its count go.
		var undo []error
		if err == nil && n == 1 {
			undo = append(undo, s.rdb.Del(ctx, famKeys...).Err())
		}
		undo = append(undo, s.rdb.HDel(ctx, keys[0], jti).Err(), s.giveBack(ctx, a))
		return errors.Join(stale, fail(errors.Join(undo...)))
	}
	if err != nil || n != 1 {
		return fmt.Errorf("%w: storing the new refresh family: %v", storage.ErrUnavailable, err)
	}
	return unconfirmed
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
