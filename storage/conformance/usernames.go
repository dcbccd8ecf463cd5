package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// testUsernamesNormalised: usernames are compared after compatibility normalisation and case
// folding, so names that look alike are one user: taken at create, found by lookup and login
// in any of their forms.
func testUsernamesNormalised(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for i, tc := range []struct {
		name    string
		stored  string
		same    []string // taken at create, and found by lookup and login
		another string   // a different user
	}{
		{"fullwidth", "foo", []string{"ｆｏｏ", "ＦＯＯ", "Foo"}, "fo"},
		{"ligature", "ﬁona", []string{"fiona", "FIONA", "ﬁONA"}, "flona"},
		{"combining accent", "jos\u00e9", []string{"jose\u0301", "JOSE\u0301", "JOS\u00c9"}, "jose"},
		{"stored decomposed", "rene\u0301", []string{"ren\u00e9", "REN\u00c9"}, "rene"},
		{"sharp s", "straße", []string{"STRASSE", "strasse"}, "strase"},
		{"superscript digit", "user²", []string{"user2", "USER2"}, "user3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "n" + string(rune('a'+i))
			mustNoErr(t, s.CreateUser(ctx, storage.User{ID: id, Username: tc.stored}))
			for _, name := range tc.same {
				if err := s.CreateUser(ctx, storage.User{ID: id + "x", Username: name}); !errors.Is(err, storage.ErrAlreadyExists) {
					t.Errorf("CreateUser(%q) beside %q: %v, want ErrAlreadyExists", name, tc.stored, err)
				}
				if got, err := s.GetUserByUsername(ctx, name); err != nil || got.ID != id || got.Username != tc.stored {
					t.Errorf("GetUserByUsername(%q) = %+v %v, want %s as %q", name, got, err, id, tc.stored)
				}
				st, err := s.Login(ctx, storage.LoginAttempt{Username: name, Remote: "a", Now: time.Now(), Limit: 3, UserLimit: 9, MaxDelay: time.Minute, Window: time.Minute})
				if err != nil || st.User == nil || st.User.ID != id {
					t.Errorf("Login(%q) = %+v %v, want %s", name, st, err, id)
				}
			}
			if _, err := s.GetUserByUsername(ctx, tc.another); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetUserByUsername(%q) = %v, want ErrNotFound", tc.another, err)
			}
			// Deleting the user frees every form of its name.
			mustNoErr(t, s.DeleteUser(ctx, id))
			mustNoErr(t, s.CreateUser(ctx, storage.User{ID: id + "y", Username: tc.same[0]}))
		})
	}
}

// RunLegacyUsernameTests checks, on a backend whose test can write a user as a store did before
// usernames were normalised (putLegacy: indexed under storage.LegacyFoldUsername alone), that
// such a user still signs in with the name it always used, that no new user can take that
// name or its logins, and that deleting it frees the name.
func RunLegacyUsernameTests(t *testing.T, newStore func(t *testing.T) storage.Storage, putLegacy func(storage.Storage, storage.User) error) {
	for _, tc := range []struct {
		name, stored string
		// taken are names a new user may not have beside the legacy one.
		taken []string
	}{
		{"fullwidth", "Ｆｏｏ", []string{"Ｆｏｏ", "ｆｏｏ"}},
		{"decomposed accent", "Jose\u0301", []string{"jose\u0301", "JOSE\u0301"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			ctx := context.Background()
			mustNoErr(t, putLegacy(s, storage.User{ID: "legacy", Username: tc.stored, PasswordHash: []byte("x")}))
			for _, name := range tc.taken {
				if got, err := s.GetUserByUsername(ctx, name); err != nil || got.ID != "legacy" {
					t.Errorf("GetUserByUsername(%q) = %+v %v, want the legacy user", name, got, err)
				}
				st, err := s.Login(ctx, storage.LoginAttempt{Username: name, Remote: "a", Now: time.Now(), Limit: 3, UserLimit: 9, MaxDelay: time.Minute, Window: time.Minute})
				if err != nil || st.User == nil || st.User.ID != "legacy" {
					t.Errorf("Login(%q) = %+v %v, want the legacy user", name, st, err)
				}
				if err := s.CreateUser(ctx, storage.User{ID: "new", Username: name}); !errors.Is(err, storage.ErrAlreadyExists) {
					t.Errorf("CreateUser(%q) beside the legacy %q: %v, want ErrAlreadyExists", name, tc.stored, err)
				}
			}
			mustNoErr(t, s.DeleteUser(ctx, "legacy"))
			if _, err := s.GetUserByUsername(ctx, tc.stored); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("after the delete: %v, want ErrNotFound", err)
			}
			mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "new", Username: tc.stored}))
		})
	}
	t.Run("reindex", func(t *testing.T) {
		s := newStore(t)
		t.Cleanup(func() { _ = s.Close() })
		testReindexUsernames(t, s, putLegacy)
	})
}

// testReindexUsernames: reindexing moves legacy entries to the normalised form, after which a
// look-alike new name is refused and every form still finds the user; two legacy users whose
// names look alike are reported and both keep signing in with their own names.
func testReindexUsernames(t *testing.T, s storage.Storage, putLegacy func(storage.Storage, storage.User) error) {
	ctx := context.Background()
	for _, u := range []storage.User{{ID: "accent", Username: "Jose\u0301"}, {ID: "ascii", Username: "foo"}, {ID: "wide", Username: "Ｆｏｏ"}} {
		mustNoErr(t, putLegacy(s, u))
	}
	got, err := s.ReindexUsernames(ctx)
	mustNoErr(t, err)
	if got.Moved != 1 || len(got.Conflicts) != 1 || got.Conflicts[0] != [2]string{"wide", "ascii"} {
		t.Fatalf("ReindexUsernames = %+v, want 1 moved and wide in conflict with ascii", got)
	}
	again, err := s.ReindexUsernames(ctx)
	mustNoErr(t, err)
	if again.Moved != 0 || len(again.Conflicts) != 1 {
		t.Fatalf("ReindexUsernames again = %+v, want nothing moved, the conflict reported again", again)
	}
	for _, tc := range []struct{ name, id string }{
		{"Jose\u0301", "accent"}, {"jos\u00e9", "accent"}, {"JOS\u00c9", "accent"},
		{"foo", "ascii"}, {"FOO", "ascii"}, {"Ｆｏｏ", "wide"},
	} {
		if u, err := s.GetUserByUsername(ctx, tc.name); err != nil || u.ID != tc.id {
			t.Errorf("GetUserByUsername(%q) = %+v %v, want %s", tc.name, u, err, tc.id)
		}
		st, err := s.Login(ctx, storage.LoginAttempt{Username: tc.name, Remote: "a", Now: time.Now(), Limit: 3, UserLimit: 9, MaxDelay: time.Minute, Window: time.Minute})
		if err != nil || st.User == nil || st.User.ID != tc.id {
			t.Errorf("Login(%q) = %+v %v, want %s", tc.name, st, err, tc.id)
		}
	}
	for _, name := range []string{"jos\u00e9", "JOSE\u0301", "ｆｏｏ"} {
		if err := s.CreateUser(ctx, storage.User{ID: "new", Username: name}); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("CreateUser(%q) after the reindex: %v, want ErrAlreadyExists", name, err)
		}
	}
	mustNoErr(t, s.DeleteUser(ctx, "accent"))
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "new", Username: "jos\u00e9"}))
}
