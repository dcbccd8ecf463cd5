package keys

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// implementation is one RSA signer constructor under test. The go one is always there; the
// openssl one only in a binary built with -tags openssl (opensslImplementation).
type implementation struct {
	name string
	new  func(alg string, priv crypto.Signer) (signer, error)
	// offHeap is set when the signer holds memory the Go garbage collector does not see.
	offHeap bool
}

func goImplementation(alg string, priv crypto.Signer) (signer, error) { return newGoSigner(alg, priv) }

func implementations() []implementation {
	impls := []implementation{{name: "go", new: goImplementation}}
	if impl, ok := opensslImplementation(); ok {
		impls = append(impls, impl)
	}
	return impls
}

// testKeys are generated once per test binary: RSA key generation takes a good part of a
// second, and every test here only reads them.
var testKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	var ks []*rsa.PrivateKey
	for _, bits := range []int{2048, 2048, 3072} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		k.Precompute()
		ks = append(ks, k)
	}
	return ks
})

func mustSigner(tb testing.TB, impl implementation, alg string, priv crypto.Signer) signer {
	tb.Helper()
	s, err := impl.new(alg, priv)
	if err != nil {
		tb.Fatalf("%s: new signer: %v", impl.name, err)
	}
	tb.Cleanup(s.close)
	return s
}

// reference is what crypto/rsa makes of message, outside any signer.
func reference(tb testing.TB, priv *rsa.PrivateKey, message []byte) []byte {
	tb.Helper()
	digest := sha256.Sum256(message)
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:])
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

// checkSignature fails unless every implementation signs message with priv the way the
// standard library verifies: for RS256 into the same bytes as crypto/rsa; for PS256, whose
// salt is random, into a signature that verifies with the salt exactly as long as the digest
// (RFC 7518 §3.5) and does not verify for another message.
func checkSignature(tb testing.TB, alg string, signers map[string]signer, priv *rsa.PrivateKey, message []byte) {
	tb.Helper()
	digest := sha256.Sum256(message)
	other := sha256.Sum256(append(slices.Clone(message), 0))
	var want []byte
	if alg == RS256 {
		want = reference(tb, priv, message)
	}
	verify := func(d []byte, sig []byte) error {
		if alg == RS256 {
			return rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, d, sig)
		}
		return rsa.VerifyPSS(&priv.PublicKey, crypto.SHA256, d, sig, pssOptions)
	}
	for name, s := range signers {
		got, err := s.sign(message)
		if err != nil {
			tb.Fatalf("%s %s: sign %d bytes: %v", name, alg, len(message), err)
		}
		if want != nil && !bytes.Equal(got, want) {
			tb.Fatalf("%s: signature of %d bytes (%x…) differs from crypto/rsa's (%x…)", name, len(message), got[:8], want[:8])
		}
		if err := verify(digest[:], got); err != nil {
			tb.Fatalf("%s %s: crypto/rsa rejects the signature of %d bytes: %v", name, alg, len(message), err)
		}
		if verify(other[:], got) == nil {
			tb.Fatalf("%s %s: the signature of %d bytes also verifies for another message", name, alg, len(message))
		}
	}
}

// rsaAlgorithms are the algorithms both RSA implementations sign.
var rsaAlgorithms = []string{RS256, PS256}

func signersFor(tb testing.TB, alg string, priv *rsa.PrivateKey) map[string]signer {
	signers := map[string]signer{}
	for _, impl := range implementations() {
		signers[impl.name] = mustSigner(tb, impl, alg, priv)
	}
	return signers
}

func TestSignersGiveCryptoRSABytes(t *testing.T) {
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	tests := []struct {
		name    string
		message []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"JWS signing input", []byte(strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 30))},
		{"digest-sized", random(sha256.Size)},
		{"64 KiB", random(64 << 10)},
	}
	for i := range 200 {
		tests = append(tests, struct {
			name    string
			message []byte
		}{fmt.Sprintf("random %d", i), random(i * 7)})
	}
	for _, alg := range rsaAlgorithms {
		for ki, priv := range testKeys() {
			signers := signersFor(t, alg, priv)
			t.Run(fmt.Sprintf("%s key %d (%d bits)", alg, ki, priv.N.BitLen()), func(t *testing.T) {
				for _, tc := range tests {
					checkSignature(t, alg, signers, priv, tc.message)
				}
			})
		}
	}
}

