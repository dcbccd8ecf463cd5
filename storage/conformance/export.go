package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// Backup and restore: what the Each methods read is what the Restore methods write, a restore
// is idempotent, a dry run writes nothing, and a restore never brings back a spent or revoked
// credential nor hands a name or token to another owner.

// backupSet is one of every record kind, as a backup holds them.
type backupSet struct {
	keys     []storage.SigningKey
	clients  []storage.Client
	deleted  []storage.DeletedClient
	users    []storage.User
	pats     []storage.PersonalToken
	families []storage.RefreshFamily
	tokens   []storage.RefreshToken
	revoked  []storage.RevokedAccessToken
}

// sampleBackup is a backup taken at now: times to the millisecond, as Redis keeps them.
func sampleBackup(now time.Time) backupSet {
	grace := 5 * time.Second
	rt := func(fam, hash string) storage.RefreshToken {
		return storage.RefreshToken{Hash: hash, FamilyID: fam, ClientID: "client", Subject: "u1", Scope: "a",
			Audience: []string{"api"}, AccessTTL: time.Hour, IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(24 * time.Hour)}
	}
	used := rt("f1", "h0")
	used.UsedAt, used.Successor = now.Add(-time.Second), []byte("sealed-h1")
	retired := key("k0", now.Add(-48*time.Hour))
	retired.RetiredAt, retired.RemoveAt = now.Add(-time.Hour), now.Add(23*time.Hour)
	lastUsed := pat("p1", "u1", now.Add(-time.Hour))
	lastUsed.LastUsedAt = now.Add(-time.Minute)
	expiring := pat("p2", "u1", now.Add(-time.Hour))
	expiring.ExpiresAt = now.Add(time.Hour)
	return backupSet{
		keys: []storage.SigningKey{retired, key("k1", now.Add(-time.Hour))},
		clients: []storage.Client{
			{ID: "client", Name: "billing", SecretHash: []byte("digest"), GrantTypes: []string{"password", "refresh_token"},
				Scopes: []string{"a"}, RefreshGrace: &grace, NotBefore: now.Add(-24 * time.Hour), CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)},
			{ID: "weird id*?:{x}", GrantTypes: []string{"client_credentials"}, CreatedAt: now, UpdatedAt: now},
		},
		deleted: []storage.DeletedClient{{ID: "client", DeletedAt: now.Add(-24 * time.Hour)}, {ID: "gone", DeletedAt: now.Add(-time.Hour)}},
		users: []storage.User{
			{ID: "u1", Username: "Alice", Scopes: []string{"a"}, PasswordHash: []byte("bcrypt"), CreatedAt: now.Add(-time.Hour)},
			{ID: "u2", Username: "bob", PasswordHash: []byte("bcrypt"), NotBefore: now.Add(-time.Minute), CreatedAt: now.Add(-time.Hour)},
		},
		pats: []storage.PersonalToken{lastUsed, expiring},
		families: []storage.RefreshFamily{
			{ID: "f1", ClientID: "client", ExpiresAt: now.Add(25 * time.Hour)},
			{ID: "f2", ClientID: "client", Revoked: true, ExpiresAt: now.Add(25 * time.Hour)},
		},
		tokens:  []storage.RefreshToken{used, rt("f1", "h1"), rt("f2", "h0")},
		revoked: []storage.RevokedAccessToken{{ClientID: "client", JTI: "jti-1", ExpiresAt: now.Add(time.Hour)}},
	}
}

