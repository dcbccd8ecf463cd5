package backup

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// Store is what export and import use of the store.
type Store interface {
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	EachClient(ctx context.Context, fn func(storage.Client) error) error
	EachDeletedClient(ctx context.Context, fn func(storage.DeletedClient) error) error
	EachUser(ctx context.Context, fn func(storage.User, []storage.PersonalToken) error) error
	EachRefreshFamily(ctx context.Context, now time.Time, fn func(storage.RefreshFamily) error) error
	EachRefreshToken(ctx context.Context, now time.Time, fn func(storage.RefreshToken) error) error
	EachRevokedAccessToken(ctx context.Context, now time.Time, fn func(storage.RevokedAccessToken) error) error

	RestoreSigningKey(ctx context.Context, k storage.SigningKey, r storage.Restore) (storage.Outcome, error)
	RestoreClient(ctx context.Context, c storage.Client, r storage.Restore) (storage.Outcome, error)
	RestoreDeletedClient(ctx context.Context, d storage.DeletedClient, r storage.Restore) (storage.Outcome, error)
	RestoreUser(ctx context.Context, u storage.User, r storage.Restore) (storage.Outcome, error)
	RestorePersonalToken(ctx context.Context, t storage.PersonalToken, r storage.Restore) (storage.Outcome, error)
	RestoreRefreshFamily(ctx context.Context, f storage.RefreshFamily, r storage.Restore) (storage.Outcome, error)
	RestoreRefreshToken(ctx context.Context, t storage.RefreshToken, r storage.Restore) (storage.Outcome, error)
	RestoreRevokedAccessToken(ctx context.Context, t storage.RevokedAccessToken, r storage.Restore) (storage.Outcome, error)

	ListTrustedIssuers(ctx context.Context) ([]storage.TrustedIssuer, error)
	RestoreTrustedIssuer(ctx context.Context, ti storage.TrustedIssuer, r storage.Restore) (storage.Outcome, error)

	// Publish tells running replicas (on a shared store) to drop what they cached of a
	// record an import changed.
	Publish(ctx context.Context, c storage.Change) error
}

// Kinds of record, as the document's sections and the import report name them.
const (
	SigningKeys         = "signing_keys"
	Clients             = "clients"
	DeletedClients      = "deleted_clients"
	Users               = "users"
	PersonalTokens      = "personal_tokens" // inside users: a user's record carries its tokens
	RefreshFamilies     = "refresh_families"
	RefreshTokens       = "refresh_tokens"
	RevokedAccessTokens = "revoked_access_tokens"
	TrustedIssuers      = "trusted_issuers"
)

// Kinds lists every kind in the order the report shows them.
var Kinds = []string{SigningKeys, Clients, DeletedClients, Users, PersonalTokens, RefreshFamilies, RefreshTokens, RevokedAccessTokens, TrustedIssuers}

// userRecord is a user with its personal tokens: a token cannot be restored without its user,
// so they travel together.
type userRecord struct {
	storage.User
	PersonalTokens []storage.PersonalToken `json:"personal_tokens,omitempty"`
}

// restorer restores one record and reports the outcome of each record it wrote (a user and
// its tokens are several).
type restorer struct {
	ctx    context.Context
	store  Store
	dryRun bool
	now    func() time.Time
	tally  func(kind string, out storage.Outcome)
	// changed is called with the change feed's name of every record written.
	changed func(storage.Change)
}

func (r *restorer) opts() storage.Restore { return storage.Restore{Now: r.now(), DryRun: r.dryRun} }

// done records an outcome, and the change to announce when a record was written.
func (r *restorer) done(kind string, out storage.Outcome, change storage.Change) {
	r.tally(kind, out)
	if !r.dryRun && (out == storage.Created || out == storage.Updated) && change.Kind != "" {
		r.changed(change)
	}
}

// section is one array of the document: one kind of record, how to read it from a store and
// how to restore one. Adding a kind of record is adding a section (and its store methods); an
// earlier build refuses a document whose new section holds records, so the version stays.
type section struct {
	name    string
	export  func(ctx context.Context, s Store, now time.Time, emit func(any) error) error
	restore func(r *restorer, raw json.RawMessage) error
}

