package backup

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
	"github.com/tokensmith/tokensmith/storage/embedded"
)

func memStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testKey is a signing key with a real private key in it (an EC one: quick to make; the
// backup does not care which kind).
func testKey(t *testing.T, id string, now time.Time) storage.SigningKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	must(t, err)
	return storage.SigningKey{ID: id, PrivatePEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), CreatedAt: now}
}

// populated is a store holding every kind of record, written the ordinary way.
func populated(t *testing.T, now time.Time) *embedded.Store {
	t.Helper()
	ctx := context.Background()
	s := memStore(t)
	_, _, err := s.EnsureSigningKey(ctx, testKey(t, "k0", now))
	must(t, err)
	_, err = s.RotateSigningKey(ctx, testKey(t, "k1", now), now, time.Hour)
	must(t, err)
	must(t, s.CreateClient(ctx, storage.Client{ID: "billing", Name: "Billing <&>", SecretHash: []byte("digest"), GrantTypes: []string{"password"}, CreatedAt: now,
		FederatedIdentities: []storage.FederatedIdentity{{Issuer: "https://kubernetes.default.svc.cluster.local", Subject: "system:serviceaccount:prod:*"}}}))
	must(t, s.CreateClient(ctx, storage.Client{ID: "old", CreatedAt: now}))
	must(t, s.DeleteClient(ctx, "old", now))
	must(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice", PasswordHash: []byte("bcrypt"), CreatedAt: now}))
	must(t, s.CreateUser(ctx, storage.User{ID: "u2", Username: "bob", PasswordHash: []byte("bcrypt"), CreatedAt: now}))
	for _, id := range []string{"p1", "p2"} {
		must(t, s.CreatePersonalToken(ctx, storage.PersonalToken{ID: id, UserID: "u1", Name: id, Hash: []byte("h-" + id), CreatedAt: now}))
	}
	rt := storage.RefreshToken{Hash: "h0", FamilyID: "f1", ClientID: "billing", Subject: "u1", AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	must(t, s.CreateRefreshToken(ctx, rt))
	next := rt
	next.Hash = "h1"
	_, err = s.RotateRefreshToken(ctx, storage.Rotation{FamilyID: "f1", Hash: "h0", ClientID: "billing", Now: now, Next: next, Sealed: []byte("sealed")})
	must(t, err)
	rt.FamilyID = "f2"
	must(t, s.CreateRefreshToken(ctx, rt))
	must(t, s.RevokeFamily(ctx, "f2", now))
	must(t, s.RevokeAccessToken(ctx, storage.AccessRevocation{Pool: storage.Pool{ClientID: "billing"}, JTI: "j1", ExpiresAt: now.Add(time.Hour), Now: now}))
	must(t, s.CreateTrustedIssuer(ctx, storage.TrustedIssuer{ID: "ti1", Issuer: "https://kubernetes.default.svc.cluster.local", Audiences: []string{"tokensmith"}, CreatedAt: now}))
	return s
}

// wantCounts is what populated holds.
var wantCounts = Counts{SigningKeys: 2, Clients: 1, DeletedClients: 1, Users: 2, PersonalTokens: 2,
	RefreshFamilies: 2, RefreshTokens: 3, RevokedAccessTokens: 1, TrustedIssuers: 1}

func export(t *testing.T, s Store, now time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	counts, err := Export(context.Background(), s, &buf, ExportOptions{Now: now, Tokensmith: "test"})
	must(t, err)
	for _, k := range Kinds {
		if counts[k] != wantCounts[k] {
			t.Errorf("exported %d %s, want %d", counts[k], k, wantCounts[k])
		}
	}
	return buf.Bytes()
}

// only reports whether every kind's outcomes are all out, and as many as wantCounts says.
func only(t *testing.T, r Report, out storage.Outcome) {
	t.Helper()
	for _, k := range Kinds {
		for o, n := range r.Outcomes[k] {
			if o != out && n > 0 {
				t.Errorf("%s: %d %s, want all %s", k, n, o, out)
			}
		}
		if got := r.Outcomes[k][out]; got != wantCounts[k] {
			t.Errorf("%s: %d %s, want %d", k, got, out, wantCounts[k])
		}
	}
}

// empty fails unless s holds no record a backup carries.
func empty(t *testing.T, s Store) {
	t.Helper()
	var buf bytes.Buffer
	counts, err := Export(context.Background(), s, &buf, ExportOptions{})
	must(t, err)
	for k, n := range counts {
		if n != 0 {
			t.Errorf("the store holds %d %s, want none", n, k)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC()
	doc := export(t, populated(t, now), now)
	if !json.Valid(doc) {
		t.Fatalf("the document is not one JSON value:\n%s", doc)
	}
	var top map[string]json.RawMessage
	must(t, json.Unmarshal(doc, &top))
	if string(top["format"]) != `"tokensmith-backup"` || string(top["version"]) != "1" || top["end"] == nil {
		t.Fatalf("header or end missing: %s", doc[:200])
	}
	if bytes.Contains(doc, []byte("sealed")) && !bytes.Contains(doc, []byte(`"successor":"c2VhbGVk"`)) {
		t.Fatal("the successor is not carried as the store keeps it")
	}

	target := memStore(t)
	dry, err := Import(ctx, target, bytes.NewReader(doc), ImportOptions{DryRun: true})
	must(t, err)
	only(t, dry, storage.Created)
	empty(t, target)

	progress := &Progress{}
	first, err := Import(ctx, target, bytes.NewReader(doc), ImportOptions{Progress: progress})
	must(t, err)
	only(t, first, storage.Created)
	if first.Header.Tokensmith != "test" || first.Header.Version != 1 {
		t.Errorf("header %+v", first.Header)
	}
	if stage, _, n := progress.Status(); stage != "writing" || n != 2*13 { // 13 records (the tokens are in their users'), read twice
		t.Errorf("progress %s %d, want writing 26", stage, n)
	}
	second, err := Import(ctx, target, bytes.NewReader(doc), ImportOptions{})
	must(t, err)
	only(t, second, storage.Unchanged)
	// The federated identities came along, and the target finds their client by them.
	if ids, err := target.ClientsByFederatedIdentity(ctx, "https://kubernetes.default.svc.cluster.local", "system:serviceaccount:prod:billing"); err != nil ||
		len(ids) != 1 || ids[0] != "billing" {
		t.Errorf("the imported client's federated identity finds %v, %v", ids, err)
	}

	// The target exports the same document, but for its time.
	again := export(t, target, now)
	if !bytes.Equal(dropLine(doc, 0), dropLine(again, 0)) {
		t.Errorf("the imported store exports another document:\n%s\nwant\n%s", again, doc)
	}
}

// dropLine returns doc without its line n.
func dropLine(doc []byte, n int) []byte {
	lines := bytes.Split(doc, []byte("\n"))
	return bytes.Join(append(lines[:n:n], lines[n+1:]...), []byte("\n"))
}

// TestBrokenDocuments: a document cut short anywhere, changed anywhere, from a newer build or
// not a backup at all is refused with a clear error, and nothing is written.
func TestBrokenDocuments(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	doc := export(t, populated(t, now), now)
	target := memStore(t)
	refused := func(t *testing.T, doc []byte, want string) {
		t.Helper()
		_, err := Import(context.Background(), target, bytes.NewReader(doc), ImportOptions{})
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want a format error saying %q", err, want)
		}
	}
	t.Run("cut short anywhere", func(t *testing.T) {
		for n := 0; n < len(doc)-1; n++ {
			_, err := Import(context.Background(), target, bytes.NewReader(doc[:n]), ImportOptions{})
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("cut at byte %d of %d: %v, want a format error", n, len(doc), err)
			}
		}
		refused(t, doc[:len(doc)/2], "cut short")
	})
	t.Run("a record changed", func(t *testing.T) {
		refused(t, bytes.Replace(doc, []byte(`"name":"Billing`), []byte(`"name":"Xilling`), 1), "do not match its SHA-256 digest")
		refused(t, bytes.Replace(doc, []byte(`"secret_hash":"ZGlnZXN0"`), []byte(`"secret_hash":"ZGlnZXNU"`), 1), "do not match its SHA-256 digest")
	})
	t.Run("a record dropped", func(t *testing.T) {
		i := bytes.Index(doc, []byte(`{"client_id":"billing","jti":"j1"`))
		j := i + bytes.IndexByte(doc[i:], '\n')
		refused(t, append(append([]byte{}, doc[:i-1]...), doc[j:]...), "where its end says 13")
	})
	t.Run("a record moved to another section", func(t *testing.T) {
		// Strict decoding refuses the deletion note as a client (the digest, which covers
		// each record's section, would too).
		i := bytes.Index(doc, []byte("\"deleted_clients\":[\n")) + len("\"deleted_clients\":[\n")
		j := i + bytes.IndexByte(doc[i:], '\n')
		note := doc[i:j]
		moved := bytes.Replace(doc, append([]byte("\"deleted_clients\":[\n"), append(note, '\n')...), []byte("\"deleted_clients\":["), 1)
		moved = bytes.Replace(moved, []byte("\"clients\":[\n"), append(append([]byte("\"clients\":[\n"), note...), []byte(",\n")...), 1)
		if !json.Valid(moved) || bytes.Count(moved, note) != 1 {
			t.Fatalf("the test did not move the record:\n%s", moved)
		}
		refused(t, moved, `clients, record 1: invalid record: json: unknown field "deleted_at"`)
	})
	t.Run("more after the end", func(t *testing.T) {
		refused(t, append(append([]byte{}, doc...), []byte(`{"format":"tokensmith-backup"}`)...), "goes on after its end")
	})
	t.Run("newer version", func(t *testing.T) {
		refused(t, bytes.Replace(doc, []byte(`"version":1`), []byte(`"version":2`), 1), "written by a newer tokensmith")
	})
	t.Run("not a backup", func(t *testing.T) {
		refused(t, []byte(`{"clients":[]}`), "not a tokensmith backup")
		refused(t, []byte(`{"format":"other","version":1}`), "not a tokensmith backup")
		refused(t, []byte(`[1,2]`), "not a tokensmith backup")
		refused(t, []byte("clients: []\n"), "not valid JSON")
		refused(t, nil, "the document is empty")
	})
	empty(t, target)
}

// build writes a document of the given sections (in order) the way Export does.
func build(t *testing.T, secs []string, records map[string][]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newWriter(&buf, Header{Format: Format, Version: Version, ExportedAt: time.Now().UTC(), Tokensmith: "next"})
	must(t, err)
	for _, name := range secs {
		must(t, w.open(name))
		for _, r := range records[name] {
			must(t, w.record(r))
		}
		must(t, w.close())
	}
	must(t, w.finish())
	return buf.Bytes()
}

// TestWhatThisBuildDoesNotKnow: a section or field a later build added is refused when it
// holds something (restoring without it would lose it), accepted when it holds nothing.
func TestWhatThisBuildDoesNotKnow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := map[string]any{"id": "c1", "secret_hash": "ZA==", "grant_types": []string{"client_credentials"}, "created_at": time.Now(), "updated_at": time.Now()}
	withField := map[string]any{}
	for k, v := range client {
		withField[k] = v
	}
	withField["dpop_bound"] = true
	for _, tc := range []struct {
		name    string
		secs    []string
		records map[string][]any
		want    string // "" for accepted
	}{
		{"an empty unknown section", []string{Clients, "future_records"}, map[string][]any{Clients: {client}}, ""},
		{"an unknown section with records", []string{"future_records"}, map[string][]any{"future_records": {map[string]any{"issuer": "https://x"}}},
			`section "future_records" holds records this build of tokensmith does not know how to restore (the document was written by tokensmith next)`},
		{"an unknown field", []string{Clients}, map[string][]any{Clients: {withField}}, `unknown field "dpop_bound"`},
		{"a record without its id", []string{Clients}, map[string][]any{Clients: {map[string]any{"name": "x"}}}, "id is empty"},
		{"a personal token of another user", []string{Users}, map[string][]any{Users: {map[string]any{"id": "u1", "username": "a",
			"personal_tokens": []any{map[string]any{"id": "p1", "user_id": "u2", "hash": "aA=="}}}}}, `belongs to user "u2"`},
		{"a signing key that is not one", []string{SigningKeys}, map[string][]any{SigningKeys: {map[string]any{"id": "k", "private_pem": "cGVt"}}}, "private_pem is not PEM"},
		{"a section that is not a list", nil, nil, `"clients" is not a section of records`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := build(t, tc.secs, tc.records)
			if tc.secs == nil {
				doc = bytes.Replace(doc, []byte(`,"exported_at"`), []byte(`,"clients":{},"exported_at"`), 1)
			}
			target := memStore(t)
			rep, err := Import(ctx, target, bytes.NewReader(doc), ImportOptions{})
			if tc.want == "" {
				must(t, err)
				if rep.Outcomes[Clients][storage.Created] != 1 {
					t.Errorf("outcomes %+v", rep.Outcomes)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			empty(t, target)
		})
	}
}

// TestConflictsWriteNothing: a document whose records would take what belongs to another
// record of the store is refused before anything is written, naming the records.
func TestConflictsWriteNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC()
	doc := export(t, populated(t, now), now)
	target := memStore(t)
	must(t, target.CreateUser(ctx, storage.User{ID: "someone-else", Username: "ALICE"}))
	must(t, target.CreateRefreshToken(ctx, storage.RefreshToken{Hash: "x", FamilyID: "f1", ClientID: "other", AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}))
	_, err := Import(ctx, target, bytes.NewReader(doc), ImportOptions{})
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a conflict", err)
	}
	for _, want := range []string{"4 records of the document conflict", `username "alice" belongs to user someone-else`, "refresh family f1 belongs to client other", "nothing was written"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := target.GetClient(ctx, "billing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a client was written despite the conflicts: %v", err)
	}
}