// restoreAll restores every record of b and returns the outcomes by kind.
func restoreAll(t *testing.T, s storage.Storage, b backupSet, r storage.Restore) map[string][]storage.Outcome {
	t.Helper()
	ctx := context.Background()
	got := map[string][]storage.Outcome{}
	add := func(kind string, out storage.Outcome, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("restoring a %s (dry run %v): %v", kind, r.DryRun, err)
		}
		got[kind] = append(got[kind], out)
	}
	for _, k := range b.keys {
		out, err := s.RestoreSigningKey(ctx, k, r)
		add("key", out, err)
	}
	for _, c := range b.clients {
		out, err := s.RestoreClient(ctx, c, r)
		add("client", out, err)
	}
	for _, d := range b.deleted {
		out, err := s.RestoreDeletedClient(ctx, d, r)
		add("deleted", out, err)
	}
	for _, u := range b.users {
		out, err := s.RestoreUser(ctx, u, r)
		add("user", out, err)
	}
	if !r.DryRun { // a dry run's users are not there for their tokens
		for _, p := range b.pats {
			out, err := s.RestorePersonalToken(ctx, p, r)
			add("pat", out, err)
		}
	}
	for _, f := range b.families {
		out, err := s.RestoreRefreshFamily(ctx, f, r)
		add("family", out, err)
	}
	for _, tok := range b.tokens {
		out, err := s.RestoreRefreshToken(ctx, tok, r)
		add("token", out, err)
	}
	for _, rv := range b.revoked {
		out, err := s.RestoreRevokedAccessToken(ctx, rv, r)
		add("revoked", out, err)
	}
	return got
}

// allAre checks that every outcome is want.
func allAre(t *testing.T, got map[string][]storage.Outcome, want storage.Outcome) {
	t.Helper()
	for kind, outs := range got {
		for i, o := range outs {
			if o != want {
				t.Errorf("%s #%d: %s, want %s", kind, i, o, want)
			}
		}
	}
}

// exported reads the whole store back with the Each methods, sorted.
func exported(t *testing.T, s storage.Storage, now time.Time) backupSet {
	t.Helper()
	ctx := context.Background()
	var b backupSet
	var err error
	b.keys, err = s.ListSigningKeys(ctx)
	mustNoErr(t, err)
	mustNoErr(t, s.EachClient(ctx, func(c storage.Client) error { b.clients = append(b.clients, c); return nil }))
	mustNoErr(t, s.EachDeletedClient(ctx, func(d storage.DeletedClient) error { b.deleted = append(b.deleted, d); return nil }))
	mustNoErr(t, s.EachUser(ctx, func(u storage.User, pats []storage.PersonalToken) error {
		for _, p := range pats {
			if p.UserID != u.ID {
				return fmt.Errorf("user %s listed with %s's personal token %s", u.ID, p.UserID, p.ID)
			}
		}
		b.users, b.pats = append(b.users, u), append(b.pats, pats...)
		return nil
	}))
	mustNoErr(t, s.EachRefreshFamily(ctx, now, func(f storage.RefreshFamily) error { b.families = append(b.families, f); return nil }))
	mustNoErr(t, s.EachRefreshToken(ctx, now, func(tok storage.RefreshToken) error { b.tokens = append(b.tokens, tok); return nil }))
	mustNoErr(t, s.EachRevokedAccessToken(ctx, now, func(r storage.RevokedAccessToken) error { b.revoked = append(b.revoked, r); return nil }))
	return b
}

// sameRecords compares two lists of records as JSON, in any order.
func sameRecords[T any](t *testing.T, kind string, got, want []T) {
	t.Helper()
	enc := func(l []T) []string {
		out := make([]string, len(l))
		for i, v := range l {
			b, err := json.Marshal(v)
			mustNoErr(t, err)
			out[i] = string(b)
		}
		slices.Sort(out)
		return out
	}
	if g, w := enc(got), enc(want); !slices.Equal(g, w) {
		t.Errorf("%s:\n got  %s\n want %s", kind, strings.Join(g, "\n      "), strings.Join(w, "\n      "))
	}
}

// sameBackup compares everything but the revocations' ends (Redis reports them from a time to
// live, to the millisecond it reads them).
func sameBackup(t *testing.T, got, want backupSet) {
	t.Helper()
	sameRecords(t, "signing keys", got.keys, want.keys)
	sameRecords(t, "clients", got.clients, want.clients)
	sameRecords(t, "deleted clients", got.deleted, want.deleted)
	sameRecords(t, "users", got.users, want.users)
	sameRecords(t, "personal tokens", got.pats, want.pats)
	sameRecords(t, "refresh families", got.families, want.families)
	sameRecords(t, "refresh tokens", got.tokens, want.tokens)
	strip := func(l []storage.RevokedAccessToken) []storage.RevokedAccessToken {
		out := make([]storage.RevokedAccessToken, len(l))
		for i, r := range l {
			out[i] = storage.RevokedAccessToken{ClientID: r.ClientID, JTI: r.JTI}
		}
		return out
	}
	sameRecords(t, "revoked access tokens", strip(got.revoked), strip(want.revoked))
	for _, r := range got.revoked {
		if r.ExpiresAt.IsZero() {
			t.Errorf("revoked access token %s reads back without its end", r.JTI)
		}
	}
}

