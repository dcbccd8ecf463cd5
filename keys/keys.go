// Package keys owns the signing keys: it generates the first RSA-2048 key, keeps every key in
// the store (so all replicas sign with the same set), holds the parsed private key in memory
// so a token never pays for PEM parsing, signs access tokens, and renders the JWKS that
// resource servers verify them with (RFC 7517, kid = RFC 7638 thumbprint).
//
// The RSA signature itself comes from crypto/rsa by default, or from OpenSSL 3's libcrypto
// through cgo in a binary built with -tags openssl (about four times faster). Both give the
// same bytes: RSASSA-PKCS1-v1_5 is deterministic.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
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

// Signer signs access-token claims. It is what grants depend on; which RSA implementation
// makes the signature (SignerName) is decided inside this package, per build.
type Signer interface {
	Sign(claims jwt.Claims) (string, error)
}

// Store is where the keys live; declared here with the methods keys calls.
type Store interface {
	EnsureSigningKey(ctx context.Context, candidate storage.SigningKey) ([]storage.SigningKey, bool, error)
	RestoreSigningKeys(ctx context.Context, keys []storage.SigningKey) (bool, error)
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	RotateSigningKey(ctx context.Context, next storage.SigningKey, now time.Time, lifetime time.Duration) ([]storage.SigningKey, error)
	RemoveSigningKeys(ctx context.Context, now time.Time) ([]storage.SigningKey, error)
}

// Key is a parsed signing key. It signs tokens issued from ActivatesAt until RetiredAt (zero:
// no successor yet) and is published until RemoveAt.
type Key struct {
	ID          string
	Private     *rsa.PrivateKey
	CreatedAt   time.Time
	ActivatesAt time.Time
	RetiredAt   time.Time
	RemoveAt    time.Time

	// stored is the key as the store holds it, to write it back if the store loses it.
	stored storage.SigningKey
	// signer signs with this key; nil once the key is retired, when it only verifies.
	signer rsaSigner
	// header is the encoded JOSE header and the dot after it: the same for every token the
	// key signs, so it is encoded once.
	header []byte
}

// Set is the loaded key set: the active key signs; all keys are published.
type Set struct {
	state atomic.Pointer[state]
	// mu serialises replace and Close, which open and close signers.
	mu sync.Mutex
}

type state struct {
	// signing are the keys that can sign, latest activation first.
	signing []*Key
	all     []*Key
	jwks    []byte
}

// signingAt is the key that signs a token issued at t: the one activated last at or before t.
// Every replica reads the same activation times, so all switch at the same moment. Before the
// first activation (a clock far behind) the earliest key signs.
func (st *state) signingAt(t time.Time) *Key {
	for _, k := range st.signing {
		if !k.ActivatesAt.After(t) && (k.RetiredAt.IsZero() || t.Before(k.RetiredAt)) {
			return k
		}
	}
	return st.signing[len(st.signing)-1]
}

// signerGrace keeps a retired key's signer open a little after it retires, for tokens whose
// iat was read just before the switch.
const signerGrace = time.Minute

var _ Signer = (*Set)(nil)

// Generate creates a new RSA key in its stored form.
func Generate(now time.Time) (storage.SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, Bits)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: generate: %w", err)
	}
	return encode(priv, now)
}

// encode returns priv in its stored form: PKCS #8 PEM, with its thumbprint as id.
func encode(priv *rsa.PrivateKey, now time.Time) (storage.SigningKey, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, err
	}
	return storage.SigningKey{
		ID:         Thumbprint(&priv.PublicKey),
		PrivatePEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		CreatedAt:  now.UTC(),
	}, nil
}

