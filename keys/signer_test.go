package keys

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// implementation is one rsaSigner constructor under test. The go one is always there; the
// openssl one only in a binary built with -tags openssl (opensslImplementation).
type implementation struct {
	name string
	new  func(*rsa.PrivateKey) (rsaSigner, error)
	// offHeap is set when the signer holds memory the Go garbage collector does not see.
	offHeap bool
}

func implementations() []implementation {
	impls := []implementation{{name: "go", new: func(p *rsa.PrivateKey) (rsaSigner, error) { return newGoSigner(p), nil }}}
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

func mustSigner(tb testing.TB, impl implementation, priv *rsa.PrivateKey) rsaSigner {
	tb.Helper()
	s, err := impl.new(priv)
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

// checkSignature fails unless every implementation signs message with priv into the same bytes
// as crypto/rsa, and the signature verifies.
func checkSignature(tb testing.TB, signers map[string]rsaSigner, priv *rsa.PrivateKey, message []byte) {
	tb.Helper()
	want := reference(tb, priv, message)
	digest := sha256.Sum256(message)
	for name, s := range signers {
		got, err := s.signRS256(message)
		if err != nil {
			tb.Fatalf("%s: sign %d bytes: %v", name, len(message), err)
		}
		if !bytes.Equal(got, want) {
			tb.Fatalf("%s: signature of %d bytes (%x…) differs from crypto/rsa's (%x…)", name, len(message), got[:8], want[:8])
		}
		if err := rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, digest[:], got); err != nil {
			tb.Fatalf("%s: crypto/rsa rejects the signature: %v", name, err)
		}
	}
}

func signersFor(tb testing.TB, priv *rsa.PrivateKey) map[string]rsaSigner {
	signers := map[string]rsaSigner{}
	for _, impl := range implementations() {
		signers[impl.name] = mustSigner(tb, impl, priv)
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
	for ki, priv := range testKeys() {
		signers := signersFor(t, priv)
		t.Run(fmt.Sprintf("key %d (%d bits)", ki, priv.N.BitLen()), func(t *testing.T) {
			for _, tc := range tests {
				checkSignature(t, signers, priv, tc.message)
			}
		})
	}
}

func FuzzSignersAgree(f *testing.F) {
	f.Add([]byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0"), uint8(0))
	f.Add([]byte{}, uint8(2))
	keys := testKeys()
	signers := make([]map[string]rsaSigner, len(keys))
	for i, priv := range keys {
		signers[i] = signersFor(f, priv)
	}
	f.Fuzz(func(t *testing.T, message []byte, key uint8) {
		i := int(key) % len(keys)
		checkSignature(t, signers[i], keys[i], message)
	})
}

func TestConcurrentSigning(t *testing.T) {
	priv := testKeys()[0]
	const goroutines, each = 8, 25
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			s := mustSigner(t, impl, priv)
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
						got, err := s.signRS256(msgs[i])
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
			s, err := impl.new(priv)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 6 {
				wg.Go(func() {
					<-start
					for {
						got, err := s.signRS256(msg)
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
			s.signRS256(msg) // at least one signature overlaps the others
			s.close()
			wg.Wait()
			if _, err := s.signRS256(msg); !errors.Is(err, errSignerClosed) {
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
					s, err := impl.new(keys[i%len(keys)])
					if err != nil {
						t.Fatal(err)
					}
					if _, err := s.signRS256(msg); err != nil {
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
	header, _ := encodeHeader("KtWTBnXq3w0J9CTe3nWbdq4Bd0Pxt3z0wO0x9fD1ZqE")
	claims := `{"iss":"https://auth.example.com","sub":"5ana4c7hmpdk","aud":"https://api.example.com",` +
		`"client_id":"5ana4c7hmpdk","scope":"orders:read orders:write","iat":1767225600,"exp":1767236400,"jti":"Xq3w0J9CTe3n"}`
	return b64url.AppendEncode(header, []byte(claims))
}()

func BenchmarkSignRS256(b *testing.B) {
	priv := testKeys()[0]
	for _, impl := range implementations() {
		b.Run(impl.name, func(b *testing.B) {
			s := mustSigner(b, impl, priv)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.signRS256(benchMessage); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(impl.name+"/parallel", func(b *testing.B) {
			s := mustSigner(b, impl, priv)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.signRS256(benchMessage); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
