// Package keys owns the signing keys: it generates one key per configured algorithm (RS256,
// PS256, ES256, EdDSA), keeps every key in the store (so all replicas sign with the same set),
// holds the parsed private keys in memory so a token never pays for PEM parsing, signs access
// tokens with the algorithm each client chose, and renders the JWKS that resource servers
// verify them with (RFC 7517, every kid the key's RFC 7638 thumbprint).
//
// The RSA signatures (RS256, PS256) come from crypto/rsa by default, or from OpenSSL 3's
// libcrypto through cgo in a binary built with -tags openssl (about four times faster). RS256
// gives the same bytes either way (RSASSA-PKCS1-v1_5 is deterministic); PS256 is randomized,
// so the two agree on what verifies. ES256 and EdDSA use the Go standard library in every
// build: their signatures cost a few hundredths of an RSA-2048 one.
package keys

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/storage"
)

// Bits is the RSA modulus size of generated keys.
const Bits = 2048

// TokenType is the JWT typ header of access tokens (RFC 9068 §2.1).
const TokenType = "at+jwt"

// Signer signs access-token claims with an algorithm. It is what grants depend on; which
// implementation makes the signature (SignerName) is decided inside this package, per build.
type Signer interface {
	Sign(alg string, claims jwt.Claims) (string, error)
}

// Store is where the keys live; declared here with the methods keys calls.
type Store interface {
	EnsureSigningKey(ctx context.Context, candidate storage.SigningKey) ([]storage.SigningKey, bool, error)
	RestoreSigningKeys(ctx context.Context, keys []storage.SigningKey) (bool, error)
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	RotateSigningKey(ctx context.Context, next storage.SigningKey, now time.Time, lifetime time.Duration) ([]storage.SigningKey, error)
	RetireSigningKeys(ctx context.Context, alg string, at time.Time, lifetime time.Duration) ([]storage.SigningKey, error)
	RemoveSigningKeys(ctx context.Context, now time.Time) ([]storage.SigningKey, error)
}

// Key is a parsed signing key. It signs tokens of its Algorithm issued from ActivatesAt until
// RetiredAt (zero: no successor yet) and is published until RemoveAt.
type Key struct {
	ID        string
	Algorithm string
	// Private is an *rsa.PrivateKey (RS256, PS256), an *ecdsa.PrivateKey (ES256) or an
	// ed25519.PrivateKey (EdDSA).
	Private     crypto.Signer
	CreatedAt   time.Time
	ActivatesAt time.Time
	RetiredAt   time.Time
	RemoveAt    time.Time

	// stored is the key as the store holds it, to write it back if the store loses it.
	stored storage.SigningKey
	// signer signs with this key; nil once the key is retired, or when its algorithm is not
	// one this replica signs with: then it only verifies.
	signer signer
	// header is the encoded JOSE header and the dot after it: the same for every token the
	// key signs, so it is encoded once.
	header []byte
	// sigSize is the length of the key's signatures in bytes.
	sigSize int
}

// Public is the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

// Set is the loaded key set: every key is published; the keys of the configured algorithms
// sign, each algorithm with its own active key.
type Set struct {
	// algs are the algorithms this replica signs with, the default first (Options.Algorithms).
	algs []string
	log  *slog.Logger
	// warned holds, per algorithm asked for and not configured, when that was last logged.
	warned sync.Map

	state atomic.Pointer[state]
	// mu serialises replace and Close, which open and close signers.
	mu sync.Mutex
}

type state struct {
	algs []string
	// signing are, per configured algorithm, the keys that can sign, latest activation first.
	signing map[string][]*Key
	all     []*Key
	jwks    []byte
}

// algorithms are the configured algorithms; RS256 alone for a Set made without any.
func (s *Set) algorithms() []string {
	if len(s.algs) == 0 {
		return []string{RS256}
	}
	return s.algs
}

// keyAt is the key of alg that signs a token issued at t: the one activated last at or before
// t and not retired by then; nil when alg has none (not configured here, or its first key
// still waiting out its pre-publication). Every replica reads the same activation times, so
// all switch at the same moment.
func (st *state) keyAt(alg string, t time.Time) *Key {
	for _, k := range st.signing[alg] {
		if !k.ActivatesAt.After(t) && (k.RetiredAt.IsZero() || t.Before(k.RetiredAt)) {
			return k
		}
	}
	return nil
}

// signerFor is the key that signs a token of alg issued at t. An algorithm without a key
// that signs at t falls back to the configured algorithms in order: its first key may still be
// published ahead of signing, or alg may have been dropped from this replica's configuration
// while clients still ask for it. Before every activation (a clock far behind) the earliest
// key of alg, or else of the default algorithm, signs.
func (st *state) signerFor(alg string, t time.Time) *Key {
	if k := st.keyAt(alg, t); k != nil {
		return k
	}
	for _, a := range st.algs {
		if k := st.keyAt(a, t); k != nil {
			return k
		}
	}
	for _, a := range append([]string{alg}, st.algs...) {
		if ks := st.signing[a]; len(ks) > 0 {
			return ks[len(ks)-1]
		}
	}
	return nil
}

