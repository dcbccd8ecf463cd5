package keys

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokensmith/tokensmith/storage"
)

// storedKey is priv as the store keeps it, an RS256 key.
func storedKey(tb testing.TB, priv *rsa.PrivateKey, created, retired time.Time) storage.SigningKey {
	tb.Helper()
	return storedAlgKey(tb, RS256, priv, created, retired)
}

// storedAlgKey is priv as the store keeps it, a key of alg.
func storedAlgKey(tb testing.TB, alg string, priv crypto.Signer, created, retired time.Time) storage.SigningKey {
	tb.Helper()
	sk, err := encode(alg, priv, created)
	if err != nil {
		tb.Fatal(err)
	}
	sk.RetiredAt = retired
	return sk
}

// golangJWT is the token golang-jwt makes of the same claims with alg: the reference for
// the bytes.
func golangJWT(tb testing.TB, alg string, priv crypto.Signer, kid string, claims jwt.Claims) string {
	tb.Helper()
	t := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	t.Header["typ"] = TokenType
	t.Header["kid"] = kid
	s, err := t.SignedString(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// algKeys are one key per algorithm, made once per test binary.
var algKeys = sync.OnceValue(func() map[string]crypto.Signer {
	out := map[string]crypto.Signer{RS256: testKeys()[0], PS256: testKeys()[1]}
	for _, alg := range []string{ES256, EdDSA} {
		k, err := generateKey(alg)
		if err != nil {
			panic(err)
		}
		out[alg] = k
	}
	return out
})

// accessClaims are claims like those grants mints; grants.AccessClaims itself is tested from
// package keys_test, since grants imports keys.
type accessClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
}

func TestKeySignIsGolangJWTsToken(t *testing.T) {
	now := time.Unix(1767225600, 0)
	tests := []struct {
		name   string
		claims jwt.Claims
	}{
		{"map", jwt.MapClaims{"sub": "x", "exp": now.Unix()}},
		{"empty map", jwt.MapClaims{}},
		{"access token", accessClaims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: "https://auth.example.com", Subject: "5ana4c7hmpdk",
				Audience: jwt.ClaimStrings{"https://api.example.com"}, ID: "Xq3w0J9CTe3n",
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(3 * time.Hour)),
			},
			ClientID: "5ana4c7hmpdk", Scope: "orders:read orders:write",
		}},
		{"escaped characters", jwt.MapClaims{"sub": "<ü&\u2028\"é>", "aud": []string{"a", "b"}}},
	}
	for _, impl := range implementations() {
		for ki, priv := range testKeys() {
			k, err := parse(storedKey(t, priv, now, time.Time{}), impl.new)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(k.close)
			for _, tc := range tests {
				got, err := k.sign(tc.claims)
				if err != nil {
					t.Fatalf("%s, key %d, %s: %v", impl.name, ki, tc.name, err)
				}
				if want := golangJWT(t, RS256, priv, k.ID, tc.claims); got != want {
					t.Fatalf("%s, key %d, %s:\n got %s\nwant %s", impl.name, ki, tc.name, got, want)
				}
			}
		}
		// The randomized algorithms: the same header and claims as golang-jwt's, and a
		// signature golang-jwt verifies with the key's public half.
		for _, alg := range []string{PS256, ES256, EdDSA} {
			priv := algKeys()[alg]
			k, err := parse(storedAlgKey(t, alg, priv, now, time.Time{}), impl.new)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(k.close)
			for _, tc := range tests {
				got, err := k.sign(tc.claims)
				if err != nil {
					t.Fatalf("%s, %s, %s: %v", impl.name, alg, tc.name, err)
				}
				want := golangJWT(t, alg, priv, k.ID, tc.claims)
				if input := got[:strings.LastIndexByte(got, '.')]; input != want[:strings.LastIndexByte(want, '.')] {
					t.Fatalf("%s, %s, %s: signing input\n got %s\nwant %s", impl.name, alg, tc.name, got, want)
				}
				if _, err := jwt.Parse(got, func(*jwt.Token) (any, error) { return priv.Public(), nil },
					jwt.WithValidMethods([]string{alg}), jwt.WithoutClaimsValidation()); err != nil {
					t.Fatalf("%s, %s, %s: golang-jwt rejects the token: %v", impl.name, alg, tc.name, err)
				}
			}
		}
	}
}