// sections in the order they are written. Import does not depend on the order: a restore
// merges rather than overwrites what only happens once (see storage.MergeRefreshFamily).
var sections = []section{
	{SigningKeys,
		func(ctx context.Context, s Store, _ time.Time, emit func(any) error) error {
			keys, err := s.ListSigningKeys(ctx)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := emit(k); err != nil {
					return err
				}
			}
			return nil
		},
		func(r *restorer, raw json.RawMessage) error {
			k, err := decodeRecord[storage.SigningKey](raw, checkKey)
			if err != nil {
				return err
			}
			out, err := r.store.RestoreSigningKey(r.ctx, k, r.opts())
			if err != nil {
				return fmt.Errorf("signing key %s: %w", k.ID, err)
			}
			r.done(SigningKeys, out, storage.Change{Kind: storage.ChangeSigningKeys})
			return nil
		}},
	{Clients,
		func(ctx context.Context, s Store, _ time.Time, emit func(any) error) error {
			return s.EachClient(ctx, func(c storage.Client) error { return emit(c) })
		},
		func(r *restorer, raw json.RawMessage) error {
			c, err := decodeRecord(raw, func(c storage.Client) error { return need("id", c.ID) })
			if err != nil {
				return err
			}
			out, err := r.store.RestoreClient(r.ctx, c, r.opts())
			if err != nil {
				return fmt.Errorf("client %s: %w", c.ID, err)
			}
			r.done(Clients, out, storage.Change{Kind: storage.ChangeClient, ID: c.ID})
			return nil
		}},
	{DeletedClients,
		func(ctx context.Context, s Store, _ time.Time, emit func(any) error) error {
			return s.EachDeletedClient(ctx, func(d storage.DeletedClient) error { return emit(d) })
		},
		func(r *restorer, raw json.RawMessage) error {
			d, err := decodeRecord(raw, func(d storage.DeletedClient) error {
				return errors.Join(need("id", d.ID), needTime("deleted_at", d.DeletedAt))
			})
			if err != nil {
				return err
			}
			out, err := r.store.RestoreDeletedClient(r.ctx, d, r.opts())
			if err != nil {
				return fmt.Errorf("deleted client %s: %w", d.ID, err)
			}
			r.done(DeletedClients, out, storage.Change{})
			return nil
		}},
	{Users,
		func(ctx context.Context, s Store, _ time.Time, emit func(any) error) error {
			return s.EachUser(ctx, func(u storage.User, pats []storage.PersonalToken) error {
				return emit(userRecord{User: u, PersonalTokens: pats})
			})
		},
		restoreUser},
	{RefreshFamilies,
		func(ctx context.Context, s Store, now time.Time, emit func(any) error) error {
			return s.EachRefreshFamily(ctx, now, func(f storage.RefreshFamily) error { return emit(f) })
		},
		func(r *restorer, raw json.RawMessage) error {
			f, err := decodeRecord(raw, func(f storage.RefreshFamily) error {
				return errors.Join(need("id", f.ID), need("client_id", f.ClientID), needTime("expires_at", f.ExpiresAt))
			})
			if err != nil {
				return err
			}
			out, err := r.store.RestoreRefreshFamily(r.ctx, f, r.opts())
			if err != nil {
				return fmt.Errorf("refresh family %s: %w", f.ID, err)
			}
			r.done(RefreshFamilies, out, storage.Change{})
			return nil
		}},
	{RefreshTokens,
		func(ctx context.Context, s Store, now time.Time, emit func(any) error) error {
			return s.EachRefreshToken(ctx, now, func(t storage.RefreshToken) error { return emit(t) })
		},
		func(r *restorer, raw json.RawMessage) error {
			t, err := decodeRecord(raw, func(t storage.RefreshToken) error {
				return errors.Join(need("hash", t.Hash), need("family_id", t.FamilyID), need("client_id", t.ClientID),
					needTime("expires_at", t.ExpiresAt))
			})
			if err != nil {
				return err
			}
			out, err := r.store.RestoreRefreshToken(r.ctx, t, r.opts())
			if err != nil {
				return fmt.Errorf("refresh token of family %s: %w", t.FamilyID, err)
			}
			r.done(RefreshTokens, out, storage.Change{})
			return nil
		}},
	{RevokedAccessTokens,
		func(ctx context.Context, s Store, now time.Time, emit func(any) error) error {
			return s.EachRevokedAccessToken(ctx, now, func(t storage.RevokedAccessToken) error { return emit(t) })
		},
		func(r *restorer, raw json.RawMessage) error {
			t, err := decodeRecord(raw, func(t storage.RevokedAccessToken) error {
				return errors.Join(need("client_id", t.ClientID), need("jti", t.JTI))
			})
			if err != nil {
				return err
			}
			out, err := r.store.RestoreRevokedAccessToken(r.ctx, t, r.opts())
			if err != nil {
				return fmt.Errorf("revoked access token %s: %w", t.JTI, err)
			}
			r.done(RevokedAccessTokens, out, storage.Change{})
			return nil
		}},
	{TrustedIssuers,
		func(ctx context.Context, s Store, _ time.Time, emit func(any) error) error {
			all, err := s.ListTrustedIssuers(ctx)
			if err != nil {
				return err
			}
			for _, ti := range all {
				if err := emit(ti); err != nil {
					return err
				}
			}
			return nil
		},
		func(r *restorer, raw json.RawMessage) error {
			ti, err := decodeRecord(raw, func(ti storage.TrustedIssuer) error {
				return errors.Join(need("id", ti.ID), need("issuer", ti.Issuer))
			})
			if err != nil {
				return err
			}
			out, err := r.store.RestoreTrustedIssuer(r.ctx, ti, r.opts())
			if err != nil {
				return fmt.Errorf("trusted issuer %s: %w", ti.ID, err)
			}
			r.done(TrustedIssuers, out, storage.Change{Kind: storage.ChangeTrustedIssuer, ID: ti.ID})
			return nil
		}},
}