// testRestoreRoundTrip: a dry run into an empty store writes nothing; a restore creates every
// record, which the Each methods read back exactly and which work as the originals did; a
// second restore changes nothing.
func testRestoreRoundTrip(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := sampleBackup(now)

	allAre(t, restoreAll(t, s, b, storage.Restore{Now: now, DryRun: true}), storage.Created)
	if got := exported(t, s, now); len(got.keys)+len(got.clients)+len(got.deleted)+len(got.users)+len(got.families)+len(got.tokens)+len(got.revoked) != 0 {
		t.Fatalf("a dry run wrote: %+v", got)
	}
	allAre(t, restoreAll(t, s, b, storage.Restore{Now: now}), storage.Created)
	sameBackup(t, exported(t, s, now), b)
	allAre(t, restoreAll(t, s, b, storage.Restore{Now: now}), storage.Unchanged)
	allAre(t, restoreAll(t, s, b, storage.Restore{Now: now, DryRun: true}), storage.Unchanged)

	// The records work as the originals did.
	if u, err := s.GetUserByUsername(ctx, "alice"); err != nil || u.ID != "u1" {
		t.Errorf("restored user by username: %+v %v", u, err)
	}
	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "gone", CreatedAt: now}))
	if c, _ := s.GetClient(ctx, "gone"); !c.NotBefore.Equal(now.Add(-time.Hour)) {
		t.Errorf("a client created under a restored deleted id: NotBefore %s, want %s", c.NotBefore, now.Add(-time.Hour))
	}
	r := rotation("f1", "h0", "h9", now, 5*time.Second)
	if got, err := s.RotateRefreshToken(ctx, r); err != nil || got.Fresh || string(got.Sealed) != "sealed-h1" {
		t.Errorf("the used token within its grace: %+v %v, want its stored successor", got, err)
	}
	r = rotation("f1", "h1", "h2", now, 5*time.Second)
	if got, err := s.RotateRefreshToken(ctx, r); err != nil || !got.Fresh {
		t.Errorf("the unused token: %+v %v, want a fresh rotation", got, err)
	}
	_, err := s.RotateRefreshToken(ctx, rotation("f2", "h0", "h1", now, 5*time.Second))
	wantErr(t, err, storage.ErrRevoked)
	if !familyRevoked(t, s, "f2", now) || familyRevoked(t, s, "f1", now) {
		t.Error("restored families: f2 must be revoked, f1 live")
	}
	st, err := s.TokenState(ctx, storage.TokenQuery{ClientID: "client", JTI: "jti-1", PersonalTokenID: "p1", UserID: "u1", Now: now})
	mustNoErr(t, err)
	if !st.Revoked || st.User == nil {
		t.Errorf("restored deny-list entry: %+v, want revoked with its user", st)
	}
	st, err = s.TokenState(ctx, storage.TokenQuery{ClientID: "client", JTI: "jti-2", PersonalTokenID: "p1", Now: now})
	mustNoErr(t, err)
	if st.Revoked {
		t.Error("a restored personal token is reported revoked")
	}
}

