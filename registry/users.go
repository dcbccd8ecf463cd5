package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
	"golang.org/x/crypto/bcrypt"
)

// UserInput is the body of POST /admin/users.
type UserInput struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Scopes bound the scopes of the user's personal tokens.
	Scopes []string `json:"scopes,omitempty"`
}

// UserView is a user as the admin API shows it; the password hash never leaves the store.
type UserView struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
}

func userView(u storage.User) UserView {
	return UserView{ID: u.ID, Username: u.Username, Scopes: nonNil(u.Scopes), CreatedAt: u.CreatedAt}
}

// checkScopes validates a list of scope names (RFC 6749 §3.3) and drops repeats.
func checkScopes(field string, in []string) ([]string, error) {
	return uniq(field, in, func(sc string) error {
		for i := 0; i < len(sc); i++ {
			if b := sc[i]; b < 0x21 || b == 0x22 || b == 0x5c || b > 0x7e {
				return invalid("%s: %q has characters RFC 6749 §3.3 does not allow", field, sc)
			}
		}
		return nil
	})
}

// Limits on users: usernames are at most MaxUsernameLen bytes; passwords between
// MinPasswordLen and MaxPasswordLen (bcrypt reads only 72 bytes).
const (
	MinPasswordLen = 8
	MaxPasswordLen = 72
	MaxUsernameLen = 128
)

// UserUpdate is the body of PATCH /admin/users/{id}: the fields to change. The id and the
// username never change.
type UserUpdate struct {
	Password *string `json:"password,omitempty"`
}

// CreateUser registers a user for the password grant. Usernames are unique compared
// case-insensitively after Unicode normalisation (storage.FoldUsername): "bob", "BOB" and the
// fullwidth "ｂｏｂ" are one user.
func (s *Service) CreateUser(ctx context.Context, in UserInput) (UserView, error) {
	// The form names are compared in (storage.FoldUsername) is held to the same rules: a
	// compatibility character can normalise to a space ("¨" is a space and a combining mark).
	folded := storage.FoldUsername(in.Username)
	if in.Username == "" || len(in.Username) > MaxUsernameLen || !printable(in.Username) || strings.IndexFunc(in.Username, unicode.IsSpace) >= 0 ||
		!printable(folded) || strings.IndexFunc(folded, unicode.IsSpace) >= 0 {
		return UserView{}, invalid("username must be 1 to %d bytes of printable characters without spaces", MaxUsernameLen)
	}
	scopes, err := checkScopes("scopes", in.Scopes)
	if err != nil {
		return UserView{}, err
	}
	hash, err := hashPassword(in.Password)
	if err != nil {
		return UserView{}, err
	}
	u := storage.User{ID: secret.NewID(), Username: in.Username, Scopes: scopes, PasswordHash: hash, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return UserView{}, protocol.Errorf(protocol.AlreadyExists, "a user named %q already exists (usernames are compared case-insensitively, after Unicode normalisation)", in.Username)
		}
		return UserView{}, storeErr(err, "user "+in.Username)
	}
	v := userView(u)
	s.recordChange(ctx, ActionUserCreate, u.ID, nil, v)
	return v, nil
}

// hashPassword checks a new password and returns its bcrypt hash.
func hashPassword(pw string) ([]byte, error) {
	if len(pw) < MinPasswordLen {
		return nil, invalid("password must be at least %d characters", MinPasswordLen)
	}
	// bcrypt reads only the first 72 bytes; refusing longer ones keeps what is checked equal
	// to what the user typed.
	if len(pw) > MaxPasswordLen {
		return nil, invalid("password must be at most %d bytes", MaxPasswordLen)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return hash, nil
}

// GetUser returns the user with this id.
func (s *Service) GetUser(ctx context.Context, id string) (UserView, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return UserView{}, storeErr(err, "user "+id)
	}
	return userView(u), nil
}

// FindUser returns the user with this username, compared case-insensitively.
func (s *Service) FindUser(ctx context.Context, username string) (UserView, error) {
	u, err := s.store.GetUserByUsername(ctx, username)
	if err != nil {
		return UserView{}, storeErr(err, "user "+username)
	}
	return userView(u), nil
}

// UpdateUser changes the given fields of a user; today that is the password. Changing it ends
// every login made with the old one on every replica (refresh tokens are refused at their next
// use, introspection answers inactive for the access tokens); personal tokens stay.
func (s *Service) UpdateUser(ctx context.Context, id string, in UserUpdate) (UserView, error) {
	if in.Password == nil {
		return UserView{}, invalid("nothing to change: give password")
	}
	// Hashed before the update: its callback must not be slow or call the store, and may run
	// more than once.
	hash, err := hashPassword(*in.Password)
	if err != nil {
		return UserView{}, err
	}
	now := s.now().UTC()
	u, err := s.store.UpdateUser(ctx, id, func(u *storage.User) error {
		u.PasswordHash = hash
		u.NotBefore = now // the old password's logins end with it
		// and so do those whose old password was checked but not yet stored: each carries
		// the version it checked, which is no longer the user's.
		u.Epoch++
		return nil
	})
	if err != nil {
		return UserView{}, storeErr(err, "user "+id)
	}
	s.changed(ctx, storage.ChangeUser, id)
	// The password itself never reaches the trail: only that it changed.
	s.audit.Record(ctx, audit.Event{Kind: audit.AdminChange, Who: who(ctx), What: ActionUserUpdate, Target: id,
		After: map[string]any{"password": "changed"}})
	return userView(u), nil
}

// ListUsers returns every user, ordered by username.
func (s *Service) ListUsers(ctx context.Context) ([]UserView, error) {
	all, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, storeErr(err, "users")
	}
	out := make([]UserView, 0, len(all))
	for _, u := range all {
		out = append(out, userView(u))
	}
	slices.SortFunc(out, func(a, b UserView) int { return strings.Compare(a.Username, b.Username) })
	return out, nil
}

// DeleteUser removes a user. Every login of the user ends with it: refresh tokens are refused
// (and their families revoked) at their next use, and introspection answers inactive for the
// user's tokens at once.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	before, berr := s.store.GetUser(ctx, id)
	if err := s.store.DeleteUser(ctx, id); err != nil {
		return storeErr(err, "user "+id)
	}
	s.changed(ctx, storage.ChangeUser, id)
	if err := s.disown(ctx, id); err != nil {
		return err
	}
	var b any
	if berr == nil {
		b = userView(before)
	}
	s.recordChange(ctx, ActionUserDelete, id, b, nil)
	return nil
}

// disown clears a deleted user as the owner of its clients, so no client names a user that
// is gone. Clients and users live apart (on Redis in different Cluster slots), so this follows
// the deletion; it is idempotent, and a retried DeleteUser (not found) leaves nothing to do
// because each owned client is cleared before the call answers. The owner index finds the
// clients, so deleting a user costs its clients, not the whole registry.
func (s *Service) disown(ctx context.Context, userID string) error {
	owned, err := s.store.OwnedClients(ctx, userID)
	if err != nil {
		return storeErr(err, "clients")
	}
	for _, c := range owned {
		_, err := s.store.UpdateClient(ctx, c.ID, func(c *storage.Client) error {
			if c.Owner == userID {
				c.Owner = ""
			}
			return nil
		})
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return storeErr(err, "client "+c.ID)
		}
		s.changed(ctx, storage.ChangeClient, c.ID)
	}
	return nil
}