// failingStore fails the nth write.
type failingStore struct {
	*embedded.Store
	n int
}

func (f *failingStore) RestoreClient(ctx context.Context, c storage.Client, r storage.Restore) (storage.Outcome, error) {
	if !r.DryRun {
		if f.n--; f.n == 0 {
			return 0, fmt.Errorf("%w: the store went away", storage.ErrUnavailable)
		}
	}
	return f.Store.RestoreClient(ctx, c, r)
}

// TestInterruptedImportFinishes: an import that fails while writing says so, and running it
// again finishes it.
func TestInterruptedImportFinishes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC()
	doc := export(t, populated(t, now), now)
	target := &failingStore{Store: memStore(t), n: 1}
	_, err := Import(ctx, target, bytes.NewReader(doc), ImportOptions{})
	var pe *PartialError
	if !errors.As(err, &pe) || !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), "run the import again") {
		t.Fatalf("error %v, want a partial import that says to run it again", err)
	}
	rep, err := Import(ctx, target, bytes.NewReader(doc), ImportOptions{})
	must(t, err)
	if rep.Outcomes[SigningKeys][storage.Unchanged] != 2 || rep.Outcomes[Clients][storage.Created] != 1 {
		t.Errorf("the second run: %+v, want the keys unchanged and the client created", rep.Outcomes)
	}
}

// TestExtraKeysWarned: importing into a store that already made keys of its own says what
// that means.
func TestExtraKeysWarned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC()
	doc := export(t, populated(t, now), now)
	target := memStore(t)
	_, _, err := target.EnsureSigningKey(ctx, testKey(t, "own", now))
	must(t, err)
	rep, err := Import(ctx, target, bytes.NewReader(doc), ImportOptions{DryRun: true})
	must(t, err)
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "holds 1 signing keys the document does not") {
		t.Errorf("warnings %q", rep.Warnings)
	}
}