// testExportReadsWhatTheStoreDid: records written the ordinary way are read back as a backup
// needs them: rotation state, revocations, deletion notes, last uses, and nothing expired.
func testExportReadsWhatTheStoreDid(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "client", SecretHash: []byte("d"), CreatedAt: now}))
	mustNoErr(t, s.CreateClient(ctx, storage.Client{ID: "old", CreatedAt: now}))
	mustNoErr(t, s.DeleteClient(ctx, "old", now))
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}))
	mustNoErr(t, s.CreateUser(ctx, storage.User{ID: "u2", Username: "bob"}))
	mustNoErr(t, s.CreatePersonalToken(ctx, pat("p1", "u1", now)))
	mustNoErr(t, s.CreatePersonalToken(ctx, pat("p2", "u1", now)))
	mustNoErr(t, s.TouchPersonalTokens(ctx, map[string]time.Time{"p1": now.Add(time.Minute)}))
	_, _, err := s.EnsureSigningKey(ctx, key("k0", now))
	mustNoErr(t, err)
	_, err = s.RotateSigningKey(ctx, key("k1", now), now, time.Hour)
	mustNoErr(t, err)
	newFamily(t, s, "f1", now)
	_, err = s.RotateRefreshToken(ctx, rotation("f1", "h0", "h1", now, time.Second))
	mustNoErr(t, err)
	newFamily(t, s, "f2", now)
	mustNoErr(t, s.RevokeFamily(ctx, "f2", now))
	// Expired at now: a family whose tokens and access tokens have all lapsed.
	mustNoErr(t, s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: "h0", FamilyID: "old", ClientID: "client",
		AccessTTL: time.Minute, IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}))
	mustNoErr(t, s.RevokeAccessToken(ctx, storage.AccessRevocation{Pool: storage.Pool{ClientID: "client"}, JTI: "j1", ExpiresAt: now.Add(time.Hour), Now: now}))

	b := exported(t, s, now)
	if len(b.clients) != 1 || b.clients[0].ID != "client" || string(b.clients[0].SecretHash) != "d" {
		t.Errorf("clients: %+v", b.clients)
	}
	if len(b.deleted) != 1 || b.deleted[0].ID != "old" || !b.deleted[0].DeletedAt.Equal(now) {
		t.Errorf("deleted clients: %+v, want old at %s", b.deleted, now)
	}
	if len(b.users) != 2 || len(b.pats) != 2 {
		t.Errorf("users %+v with personal tokens %+v, want 2 and 2", b.users, b.pats)
	}
	for _, p := range b.pats {
		if p.ID == "p1" && !p.LastUsedAt.Equal(now.Add(time.Minute)) {
			t.Errorf("p1 last used %s, want %s", p.LastUsedAt, now.Add(time.Minute))
		}
	}
	if len(b.keys) != 2 {
		t.Errorf("signing keys: %+v", b.keys)
	}
	for _, k := range b.keys {
		if k.ID == "k0" && !k.RetiredAt.Equal(now) {
			t.Errorf("the rotated key reads back unretired: %+v", k)
		}
	}
	fams := map[string]storage.RefreshFamily{}
	for _, f := range b.families {
		fams[f.ID] = f
	}
	if len(fams) != 2 || fams["f1"].Revoked || !fams["f2"].Revoked || fams["f1"].ClientID != "client" || !fams["f1"].ExpiresAt.After(now) {
		t.Errorf("families: %+v, want f1 live and f2 revoked (not the lapsed one)", b.families)
	}
	toks := map[string]storage.RefreshToken{}
	for _, tok := range b.tokens {
		toks[tok.FamilyID+"/"+tok.Hash] = tok
	}
	if used := toks["f1/h0"]; len(toks) != 3 || used.UsedAt.IsZero() || string(used.Successor) != "sealed-h1" || !toks["f1/h1"].UsedAt.IsZero() {
		t.Errorf("refresh tokens: %+v, want f1/h0 used with its successor, f1/h1 and f2/h0", b.tokens)
	}
	if len(b.revoked) != 1 || b.revoked[0].ClientID != "client" || b.revoked[0].JTI != "j1" ||
		b.revoked[0].ExpiresAt.Before(now.Add(time.Hour-time.Minute)) || b.revoked[0].ExpiresAt.After(now.Add(time.Hour+time.Minute)) {
		t.Errorf("revoked access tokens: %+v, want j1 of client until about %s", b.revoked, now.Add(time.Hour))
	}
}

