package grants

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/keys"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/storage"
)

// presented is a token someone showed us (for introspection, revocation or exchange), resolved
// to what it is: an access token's verified claims, a refresh token's record or a personal
// token's record, with its client (none for a personal token) and user.
type presented struct {
	access *AccessClaims
	// alg is the access token's signing algorithm: the reuse pool it may be in is that
	// algorithm's, whatever the client's is now.
	alg      string
	refresh  *storage.RefreshToken
	personal *storage.PersonalToken
	// refreshHash is the store hash of a refresh token.
	refreshHash string
	family      string
	// pat is the personal token an exchanged access token came from.
	pat    string
	client *Client
	// user is the token's user; nil for a client's own token.
	user *storage.User
}

// find resolves raw. It answers nil, with no error, for anything that is not a live token we
// issued: malformed, forged, expired, used (refresh), of a deleted client or of a client that
// had the same id before; with checkState also revoked, of a revoked family or of a deleted
// user (one more store call, which revocation does without: revoking twice is harmless).
func (c *core) find(ctx context.Context, raw string, now time.Time, checkState bool) (*presented, error) {
	var p *presented
	var err error
	switch {
	case strings.HasPrefix(raw, refreshPrefix):
		p, err = c.findRefresh(ctx, raw, now)
	case strings.HasPrefix(raw, secret.PersonalPrefix):
		p, err = c.findPersonal(ctx, raw, now)
	default:
		p, err = c.findAccess(ctx, raw, now)
	}
	if p == nil || err != nil || !checkState {
		return p, err
	}
	var q storage.TokenQuery
	switch {
	case p.personal != nil:
		// The record was just read (or is cached and would have been dropped had it changed);
		// the state call only fetches the user, for the username.
		q = storage.TokenQuery{UserID: p.personal.UserID}
	case p.access != nil:
		q = storage.TokenQuery{ClientID: p.client.ID, FamilyID: p.family, JTI: p.access.ID,
			UserID: userOf(p.access.Subject, p.client.ID), PersonalTokenID: p.pat}
	default:
		q = storage.TokenQuery{ClientID: p.client.ID, FamilyID: p.family, UserID: userOf(p.refresh.Subject, p.client.ID)}
	}
	q.Now = now
	st, err := c.store.TokenState(ctx, q)
	if err != nil {
		return nil, err
	}
	if st.Revoked || (q.UserID != "" && st.User == nil) {
		return nil, nil
	}
	if st.User != nil && p.personal == nil && p.issued().Before(st.User.NotBefore) {
		return nil, nil // a login made before the user's password changed
	}
	p.user = st.User
	return p, nil
}

func (c *core) findRefresh(ctx context.Context, raw string, now time.Time) (*presented, error) {
	family, hash, ok := parseRefreshToken(raw)
	if !ok {
		return nil, nil
	}
	rt, err := c.store.GetRefreshToken(ctx, family, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if !now.Before(rt.ExpiresAt) {
		return nil, nil
	}
	cl, err := c.ownerOf(ctx, rt.ClientID, rt.IssuedAt)
	if cl == nil || err != nil {
		return nil, err
	}
	return &presented{refresh: &rt, refreshHash: hash, family: family, client: cl}, nil
}

func (c *core) findAccess(ctx context.Context, raw string, now time.Time) (*presented, error) {
	claims, alg, ok := c.verify(raw, now)
	if !ok {
		return nil, nil
	}
	// iat is whole seconds: a token of the second its client's predecessor was deleted in
	// counts as the predecessor's only if it was issued before the deletion's second began.
	cl, err := c.ownerOf(ctx, claims.ClientID, time.Unix(claims.IssuedAt, 0).Add(time.Second-1))
	if cl == nil || err != nil {
		return nil, err
	}
	fam, _ := FamilyOf(claims.ID)
	pat, _ := PersonalOf(claims.ID)
	return &presented{access: claims, alg: alg, family: fam, pat: pat, client: cl}, nil
}

// ownerOf is the client a token was issued to, or nil when it is gone: deleted, or replaced by
// a client created under the same id after the token was issued (storage.Client.NotBefore).
func (c *core) ownerOf(ctx context.Context, id string, issued time.Time) (*Client, error) {
	cl, err := c.lookupClient(ctx, id, false)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if issued.Before(cl.NotBefore) {
		return nil, nil
	}
	return cl, nil
}

// verifiedAlgorithms are the algorithms our keys sign with; which one a token may use is
// decided by its key.
var verifiedAlgorithms = protocol.SigningAlgorithms()

// verify checks an access token the way a resource server would (one of our keys, with the
// algorithm that key is for, typ at+jwt, our issuer, not expired at now) and returns its claims
// and algorithm.
func (c *core) verify(raw string, now time.Time) (*AccessClaims, string, bool) {
	var claims AccessClaims
	tok, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		pub, alg, ok := c.keys.PublicKey(kid)
		if !ok {
			return nil, errors.New("unknown kid")
		}
		if t.Method.Alg() != alg {
			// A key verifies only the algorithm it was made for (RFC 7517 §4.4).
			return nil, errors.New("the token's alg is not its key's")
		}
		return pub, nil
	}, jwt.WithValidMethods(verifiedAlgorithms), jwt.WithIssuer(c.policy.Issuer),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil || tok.Header["typ"] != keys.TokenType || claims.ID == "" || claims.ClientID == "" {
		return nil, "", false
	}
	return &claims, tok.Method.Alg(), true
}

func unix(sec int64) time.Time { return time.Unix(sec, 0) }

// issued is when the token was issued; an access token's iat has whole seconds, so a token of
// the very second the user's logins were ended in still counts.
func (p *presented) issued() time.Time {
	if p.access != nil {
		return time.Unix(p.access.IssuedAt, 0).Add(time.Second - 1)
	}
	return p.refresh.IssuedAt
}