// newSet loads stored into a fresh Set, as Load does.
func newSet(t *testing.T, stored ...storage.SigningKey) *Set {
	t.Helper()
	s := &Set{}
	if err := s.replace(stored, time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func keyByID(s *Set, kid string) *Key {
	for _, k := range s.Keys() {
		if k.ID == kid {
			return k
		}
	}
	return nil
}

// What rotation will do to a loaded set: unchanged keys keep their signer, a retired or
// removed key has its signer closed, and a closed set signs nothing.
func TestReplaceOpensAndClosesSigners(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Unix(1767225600, 0).UTC()
	a, b := testKeys()[0], testKeys()[1]
	aActive := storedKey(t, a, t0, time.Time{})
	bActive := storedKey(t, b, t0.Add(day), time.Time{})
	aRetired := storedKey(t, a, t0, t0.Add(day))

	s := newSet(t, aActive)
	first := keyByID(s, aActive.ID)
	if s.ActiveID() != aActive.ID || first.signer == nil {
		t.Fatalf("active %s, signer %v; want %s with a signer", s.ActiveID(), first.signer, aActive.ID)
	}

	if err := s.replace([]storage.SigningKey{aActive, bActive}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if s.ActiveID() != bActive.ID || keyByID(s, aActive.ID) != first {
		t.Fatalf("after adding a newer key: active %s, old key reloaded %v; want %s and the same Key", s.ActiveID(), keyByID(s, aActive.ID) != first, bActive.ID)
	}
	if _, err := first.signer.sign([]byte("still open")); err != nil {
		t.Fatalf("an unchanged key's signer was closed: %v", err)
	}

	if err := s.replace([]storage.SigningKey{aRetired, bActive}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if k := keyByID(s, aActive.ID); k == first || k.signer != nil || k.RetiredAt.IsZero() {
		t.Fatalf("retired key: same Key %v, signer %v, retired %v", k == first, k.signer, k.RetiredAt)
	}
	if _, err := first.signer.sign([]byte("retired")); !errors.Is(err, errSignerClosed) {
		t.Fatalf("retired key's old signer: err = %v, want errSignerClosed", err)
	}
	if _, _, ok := s.PublicKey(aActive.ID); !ok {
		t.Fatal("a retired key must stay published")
	}

	active := keyByID(s, bActive.ID)
	if err := s.replace([]storage.SigningKey{bActive}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.PublicKey(aActive.ID); ok || keyByID(s, bActive.ID) != active {
		t.Fatal("dropping a key must remove it and keep the others")
	}

	if err := s.replace([]storage.SigningKey{aRetired}, time.Now()); err == nil {
		t.Fatal("a set with no active key was accepted")
	}
	if _, err := s.Sign(RS256, jwt.MapClaims{"sub": "x"}); err != nil {
		t.Fatalf("a refused replace must leave the set signing: %v", err)
	}

	s.Close()
	if _, err := s.Sign(RS256, jwt.MapClaims{"sub": "x"}); !errors.Is(err, errSignerClosed) {
		t.Fatalf("Sign after Close: err = %v, want errSignerClosed", err)
	}
}

// Tokens signed while the active key changes under them all come out signed, by whichever
// key was active: a Sign that meets a closed signer retries with the new set.
func TestSignAcrossRotations(t *testing.T) {
	t0 := time.Unix(1767225600, 0).UTC()
	privs := testKeys()[:2]
	var stored [2][]storage.SigningKey
	for i := range stored {
		old, cur := privs[1-i], privs[i]
		stored[i] = []storage.SigningKey{
			storedKey(t, old, t0, t0.Add(time.Hour)),
			storedKey(t, cur, t0.Add(time.Duration(i+1)*time.Minute), time.Time{}),
		}
	}
	s := newSet(t, stored[0]...)
	var stop atomic.Bool
	var signed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				tok, err := s.Sign(RS256, jwt.MapClaims{"sub": "x"})
				if err != nil {
					t.Errorf("Sign during rotation: %v", err)
					return
				}
				if _, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
					pub, _, ok := s.PublicKey(tk.Header["kid"].(string))
					if !ok {
						return nil, errors.New("unknown kid")
					}
					return pub, nil
				}, jwt.WithValidMethods([]string{"RS256"})); err != nil {
					t.Errorf("token signed during rotation does not verify: %v", err)
					return
				}
				signed.Add(1)
			}
		})
	}
	for i := range 100 {
		for signed.Load() < int64(i) && !t.Failed() {
			time.Sleep(time.Millisecond)
		}
		if err := s.replace(stored[(i+1)%2], time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
}

// BenchmarkKeySign is a whole token with each signer, in one run: claims to JSON, base64url,
// SHA-256, the RSA signature and the token string.
func BenchmarkKeySign(b *testing.B) {
	now := time.Unix(1767225600, 0)
	claims := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "https://auth.example.com", Subject: "5ana4c7hmpdk",
			Audience: jwt.ClaimStrings{"https://api.example.com"}, ID: "Xq3w0J9CTe3n",
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(3 * time.Hour)),
		},
		ClientID: "5ana4c7hmpdk", Scope: "orders:read orders:write",
	}
	for _, impl := range implementations() {
		k, err := parse(storedKey(b, testKeys()[0], now, time.Time{}), impl.new)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(k.close)
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.sign(claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A key stored before keys had an algorithm (no alg in the record) is an RS256 key: it signs
// RS256 and is published as one.
func TestKeyStoredWithoutAlgorithmIsRS256(t *testing.T) {
	sk := storedKey(t, testKeys()[0], time.Now().Add(-time.Hour), time.Time{})
	sk.Algorithm = ""
	s := newSet(t, sk)
	tok, err := s.Sign(RS256, jwt.MapClaims{"sub": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &testKeys()[0].PublicKey, nil },
		jwt.WithValidMethods([]string{RS256})); err != nil {
		t.Fatalf("the token of a key stored without alg: %v", err)
	}
	if !strings.Contains(string(s.JWKS()), `"alg":"RS256"`) {
		t.Fatalf("JWKS %s", s.JWKS())
	}
}