// testRestoreMerges: a restore replaces what the store holds, except that it never makes a
// used token unused, a revoked family live, a retired key sign again or a last use earlier;
// a dry run reports an update without making it; expired records are not written; a record
// that would take another's name or token is refused and writes nothing.
func testRestoreMerges(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := sampleBackup(now)
	restoreAll(t, s, b, storage.Restore{Now: now})
	restore := func(what string, want storage.Outcome, dry bool, fn func(r storage.Restore) (storage.Outcome, error)) {
		t.Helper()
		got, err := fn(storage.Restore{Now: now, DryRun: dry})
		if err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", what, got, err, want)
		}
	}

	// One-way state stays.
	unused := b.tokens[0]
	unused.UsedAt, unused.Successor = time.Time{}, nil
	restore("an unused copy of a used token", storage.Unchanged, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreRefreshToken(ctx, unused, r)
	})
	if tok, _ := s.GetRefreshToken(ctx, "f1", "h0"); tok.UsedAt.IsZero() {
		t.Error("restoring an unused copy made a used token unused")
	}
	live := b.families[1]
	live.Revoked = false
	restore("a live copy of a revoked family", storage.Unchanged, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreRefreshFamily(ctx, live, r)
	})
	if !familyRevoked(t, s, "f2", now) {
		t.Error("restoring a live copy revoked family f2 back to life")
	}
	signing := b.keys[0]
	signing.RetiredAt, signing.RemoveAt = time.Time{}, time.Time{}
	restore("an unretired copy of a retired key", storage.Unchanged, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreSigningKey(ctx, signing, r)
	})
	earlier := b.pats[0]
	earlier.LastUsedAt = now.Add(-time.Hour)
	restore("a personal token used earlier", storage.Unchanged, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestorePersonalToken(ctx, earlier, r)
	})
	restore("an earlier deletion", storage.Unchanged, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreDeletedClient(ctx, storage.DeletedClient{ID: "gone", DeletedAt: now.Add(-2 * time.Hour)}, r)
	})

	// The rest is the backup's: a dry run reports the update, a restore makes it.
	renamed := b.clients[0]
	renamed.Name, renamed.SecretHash = "renamed", []byte("older digest")
	for _, dry := range []bool{true, false} {
		restore(fmt.Sprintf("a changed client (dry run %v)", dry), storage.Updated, dry, func(r storage.Restore) (storage.Outcome, error) {
			return s.RestoreClient(ctx, renamed, r)
		})
		if c, _ := s.GetClient(ctx, "client"); (c.Name == "renamed") == dry {
			t.Errorf("after a restore (dry run %v) the client is named %q", dry, c.Name)
		}
	}
	used := b.tokens[1]
	used.UsedAt, used.Successor = now, []byte("sealed-h2")
	restore("a used copy of an unused token", storage.Updated, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreRefreshToken(ctx, used, r)
	})
	if tok, _ := s.GetRefreshToken(ctx, "f1", "h1"); string(tok.Successor) != "sealed-h2" {
		t.Errorf("the token restored as used: %+v", tok)
	}
	longer := b.tokens[1]
	longer.Hash, longer.ExpiresAt = "h8", now.Add(48*time.Hour)
	restore("a token that outlives its family", storage.Created, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreRefreshToken(ctx, longer, r)
	})
	if familyRevoked(t, s, "f1", now.Add(47*time.Hour)) {
		t.Error("a token that outlives its family did not make the family last as long")
	}
	intoRevoked := b.tokens[2]
	intoRevoked.Hash = "h9"
	restore("a token of a revoked family", storage.Created, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreRefreshToken(ctx, intoRevoked, r)
	})
	if !familyRevoked(t, s, "f2", now) {
		t.Error("a token restored into a revoked family made it live")
	}
	orphan := storage.RefreshToken{Hash: "h0", FamilyID: "f9", ClientID: "client", AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	restore("a token whose family the store lacks", storage.Created, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreRefreshToken(ctx, orphan, r)
	})
	if familyRevoked(t, s, "f9", now) {
		t.Error("a token restored without its family has no live family")
	}
	if _, err := s.RotateRefreshToken(ctx, rotation("f9", "h0", "h1", now, 0)); err != nil {
		t.Errorf("rotating a token restored without its family: %v", err)
	}
	renamedUser := b.users[0]
	renamedUser.Username = "Carol"
	restore("a user under a new username", storage.Updated, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreUser(ctx, renamedUser, r)
	})
	if u, err := s.GetUserByUsername(ctx, "carol"); err != nil || u.ID != "u1" {
		t.Errorf("the new username: %+v %v", u, err)
	}
	if _, err := s.GetUserByUsername(ctx, "alice"); err == nil {
		t.Error("the old username still finds the user")
	}

	// Expired records are not written.
	lapsed := storage.RefreshToken{Hash: "x", FamilyID: "f8", ClientID: "client", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	restore("an expired token", storage.Expired, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreRefreshToken(ctx, lapsed, r)
	})
	restore("an expired family", storage.Expired, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreRefreshFamily(ctx, storage.RefreshFamily{ID: "f8", ClientID: "client", ExpiresAt: now}, r)
	})
	restore("an expired revocation", storage.Expired, false, func(r storage.Restore) (storage.Outcome, error) {
		return s.RestoreRevokedAccessToken(ctx, storage.RevokedAccessToken{ClientID: "client", JTI: "old", ExpiresAt: now.Add(-time.Second)}, r)
	})
	if _, err := s.GetRefreshToken(ctx, "f8", "x"); err == nil {
		t.Error("an expired token was written")
	}

	// Refusals: nothing is written.
	for _, dry := range []bool{true, false} {
		_, err := s.RestoreUser(ctx, storage.User{ID: "u3", Username: "BOB"}, storage.Restore{Now: now, DryRun: dry})
		wantErr(t, err, storage.ErrAlreadyExists)
		_, err = s.RestorePersonalToken(ctx, pat("p1", "u2", now), storage.Restore{Now: now, DryRun: dry})
		wantErr(t, err, storage.ErrAlreadyExists)
		_, err = s.RestoreRefreshFamily(ctx, storage.RefreshFamily{ID: "f1", ClientID: "other", ExpiresAt: now.Add(time.Hour)}, storage.Restore{Now: now, DryRun: dry})
		wantErr(t, err, storage.ErrAlreadyExists)
		foreign := b.tokens[1]
		foreign.ClientID = "other"
		_, err = s.RestoreRefreshToken(ctx, foreign, storage.Restore{Now: now, DryRun: dry})
		wantErr(t, err, storage.ErrAlreadyExists)
		_, err = s.RestorePersonalToken(ctx, pat("p9", "nobody", now), storage.Restore{Now: now, DryRun: dry})
		wantErr(t, err, storage.ErrNotFound)
	}
	if _, err := s.GetUser(ctx, "u3"); err == nil {
		t.Error("a user whose username is taken was written")
	}
	if p, _ := s.GetPersonalToken(ctx, "p1"); p.UserID != "u1" {
		t.Errorf("personal token p1 moved to %s", p.UserID)
	}
	if tok, _ := s.GetRefreshToken(ctx, "f1", "h1"); tok.ClientID != "client" {
		t.Errorf("a refresh token moved to client %s", tok.ClientID)
	}
}