// signerGrace keeps a retired key's signer open a little after it retires, for tokens whose
// iat was read just before the switch.
const signerGrace = time.Minute

var _ Signer = (*Set)(nil)

// Generate creates a new key for alg in its stored form.
func Generate(alg string, now time.Time) (storage.SigningKey, error) {
	priv, err := generateKey(alg)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: generate %s: %w", alg, err)
	}
	return encode(alg, priv, now)
}

// encode returns priv in its stored form: PKCS #8 PEM, with its thumbprint as id.
func encode(alg string, priv crypto.Signer, now time.Time) (storage.SigningKey, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, err
	}
	kid, err := Thumbprint(priv.Public())
	if err != nil {
		return storage.SigningKey{}, err
	}
	return storage.SigningKey{
		ID:         kid,
		Algorithm:  alg,
		PrivatePEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		CreatedAt:  now.UTC(),
	}, nil
}

// replace installs the keys now in the store, as of now. A key that is loaded already and
// unchanged keeps its signer (importing a key into OpenSSL is not free, and a signature in
// progress may be using it); a key retired more than signerGrace ago, or of an algorithm this
// replica does not sign with, gets none. The signers of keys that left the set or stopped
// signing are closed once the new set is in place, so a Sign that started on the old set
// retries on the new one.
func (s *Set) replace(stored []storage.SigningKey, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	loaded := map[string]*Key{}
	old := s.state.Load()
	if old != nil {
		for _, k := range old.all {
			loaded[k.ID] = k
		}
	}
	st := &state{algs: s.algorithms(), signing: map[string][]*Key{}}
	var opened []*Key
	signers := 0
	for _, sk := range stored {
		if !sk.RemoveAt.IsZero() && !now.Before(sk.RemoveAt) {
			continue // its tokens have expired; the store drops it at its next clean-up
		}
		signs := slices.Contains(st.algs, sk.Alg()) && (sk.RetiredAt.IsZero() || now.Before(sk.RetiredAt.Add(signerGrace)))
		k := loaded[sk.ID]
		if k == nil || !sameSchedule(k.stored, sk) || (k.signer != nil) != signs {
			var err error
			open := newSigner
			if !signs {
				open = nil
			}
			if k, err = parse(sk, open); err != nil {
				closeKeys(opened)
				return err
			}
			opened = append(opened, k)
		}
		st.all = append(st.all, k)
		if k.signer != nil {
			st.signing[k.Algorithm] = append(st.signing[k.Algorithm], k)
			signers++
		}
	}
	if signers == 0 {
		closeKeys(opened)
		return fmt.Errorf("keys: the store holds no key of %v that may sign", st.algs)
	}
	for _, ks := range st.signing {
		slices.SortStableFunc(ks, func(a, b *Key) int { return b.ActivatesAt.Compare(a.ActivatesAt) })
	}
	// Newest first, for the JWKS and the admin listing; stores return keys in any order, so
	// keys made at the same moment go by kid.
	slices.SortFunc(st.all, func(a, b *Key) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	jwks, err := renderJWKS(st.all)
	if err != nil {
		closeKeys(opened)
		return err
	}
	st.jwks = jwks
	s.state.Store(st)
	if old != nil {
		closeKeys(slices.DeleteFunc(slices.Clone(old.all), func(k *Key) bool { return slices.Contains(st.all, k) }))
	}
	return nil
}

func closeKeys(ks []*Key) {
	for _, k := range ks {
		k.close()
	}
}

// Close releases every key's signer: the OpenSSL build holds private keys outside the Go
// heap. It is the Set's last call: Sign fails afterwards, while the public keys and the JWKS
// stay readable.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.state.Load(); st != nil {
		closeKeys(st.all)
	}
}

// sameSchedule reports whether two records of one key have the same dates.
func sameSchedule(a, b storage.SigningKey) bool {
	return a.CreatedAt.Equal(b.CreatedAt) && a.Activation().Equal(b.Activation()) &&
		a.RetiredAt.Equal(b.RetiredAt) && a.RemoveAt.Equal(b.RemoveAt)
}

// parse turns a stored key into a Key, with a signer made by open (nil: a key that only
// verifies). open is this build's newSigner; tests pass each implementation in turn.
func parse(sk storage.SigningKey, open func(string, crypto.Signer) (signer, error)) (*Key, error) {
	block, _ := pem.Decode(sk.PrivatePEM)
	if block == nil {
		return nil, fmt.Errorf("keys: key %s: no PEM block", sk.ID)
	}
	raw, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", sk.ID, err)
	}
	priv, ok := raw.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: key %s: a %T cannot sign", sk.ID, raw)
	}
	alg := sk.Alg()
	if err := checkKey(alg, priv); err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", sk.ID, err)
	}
	if kid, err := Thumbprint(priv.Public()); err != nil || kid != sk.ID {
		return nil, fmt.Errorf("keys: key %s: stored id does not match its thumbprint %s", sk.ID, kid)
	}
	if r, ok := priv.(*rsa.PrivateKey); ok {
		r.Precompute()
	}
	header, err := encodeHeader(alg, sk.ID)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", sk.ID, err)
	}
	k := &Key{ID: sk.ID, Algorithm: alg, Private: priv, CreatedAt: sk.CreatedAt, ActivatesAt: sk.Activation(),
		RetiredAt: sk.RetiredAt, RemoveAt: sk.RemoveAt, stored: sk, header: header, sigSize: signatureSize(priv.Public())}
	if open != nil {
		if k.signer, err = open(alg, priv); err != nil {
			return nil, fmt.Errorf("keys: key %s: %w", sk.ID, err)
		}
	}
	return k, nil
}

