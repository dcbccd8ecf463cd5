//go:build openssl && cgo

package keys

/*
#cgo CFLAGS: -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED
#cgo LDFLAGS: -lcrypto
#cgo noescape ts_import
#cgo nocallback ts_import
#cgo noescape ts_new_ctx
#cgo nocallback ts_new_ctx
#cgo noescape ts_sign
#cgo nocallback ts_sign
#cgo noescape ERR_error_string_n
#cgo nocallback ERR_error_string_n

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "the openssl signer needs the OpenSSL 3 headers (Debian: libssl-dev 3.x)"
#endif

// ts_take_error returns the first error queued by the call that just failed and empties the
// queue. The queue belongs to the thread, and the goroutine's next cgo call may run on
// another one, so it is read inside the C call that failed and never left for a later one.
static unsigned long ts_take_error(void) {
	unsigned long e = ERR_get_error();
	ERR_clear_error();
	return e;
}

static EVP_PKEY *ts_import(const unsigned char *der, long len, unsigned long *err) {
	ERR_clear_error();
	const unsigned char *p = der;
	EVP_PKEY *k = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, len);
	if (k == NULL) {
		*err = ts_take_error();
	}
	return k;
}

// ts_new_ctx returns a context ready for EVP_PKEY_sign with SHA-256 and either
// RSASSA-PKCS1-v1_5 (pss 0, RS256) or RSASSA-PSS with MGF1-SHA-256 and a salt as long as the
// digest (pss 1, PS256: RFC 7518 §3.5). OpenSSL lets one initialised context sign any number of
// digests with the same parameters (PSS draws a fresh salt each time), so contexts are made
// once per key, not per signature (which costs a few microseconds of provider look-ups).
static EVP_PKEY_CTX *ts_new_ctx(EVP_PKEY *k, int pss, unsigned long *err) {
	ERR_clear_error();
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (c == NULL || EVP_PKEY_sign_init(c) <= 0
		|| EVP_PKEY_CTX_set_rsa_padding(c, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) <= 0
		|| EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) <= 0
		|| (pss && (EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) <= 0
			|| EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) <= 0))) {
		*err = ts_take_error();
		EVP_PKEY_CTX_free(c);
		return NULL;
	}
	return c;
}

static int ts_sign(EVP_PKEY_CTX *c, const unsigned char *digest, size_t dlen,
		unsigned char *sig, size_t *siglen, unsigned long *err) {
	ERR_clear_error();
	if (EVP_PKEY_sign(c, sig, siglen, digest, dlen) <= 0) {
		*err = ts_take_error();
		return 0;
	}
	return 1;
}

static const char *ts_version(void) { return OpenSSL_version(OPENSSL_VERSION); }
*/
import "C"

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

const signerName = "openssl"

func signerVersion() string { return C.GoString(C.ts_version()) }

// newSigner signs RS256 and PS256 with OpenSSL; ES256 and EdDSA with the standard library,
// whose P-256 and Ed25519 are already fast.
func newSigner(alg string, priv crypto.Signer) (signer, error) {
	if err := checkKey(alg, priv); err != nil {
		return nil, err
	}
	rsaKey, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return newGoSigner(alg, priv)
	}
	s, err := newOpenSSLSigner(rsaKey, alg == PS256)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return s, nil
}

// opensslSigner signs with libcrypto: its RSA private-key operation is about four times
// faster than crypto/rsa's on the machines we measured.
type opensslSigner struct {
	// mu is held shared while signing and exclusively by close, so a key is never freed
	// under a signature in progress.
	mu      sync.RWMutex
	key     *evpKey // nil once closed
	cleanup runtime.Cleanup
}