// testExportWhileWriting: walking a store that is written meanwhile reads every record that
// was there before the walk and the whole of every record it reads.
func testExportWhileWriting(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC()
	const before = 300
	for i := range before {
		newFamily(t, s, fmt.Sprintf("f%d", i), now)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			fam := fmt.Sprintf("new%d", i)
			if err := s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: "h0", FamilyID: fam, ClientID: "client",
				AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Error(err)
				return
			}
			if i%3 == 0 {
				_ = s.RevokeFamily(ctx, fam, now)
			}
		}
	})
	seen := map[string]bool{}
	err := s.EachRefreshFamily(ctx, now, func(f storage.RefreshFamily) error {
		if f.ClientID != "client" || f.ExpiresAt.IsZero() {
			return fmt.Errorf("family %s read partly: %+v", f.ID, f)
		}
		seen[f.ID] = true
		return nil
	})
	tokens := 0
	terr := s.EachRefreshToken(ctx, now, func(tok storage.RefreshToken) error {
		if tok.ClientID != "client" || tok.Hash != "h0" {
			return fmt.Errorf("token of %s read partly: %+v", tok.FamilyID, tok)
		}
		tokens++
		return nil
	})
	close(stop)
	wg.Wait()
	mustNoErr(t, err)
	mustNoErr(t, terr)
	for i := range before {
		if !seen[fmt.Sprintf("f%d", i)] {
			t.Fatalf("family f%d, there before the walk, was not read", i)
		}
	}
	if tokens < before {
		t.Fatalf("read %d refresh tokens, want at least the %d there before the walk", tokens, before)
	}
}