// replace installs the keys now in the store, as of now. A key that is loaded already and
// unchanged keeps its signer (importing a key into OpenSSL is not free, and a signature in
// progress may be using it); a key retired more than signerGrace ago gets none. The signers
// of keys that left the set or stopped signing are closed once the new set is in place, so a
// Sign that started on the old set retries on the new one.
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
	st := &state{}
	var opened []*Key
	for _, sk := range stored {
		if !sk.RemoveAt.IsZero() && !now.Before(sk.RemoveAt) {
			continue // its tokens have expired; the store drops it at its next clean-up
		}
		signs := sk.RetiredAt.IsZero() || now.Before(sk.RetiredAt.Add(signerGrace))
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
			st.signing = append(st.signing, k)
		}
	}
	if len(st.signing) == 0 {
		closeKeys(opened)
		return errors.New("keys: the store holds no signing key that may sign")
	}
	slices.SortStableFunc(st.signing, func(a, b *Key) int { return b.ActivatesAt.Compare(a.ActivatesAt) })
	// Newest first, for the JWKS and the admin listing; stores return keys in any order.
	slices.SortStableFunc(st.all, func(a, b *Key) int { return b.CreatedAt.Compare(a.CreatedAt) })
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
func parse(sk storage.SigningKey, open func(*rsa.PrivateKey) (rsaSigner, error)) (*Key, error) {
	block, _ := pem.Decode(sk.PrivatePEM)
	if block == nil {
		return nil, fmt.Errorf("keys: key %s: no PEM block", sk.ID)
	}
	raw, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", sk.ID, err)
	}
	priv, ok := raw.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("keys: key %s is not RSA", sk.ID)
	}
	if kid := Thumbprint(&priv.PublicKey); kid != sk.ID {
		return nil, fmt.Errorf("keys: key %s: stored id does not match its thumbprint %s", sk.ID, kid)
	}
	priv.Precompute()
	header, err := encodeHeader(sk.ID)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", sk.ID, err)
	}
	k := &Key{ID: sk.ID, Private: priv, CreatedAt: sk.CreatedAt, ActivatesAt: sk.Activation(), RetiredAt: sk.RetiredAt,
		RemoveAt: sk.RemoveAt, stored: sk, header: header}
	if open != nil {
		if k.signer, err = open(priv); err != nil {
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

// Sign signs claims as an RS256 JWT with typ at+jwt, with the key that signs at the token's
// iat (now when it has none) and that key's kid.
func (s *Set) Sign(claims jwt.Claims) (string, error) {
	at := time.Now()
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		at = iat.Time
	}
	for {
		st := s.state.Load()
		tok, err := st.signingAt(at).sign(claims)
		if errors.Is(err, errSignerClosed) && s.state.Load() != st {
			// The key stopped signing while this token was being signed: sign again with the
			// set that replaced it.
			continue
		}
		return tok, err
	}
}

// ActiveID is the kid of the key that signs tokens issued now.
func (s *Set) ActiveID() string { return s.ActiveAt(time.Now()).ID }

// ActiveAt is the key that signs tokens issued at t.
func (s *Set) ActiveAt(t time.Time) *Key { return s.state.Load().signingAt(t) }

// stored returns the keys in their stored form, to write them back to a store that lost them.
func (s *Set) stored() []storage.SigningKey {
	var out []storage.SigningKey
	for _, k := range s.state.Load().all {
		out = append(out, k.stored)
	}
	return out
}

// PublicKey returns the public key for kid, for verifying our own tokens (introspection).
func (s *Set) PublicKey(kid string) (*rsa.PublicKey, bool) {
	for _, k := range s.state.Load().all {
		if k.ID == kid {
			return &k.Private.PublicKey, true
		}
	}
	return nil, false
}

// Keys lists the loaded keys, newest first.
func (s *Set) Keys() []*Key { return s.state.Load().all }

// JWKS is the pre-rendered JSON Web Key Set; it is served from memory, so it keeps working
// while the store is down.
func (s *Set) JWKS() []byte { return s.state.Load().jwks }

// JWK is the public half of a signing key as RFC 7517 publishes it.
type JWK struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func renderJWKS(all []*Key) ([]byte, error) {
	set := struct {
		Keys []JWK `json:"keys"`
	}{Keys: []JWK{}}
	for _, k := range all {
		pub := &k.Private.PublicKey
		set.Keys = append(set.Keys, JWK{
			Kty: "RSA", Use: "sig", Alg: "RS256", Kid: k.ID,
			N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	return json.Marshal(set)
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of an RSA public key, base64url without
// padding: the hash of the required members in lexicographic order with no white space.
func Thumbprint(pub *rsa.PublicKey) string {
	canon := `{"e":"` + b64(big.NewInt(int64(pub.E)).Bytes()) + `","kty":"RSA","n":"` + b64(pub.N.Bytes()) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