// restoreUser restores a user, then its personal tokens. On a dry run a user that would be
// created is not in the store for its tokens to be checked against: they would be created
// with it.
func restoreUser(r *restorer, raw json.RawMessage) error {
	u, err := decodeRecord(raw, func(u userRecord) error {
		errs := []error{need("id", u.ID), need("username", u.Username)}
		for _, t := range u.PersonalTokens {
			if t.UserID != u.ID {
				errs = append(errs, fmt.Errorf("personal token %s belongs to user %q, not to this one", t.ID, t.UserID))
			}
			errs = append(errs, need("personal token id", t.ID), needBytes("personal token hash", t.Hash))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return err
	}
	out, err := r.store.RestoreUser(r.ctx, u.User, r.opts())
	if err != nil {
		return fmt.Errorf("user %s (%s): %w", u.ID, u.Username, err)
	}
	r.done(Users, out, storage.Change{Kind: storage.ChangeUser, ID: u.ID})
	for _, t := range u.PersonalTokens {
		if r.dryRun && out == storage.Created {
			r.tally(PersonalTokens, storage.Created)
			continue
		}
		pout, err := r.store.RestorePersonalToken(r.ctx, t, r.opts())
		if err != nil {
			return fmt.Errorf("personal token %s of user %s: %w", t.ID, u.ID, err)
		}
		r.done(PersonalTokens, pout, storage.Change{Kind: storage.ChangePersonalToken, ID: t.ID})
	}
	return nil
}

// decodeRecord decodes one record strictly: a field this build does not know is an error,
// because restoring without it would lose what it holds.
func decodeRecord[T any](raw json.RawMessage, check func(T) error) (T, error) {
	var v T
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		return v, fmt.Errorf("%w: %v", errRecord, err)
	}
	if err := check(v); err != nil {
		return v, fmt.Errorf("%w: %v", errRecord, err)
	}
	return v, nil
}

// errRecord marks a record that cannot be read.
var errRecord = errors.New("invalid record")

func need(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s is empty", field)
	}
	return nil
}

func needBytes(field string, v []byte) error {
	if len(v) == 0 {
		return fmt.Errorf("%s is empty", field)
	}
	return nil
}

func needTime(field string, v time.Time) error {
	if v.IsZero() {
		return fmt.Errorf("%s is missing", field)
	}
	return nil
}

// checkKey: a signing key must hold a private key a server can load.
func checkKey(k storage.SigningKey) error {
	if err := need("id", k.ID); err != nil {
		return err
	}
	block, _ := pem.Decode(k.PrivatePEM)
	if block == nil {
		return fmt.Errorf("signing key %s: private_pem is not PEM", k.ID)
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		return fmt.Errorf("signing key %s: %v", k.ID, err)
	}
	return nil
}