// testRestoredRevocationsLeavePools: a family or an access token revoked by a restore is
// never handed out again by a reuse pool, as if it had been revoked in the store.
func testRestoredRevocationsLeavePools(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	fam := storage.RefreshFamily{ID: "f1", ClientID: "client", ExpiresAt: now.Add(2 * time.Hour)}
	_, err := s.RestoreRefreshFamily(ctx, fam, storage.Restore{Now: now})
	mustNoErr(t, err)
	for _, tc := range []struct {
		name, jti, family string
		revoke            func() (storage.Outcome, error)
	}{
		{"family", "f1-jti", "f1", func() (storage.Outcome, error) {
			fam.Revoked = true
			return s.RestoreRefreshFamily(ctx, fam, storage.Restore{Now: now})
		}},
		{"access token", "j2", "", func() (storage.Outcome, error) {
			return s.RestoreRevokedAccessToken(ctx, storage.RevokedAccessToken{ClientID: "client", JTI: "j2", ExpiresAt: now.Add(time.Hour)}, storage.Restore{Now: now})
		}},
	} {
		a := admission(now, 1, "r-"+tc.jti)
		a.Pool.ClientID, a.Pool.Subject = "client", tc.name
		if got, _ := s.Admit(ctx, a); !got.Allowed {
			t.Fatal(got)
		}
		tok := pooled(tc.jti, now, time.Hour)
		tok.Family = tc.family
		mustNoErr(t, s.Settle(ctx, storage.Settlement{Admission: a, Token: tok}))
		if out, err := tc.revoke(); err != nil || out == storage.Unchanged {
			t.Fatalf("restoring the revoked %s: %s %v", tc.name, out, err)
		}
		next := a
		next.Reservation = "next-" + tc.jti
		got, err := s.Admit(ctx, next)
		mustNoErr(t, err)
		if got.Reused != nil || !got.Allowed {
			t.Errorf("after a restore revoked its %s: %+v, want a new issuance", tc.name, got)
		}
	}
}

// testRestoreBesideCurrentToken: an unused token restored into a family that holds another
// unused one (a backup taken at another point of the family's life) leaves both usable: each
// rotates once, neither rotation loses the other token or its successor, and an export reads
// all four.
func testRestoreBesideCurrentToken(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	newFamily(t, s, "f1", now)
	beside := storage.RefreshToken{Hash: "h5", FamilyID: "f1", ClientID: "client", Subject: "user", Scope: "a",
		AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	out, err := s.RestoreRefreshToken(ctx, beside, storage.Restore{Now: now})
	if err != nil || out != storage.Created {
		t.Fatalf("restoring a second unused token into a family: %s %v, want created", out, err)
	}
	for _, r := range []storage.Rotation{rotation("f1", "h5", "h6", now, 0), rotation("f1", "h0", "h1", now, 0)} {
		got, err := s.RotateRefreshToken(ctx, r)
		if err != nil || !got.Fresh {
			t.Fatalf("rotating %s: %+v %v, want a fresh rotation", r.Hash, got, err)
		}
	}
	for hash, used := range map[string]bool{"h0": true, "h5": true, "h1": false, "h6": false} {
		tok, err := s.GetRefreshToken(ctx, "f1", hash)
		if err != nil || tok.UsedAt.IsZero() != !used || tok.Subject != "user" {
			t.Errorf("token %s: %+v %v, want it there and used %v", hash, tok, err, used)
		}
	}
	seen := map[string]bool{}
	mustNoErr(t, s.EachRefreshToken(ctx, now, func(tok storage.RefreshToken) error { seen[tok.Hash] = true; return nil }))
	if len(seen) != 4 {
		t.Errorf("export read %v, want h0, h1, h5 and h6", seen)
	}
	for _, hash := range []string{"h1", "h6"} {
		if got, err := s.RotateRefreshToken(ctx, rotation("f1", hash, hash+"-next", now, 0)); err != nil || !got.Fresh {
			t.Errorf("rotating %s in turn: %+v %v", hash, got, err)
		}
	}
}