// ES256 and EdDSA are signed by the standard library in every build; what they sign verifies
// with crypto/ecdsa and crypto/ed25519, in JWS's fixed-size form, and not for another message.
func TestCurveSigners(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		alg    string
		priv   crypto.Signer
		verify func(msg, sig []byte) bool
	}{
		{ES256, ec, func(msg, sig []byte) bool {
			d := sha256.Sum256(msg)
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(&ec.PublicKey, d[:], r, s)
		}},
		{EdDSA, ed, func(msg, sig []byte) bool { return ed25519.Verify(ed.Public().(ed25519.PublicKey), msg, sig) }},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			s, err := newSigner(tc.alg, tc.priv)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			if _, ok := s.(*goSigner); !ok {
				t.Fatalf("%s is signed by %T, want the standard library in every build", tc.alg, s)
			}
			for i := range 50 {
				msg := bytes.Repeat([]byte{byte(i)}, i*13)
				sig, err := s.sign(msg)
				if err != nil {
					t.Fatal(err)
				}
				if len(sig) != 64 || !tc.verify(msg, sig) || tc.verify(append(msg, 1), sig) {
					t.Fatalf("%d bytes: signature of %d bytes does not verify as it must", len(msg), len(sig))
				}
			}
		})
	}
}

// A key never signs with an algorithm it was not made for.
func TestSignerRefusesAnotherKeyType(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey := testKeys()[0]
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		alg  string
		priv crypto.Signer
	}{
		{RS256, ec}, {PS256, ed}, {ES256, rsaKey}, {ES256, p384}, {EdDSA, ec}, {RS256, short}, {"HS256", rsaKey}, {"none", ed},
	}
	for _, tc := range tests {
		for _, impl := range append(implementations(), implementation{name: "build", new: newSigner}) {
			if s, err := impl.new(tc.alg, tc.priv); err == nil {
				s.close()
				t.Errorf("%s: a %T signs %s", impl.name, tc.priv, tc.alg)
			}
		}
	}
}