func (k *Key) close() {
	if k.signer != nil {
		k.signer.close()
	}
}

// fallbackLogEvery bounds how often one algorithm's fallback is logged.
const fallbackLogEvery = time.Minute

// Sign signs claims as a JWT with typ at+jwt, with the key of alg that signs at the token's
// iat (now when it has none) and that key's kid. An algorithm this replica does not sign
// with (it was dropped from keys.algorithms while clients still ask for it) falls back to the
// configured ones in order, logged at most once a minute per algorithm; so does one whose
// first key is still published ahead of signing, silently: that is the pre-publication rule.
func (s *Set) Sign(alg string, claims jwt.Claims) (string, error) {
	at := time.Now()
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		at = iat.Time
	}
	for {
		st := s.state.Load()
		k := st.signerFor(alg, at)
		if k.Algorithm != alg && !slices.Contains(st.algs, alg) {
			s.fellBack(alg, k.Algorithm, at)
		}
		tok, err := k.sign(claims)
		if errors.Is(err, errSignerClosed) && s.state.Load() != st {
			// The key stopped signing while this token was being signed: sign again with the
			// set that replaced it.
			continue
		}
		return tok, err
	}
}

func (s *Set) fellBack(asked, used string, now time.Time) {
	if s.log == nil {
		return
	}
	v, _ := s.warned.LoadOrStore(asked, new(atomic.Int64))
	last := v.(*atomic.Int64)
	prev := last.Load()
	if now.Unix()-prev < int64(fallbackLogEvery/time.Second) || !last.CompareAndSwap(prev, now.Unix()) {
		return
	}
	s.log.Warn("a client's access_token_signing_alg is not in keys.algorithms on this replica; its tokens are signed with another algorithm",
		"asked", asked, "signed_with", used, "keys.algorithms", s.algorithms())
}

// Algorithms lists the algorithms this replica signs with, the default first.
func (s *Set) Algorithms() []string { return slices.Clone(s.algorithms()) }

// DefaultAlgorithm is the algorithm of clients that choose none: the first configured.
func (s *Set) DefaultAlgorithm() string { return s.algorithms()[0] }

// SignsFrom reports whether alg is one this replica signs with and, if so, from when: now
// when a key of alg signs at now, or the activation of its first key still published ahead.
func (s *Set) SignsFrom(alg string, now time.Time) (time.Time, bool) {
	st := s.state.Load()
	if !slices.Contains(st.algs, alg) {
		return time.Time{}, false
	}
	if st.keyAt(alg, now) != nil {
		return now, true
	}
	ks := st.signing[alg]
	if len(ks) == 0 {
		return time.Time{}, false
	}
	return ks[len(ks)-1].ActivatesAt, true
}

// ActiveID is the kid of the key that signs tokens of the default algorithm issued now.
func (s *Set) ActiveID() string {
	if k := s.ActiveAt(s.DefaultAlgorithm(), time.Now()); k != nil {
		return k.ID
	}
	return ""
}

// ActiveAt is the key that signs tokens of alg issued at t (after any fallback).
func (s *Set) ActiveAt(alg string, t time.Time) *Key { return s.state.Load().signerFor(alg, t) }

// stored returns the keys in their stored form, to write them back to a store that lost them.
func (s *Set) stored() []storage.SigningKey {
	var out []storage.SigningKey
	for _, k := range s.state.Load().all {
		out = append(out, k.stored)
	}
	return out
}

// PublicKey returns the public key for kid and the algorithm it verifies, for checking our own
// tokens (introspection, revocation): a token is genuine only if its header names that
// algorithm.
func (s *Set) PublicKey(kid string) (crypto.PublicKey, string, bool) {
	for _, k := range s.state.Load().all {
		if k.ID == kid {
			return k.Public(), k.Algorithm, true
		}
	}
	return nil, "", false
}

// Keys lists the loaded keys, newest first.
func (s *Set) Keys() []*Key { return s.state.Load().all }

// JWKS is the pre-rendered JSON Web Key Set; it is served from memory, so it keeps working
// while the store is down.
func (s *Set) JWKS() []byte { return s.state.Load().jwks }

func renderJWKS(all []*Key) ([]byte, error) {
	set := struct {
		Keys []JWK `json:"keys"`
	}{Keys: []JWK{}}
	for _, k := range all {
		j, err := publicJWK(k.Public())
		if err != nil {
			return nil, err
		}
		j.Use, j.Alg, j.Kid = "sig", k.Algorithm, k.ID
		set.Keys = append(set.Keys, j)
	}
	return json.Marshal(set)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
