package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokensmith/tokensmith/duration"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// MaxPersonalTokens is how many personal tokens one user may hold; the store counts them in
// the step that creates one.
const MaxPersonalTokens = storage.MaxPersonalTokens

// Lifetime is a duration in JSON: a number of seconds (as OAuth's expires_in) or a duration
// string ("90d", "12h").
type Lifetime time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (l *Lifetime) UnmarshalJSON(b []byte) error {
	if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil {
		if n < 0 || n > int64(duration.Max/time.Second) {
			return errors.New("expires_in is out of range")
		}
		*l = Lifetime(time.Duration(n) * time.Second)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("expires_in must be a number of seconds or a duration such as \"90d\"")
	}
	d, err := duration.Parse(s)
	if err != nil {
		return err
	}
	*l = Lifetime(d)
	return nil
}

// PersonalTokenInput is the body of POST /admin/users/{id}/tokens.
type PersonalTokenInput struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// ExpiresIn is optional: a token without it does not expire.
	ExpiresIn *Lifetime `json:"expires_in,omitempty"`
}

// PersonalTokenView is a personal token as the admin API and the console show it. Token is set
// only in the answer that created it.
type PersonalTokenView struct {
	ID         string    `json:"id"`
	Token      string    `json:"token,omitempty"`
	UserID     string    `json:"user_id"`
	Name       string    `json:"name"`
	Scopes     []string  `json:"scopes"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

func personalView(t storage.PersonalToken) PersonalTokenView {
	return PersonalTokenView{ID: t.ID, UserID: t.UserID, Name: t.Name, Scopes: nonNil(t.Scopes),
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt}
}

// CreatePersonalToken gives a user a new personal token, returned with its value, which is
// shown only here. Its scopes must be among the user's.
func (s *Service) CreatePersonalToken(ctx context.Context, userID string, in PersonalTokenInput) (PersonalTokenView, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 100 || !printable(name) {
		return PersonalTokenView{}, invalid("name must be 1 to 100 printable characters")
	}
	scopes, err := checkScopes("scopes", in.Scopes)
	if err != nil {
		return PersonalTokenView{}, err
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return PersonalTokenView{}, storeErr(err, "user "+userID)
	}
	for _, sc := range scopes {
		if !slices.Contains(u.Scopes, sc) {
			return PersonalTokenView{}, invalid("scopes: %q is not one of the user's scopes (%s)", sc, strings.Join(u.Scopes, " "))
		}
	}
	existing, err := s.store.ListPersonalTokens(ctx, userID)
	if err != nil {
		return PersonalTokenView{}, storeErr(err, "personal tokens")
	}
	if len(existing) >= MaxPersonalTokens {
		return PersonalTokenView{}, invalid("a user may hold at most %d personal tokens; delete one first", MaxPersonalTokens)
	}
	now := s.now().UTC()
	id := secret.NewID()
	tok := secret.NewPersonalToken(id)
	t := storage.PersonalToken{ID: id, UserID: userID, Name: name, Hash: secret.Hash(tok), Scopes: scopes, CreatedAt: now}
	if in.ExpiresIn != nil {
		if d := time.Duration(*in.ExpiresIn); d < time.Second {
			return PersonalTokenView{}, invalid("expires_in must be at least 1s")
		} else {
			t.ExpiresAt = now.Add(d)
		}
	}
	if err := s.store.CreatePersonalToken(ctx, t); err != nil {
		if errors.Is(err, storage.ErrLimitReached) {
			return PersonalTokenView{}, invalid("a user may hold at most %d personal tokens; delete one first", MaxPersonalTokens)
		}
		return PersonalTokenView{}, storeErr(err, "user "+userID)
	}
	// Every replica forgets having seen this id unknown (a guess that happened to take it).
	s.changed(ctx, storage.ChangePersonalToken, id)
	v := personalView(t)
	s.recordChange(ctx, ActionPersonalTokenCreate, id, nil, v)
	v.Token = tok
	return v, nil
}

// ListPersonalTokens lists a user's personal tokens, newest first, without their values.
func (s *Service) ListPersonalTokens(ctx context.Context, userID string) ([]PersonalTokenView, error) {
	if _, err := s.store.GetUser(ctx, userID); err != nil {
		return nil, storeErr(err, "user "+userID)
	}
	all, err := s.store.ListPersonalTokens(ctx, userID)
	if err != nil {
		return nil, storeErr(err, "personal tokens")
	}
	out := make([]PersonalTokenView, 0, len(all))
	for _, t := range all {
		out = append(out, personalView(t))
	}
	slices.SortFunc(out, func(a, b PersonalTokenView) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// DeletePersonalToken revokes one of a user's personal tokens, on every replica at once.
func (s *Service) DeletePersonalToken(ctx context.Context, userID, id string) error {
	if err := s.store.DeletePersonalToken(ctx, userID, id); err != nil {
		return storeErr(err, "personal token "+id)
	}
	s.changed(ctx, storage.ChangePersonalToken, id)
	s.recordChange(ctx, ActionPersonalTokenDelete, id, map[string]any{"user_id": userID}, nil)
	return nil
}