// FuzzSignersAgree: for any message and key, the Go and OpenSSL signers give RS256 signatures
// of the same bytes, and PS256 signatures that both verify (PSS is randomized: bytes differ).
func FuzzSignersAgree(f *testing.F) {
	f.Add([]byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0"), uint8(0))
	f.Add([]byte{}, uint8(2))
	f.Add([]byte("eyJhbGciOiJQUzI1NiJ9.eyJzdWIiOiJ4In0"), uint8(3))
	keys := testKeys()
	signers := map[string][]map[string]signer{}
	for _, alg := range rsaAlgorithms {
		for _, priv := range keys {
			signers[alg] = append(signers[alg], signersFor(f, alg, priv))
		}
	}
	f.Fuzz(func(t *testing.T, message []byte, key uint8) {
		i := int(key) % len(keys)
		alg := rsaAlgorithms[int(key)/len(keys)%len(rsaAlgorithms)]
		checkSignature(t, alg, signers[alg][i], keys[i], message)
	})
}

func TestConcurrentSigning(t *testing.T) {
	priv := testKeys()[0]
	const goroutines, each = 8, 25
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			s := mustSigner(t, impl, RS256, priv)
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			msgs := make([][]byte, goroutines*each)
			wants := make([][]byte, len(msgs))
			for i := range msgs {
				msgs[i] = []byte(fmt.Sprintf("message %d", i))
				wants[i] = reference(t, priv, msgs[i])
			}
			for g := range goroutines {
				wg.Go(func() {
					for i := g * each; i < (g+1)*each; i++ {
						got, err := s.sign(msgs[i])
						if err == nil && !bytes.Equal(got, wants[i]) {
							err = fmt.Errorf("goroutine %d, message %d: wrong signature", g, i)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// A key retired under load: every signature in progress either finishes correctly or
// reports errSignerClosed; nothing crashes and nothing signs after close returns.
func TestCloseWhileSigning(t *testing.T) {
	priv := testKeys()[0]
	msg := []byte("retired under load")
	want := reference(t, priv, msg)
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			s, err := impl.new(RS256, priv)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 6 {
				wg.Go(func() {
					<-start
					for {
						got, err := s.sign(msg)
						if errors.Is(err, errSignerClosed) {
							return
						}
						if err != nil || !bytes.Equal(got, want) {
							t.Errorf("sign during close: %v", err)
							return
						}
					}
				})
			}
			close(start)
			s.sign(msg) // at least one signature overlaps the others
			s.close()
			wg.Wait()
			if _, err := s.sign(msg); !errors.Is(err, errSignerClosed) {
				t.Fatalf("sign after close: err = %v, want errSignerClosed", err)
			}
			s.close() // idempotent
		})
	}
}

// vmRSS is this process's resident set size in bytes.
func vmRSS(tb testing.TB) int64 {
	tb.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// Creating, using and retiring thousands of keys keeps the resident set flat: every key an
// OpenSSL signer imports is freed, by close (the rule) or by the cleanup (the backstop for a
// signer that was dropped unclosed). A leak of a few KiB per key would show as tens of MiB.
func TestKeyLifecyclesKeepRSSFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 5,000 keys")
	}
	const lifecycles, bound = 5000, 20 << 20
	keys := testKeys()[:2] // the 2048-bit ones: the 3072-bit key only makes this slower
	msg := []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0")
	ran := false
	for _, impl := range implementations() {
		if !impl.offHeap {
			continue // the garbage collector already accounts for everything it holds
		}
		ran = true
		for _, closed := range []bool{true, false} {
			name := impl.name + "/closed"
			if !closed {
				name = impl.name + "/dropped"
			}
			t.Run(name, func(t *testing.T) {
				cycle := func(i int) {
					s, err := impl.new(RS256, keys[i%len(keys)])
					if err != nil {
						t.Fatal(err)
					}
					if _, err := s.sign(msg); err != nil {
						t.Fatal(err)
					}
					if closed {
						s.close()
					}
					if i%100 == 99 {
						runtime.GC() // lets cleanups run for the dropped ones
					}
				}
				for i := range 1000 { // warm up allocators, thread arenas and the heap's size
					cycle(i)
				}
				runtime.GC()
				before := vmRSS(t)
				for i := range lifecycles {
					cycle(i)
				}
				runtime.GC()
				runtime.GC()
				after := vmRSS(t)
				t.Logf("%s: VmRSS %.1f MiB before, %.1f MiB after %d keys (%+.1f MiB)",
					name, mib(before), mib(after), lifecycles, mib(after-before))
				if after-before > bound {
					t.Fatalf("VmRSS grew %.1f MiB over %d keys, bound %.0f MiB", mib(after-before), lifecycles, mib(bound))
				}
			})
		}
	}
	if !ran {
		t.Skip("no signer in this build holds memory outside the Go heap (build with -tags openssl)")
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// benchMessage is a typical JWS signing input: an access token's header and claims.
var benchMessage = func() []byte {
	header, _ := encodeHeader(RS256, "KtWTBnXq3w0J9CTe3nWbdq4Bd0Pxt3z0wO0x9fD1ZqE")
	claims := `{"iss":"https://auth.example.com","sub":"5ana4c7hmpdk","aud":"https://api.example.com",` +
		`"client_id":"5ana4c7hmpdk","scope":"orders:read orders:write","iat":1767225600,"exp":1767236400,"jti":"Xq3w0J9CTe3n"}`
	return b64url.AppendEncode(header, []byte(claims))
}()

func BenchmarkSignRS256(b *testing.B) {
	priv := testKeys()[0]
	for _, impl := range implementations() {
		b.Run(impl.name, func(b *testing.B) {
			s := mustSigner(b, impl, RS256, priv)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.sign(benchMessage); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(impl.name+"/parallel", func(b *testing.B) {
			s := mustSigner(b, impl, RS256, priv)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.sign(benchMessage); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