// evpKey is what a signer holds outside the Go heap. It is separate from opensslSigner, and
// never points back to it, so that it can be the argument of the signer's cleanup.
type evpKey struct {
	pkey *C.EVP_PKEY
	size int // bytes in a signature
	// ctxs holds the key's initialised signing contexts, one per P. Taking one also caps the
	// signatures in progress at GOMAXPROCS: a cgo call holds its thread, and a burst of
	// requests would otherwise start a thread per request, all competing for the same cores.
	ctxs chan *C.EVP_PKEY_CTX
}

// newOpenSSLSigner imports priv into an EVP_PKEY once, to sign PS256 when pss is set and
// RS256 otherwise. The signer must be closed when its key stops signing; a cleanup frees it
// if that is forgotten.
func newOpenSSLSigner(priv *rsa.PrivateKey, pss bool) (*opensslSigner, error) {
	der := x509.MarshalPKCS1PrivateKey(priv)
	defer clear(der)
	k, err := importKey(der, pss)
	if err != nil {
		return nil, err
	}
	s := &opensslSigner{key: k}
	s.cleanup = runtime.AddCleanup(s, (*evpKey).free, k)
	return s, nil
}

// importKey imports a PKCS #1 RSAPrivateKey and prepares its signing contexts (PSS ones when
// pss is set).
func importKey(der []byte, pss bool) (*evpKey, error) {
	var code C.ulong
	pkey := C.ts_import((*C.uchar)(unsafe.Pointer(unsafe.SliceData(der))), C.long(len(der)), &code)
	if pkey == nil {
		return nil, opensslError("d2i_PrivateKey", code)
	}
	n := max(runtime.GOMAXPROCS(0), 1)
	k := &evpKey{pkey: pkey, size: int(C.EVP_PKEY_get_size(pkey)), ctxs: make(chan *C.EVP_PKEY_CTX, n)}
	var mode C.int
	if pss {
		mode = 1
	}
	for range n {
		ctx := C.ts_new_ctx(pkey, mode, &code)
		if ctx == nil {
			k.free()
			return nil, opensslError("EVP_PKEY_sign_init", code)
		}
		k.ctxs <- ctx
	}
	return k, nil
}

func (s *opensslSigner) sign(message []byte) ([]byte, error) {
	digest := sha256.Sum256(message)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.key == nil {
		return nil, errSignerClosed
	}
	return s.key.signDigest(digest[:])
}

// signDigest signs a SHA-256 digest. The signature is its only allocation: the digest, the
// length and the error code stay on the stack (cgo noescape).
func (k *evpKey) signDigest(digest []byte) ([]byte, error) {
	sig := make([]byte, k.size)
	n := C.size_t(len(sig))
	var code C.ulong
	ctx := <-k.ctxs
	ok := C.ts_sign(ctx, (*C.uchar)(unsafe.Pointer(unsafe.SliceData(digest))), C.size_t(len(digest)),
		(*C.uchar)(unsafe.Pointer(&sig[0])), &n, &code)
	k.ctxs <- ctx
	if ok == 0 {
		return nil, opensslError("EVP_PKEY_sign", code)
	}
	return sig[:n], nil
}

func (s *opensslSigner) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return
	}
	s.cleanup.Stop()
	s.key.free()
	s.key = nil
}

// free releases the contexts and the key. Every context must be idle: close holds the lock
// no signature runs without, and a cleanup runs only when no one can sign any more.
func (k *evpKey) free() {
	for {
		select {
		case ctx := <-k.ctxs:
			C.EVP_PKEY_CTX_free(ctx)
		default:
			C.EVP_PKEY_free(k.pkey)
			return
		}
	}
}

// opensslError turns an OpenSSL error code into a Go error with OpenSSL's own text.
func opensslError(fn string, code C.ulong) error {
	if code == 0 {
		return fmt.Errorf("keys: openssl %s failed without an error code", fn)
	}
	var buf [256]C.char
	C.ERR_error_string_n(code, &buf[0], C.size_t(len(buf)))
	return fmt.Errorf("keys: openssl %s: %s", fn, C.GoString(&buf[0]))
}
