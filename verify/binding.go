package verify

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tokensmith/tokensmith/dpop"
)

// DPoPConfig says how requests with DPoP-bound tokens (RFC 9449 §7) are checked.
type DPoPConfig struct {
	// ExternalURL is this API's base URL as its callers address it: scheme, host and any
	// path prefix a proxy strips before the request arrives. A proof's htu must be it plus the
	// request's path. When empty, the request's own URL is used (https when it came over TLS,
	// the Host header): right for an API that terminates TLS itself, wrong behind a proxy.
	ExternalURL string
	// Algorithms are accepted for proofs (dpop.Algorithms when nil: RS256, PS256, ES256 and
	// EdDSA); none and HMAC never are.
	Algorithms []string
	// Window is how far a proof's iat may be from this server's clock (dpop.DefaultWindow,
	// 60 s, when 0).
	Window time.Duration
	// Replay remembers every accepted proof for the window, so that a copied proof is refused.
	// A cache in this process's memory when nil: give every replica of the API one shared
	// cache (Redis SET NX with an expiry is one) or a proof copied from one replica's traffic
	// is good once on each of the others.
	Replay ReplayCache
}

// ReplayCache remembers DPoP proofs. Implementations must be safe for concurrent use.
type ReplayCache interface {
	// Use records key until exp and reports true, or reports false when key is already
	// recorded and has not expired. It must decide atomically: of two concurrent calls with
	// one key, one gets true.
	Use(ctx context.Context, key string, exp time.Time) (bool, error)
}

// NewMemoryReplayCache returns a ReplayCache in this process's memory, holding at most max
// entries (expired ones are dropped as new ones come; when it is full of live ones, Use
// fails and the request is answered 503 rather than let a proof through twice).
func NewMemoryReplayCache(max int) ReplayCache {
	return &memoryReplay{max: max, seen: map[string]time.Time{}, now: time.Now}
}

type memoryReplay struct {
	mu        sync.Mutex
	max       int
	seen      map[string]time.Time
	lastSweep time.Time
	now       func() time.Time
}

var errReplayFull = errors.New("the DPoP replay cache is full")

func (m *memoryReplay) Use(_ context.Context, key string, exp time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if until, ok := m.seen[key]; ok && now.Before(until) {
		return false, nil
	}
	if len(m.seen) >= m.max || now.Sub(m.lastSweep) > time.Minute {
		for k, until := range m.seen {
			if !now.Before(until) {
				delete(m.seen, k)
			}
		}
		m.lastSweep = now
		if len(m.seen) >= m.max {
			return false, errReplayFull
		}
	}
	m.seen[key] = exp
	return true, nil
}

// defaultReplayEntries bounds the default cache: at 60 s per proof, 1,000 requests/s.
const defaultReplayEntries = 100_000

// Confirmation is the cnf claim of a sender-constrained token (RFC 7800): the key or the
// certificate a token is bound to. Both are empty for a bearer token.
type Confirmation struct {
	// JKT is the RFC 7638 thumbprint of the DPoP key (RFC 9449 §6).
	JKT string `json:"jkt,omitempty"`
	// X5TS256 is the SHA-256 thumbprint of the client certificate (RFC 8705 §3.1).
	X5TS256 string `json:"x5t#S256,omitempty"`
}

// Bound reports whether the token is bound to a key or a certificate.
func (c Confirmation) Bound() bool { return c.JKT != "" || c.X5TS256 != "" }

// RequireBinding refuses bearer tokens on a route: only a DPoP-bound token with its proof or
// a certificate-bound token over the connection with its certificate is let through.
func RequireBinding() Option { return func(rt *Route) { rt.bound = true } }

// Authorization schemes a token can come with.
const (
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// checkProof validates a request's DPoP proof for tok before the token itself is verified,
// so a bad proof costs no key fetch or introspection; the key is matched with the token's
// cnf.jkt afterwards (bindProof).
func (rt *Route) checkProof(r *http.Request, tok string) (*dpop.Proof, error) {
	d := rt.v.dpop
	proofs := r.Header.Values(dpop.Header)
	if len(proofs) != 1 {
		desc := "the request carries no DPoP proof"
		if len(proofs) > 1 {
			desc = "the request carries more than one DPoP header"
		}
		return nil, rt.refuseDPoP(ErrProof, desc, nil)
	}
	htu, err := rt.v.requestURL(r)
	if err != nil {
		return nil, rt.refuseDPoP(ErrMalformedRequest, "the request URL cannot be checked", err)
	}
	p, err := dpop.Check(proofs[0], dpop.Expect{Method: r.Method, URL: htu, AccessToken: tok, Now: rt.v.now(),
		Window: d.Window, Algorithms: d.Algorithms})
	if err != nil {
		var pe *dpop.ProofError
		if errors.As(err, &pe) {
			return nil, rt.refuseDPoP(ErrProof, pe.Description, err)
		}
		return nil, rt.refuseDPoP(ErrProof, "the DPoP proof cannot be checked", err)
	}
	return p, nil
}

// bindProof completes a DPoP request once the token is verified: the proof's key is the one
// the token is bound to, and the proof was not used before.
func (rt *Route) bindProof(ctx context.Context, p *dpop.Proof, c *Claims) error {
	d := rt.v.dpop
	if c.Confirmation.JKT == "" {
		return rt.refuseDPoP(ErrBinding, "the token is not bound to a DPoP key: send it as Bearer", nil)
	}
	if subtle.ConstantTimeCompare([]byte(p.Thumbprint), []byte(c.Confirmation.JKT)) != 1 {
		return rt.refuseDPoP(ErrProof, "the DPoP proof is signed by another key than the one the token is bound to", nil)
	}
	window := d.Window
	if window <= 0 {
		window = dpop.DefaultWindow
	}
	fresh, err := d.Replay.Use(ctx, p.ReplayKey(), p.IssuedAt.Add(window))
	switch {
	case err != nil:
		return refuse(ErrUnavailable, "the DPoP replay cache cannot be reached", err)
	case !fresh:
		return rt.refuseDPoP(ErrProof, "the DPoP proof was used before: sign a new one for every request", nil)
	}
	return nil
}

// checkBinding refuses a sender-constrained token that came without what binds it: a
// DPoP-bound token sent as Bearer (RFC 9449 §7.2), a certificate-bound token over a
// connection without that certificate (RFC 8705 §3), and, on a RequireBinding route, a bearer
// token.
func (rt *Route) checkBinding(r *http.Request, scheme string, c *Claims) error {
	conf := c.Confirmation
	if conf.JKT != "" && scheme != schemeDPoP {
		return rt.refuseDPoP(ErrBinding, "the token is bound to a DPoP key: send it as Authorization: DPoP with a proof", nil)
	}
	if conf.X5TS256 != "" {
		cert := rt.v.clientCert(r)
		if cert == nil {
			return refuse(ErrBinding, "the token is bound to a client certificate, and the connection presented none", nil)
		}
		sum := sha256.Sum256(cert.Raw)
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(conf.X5TS256)) != 1 {
			return refuse(ErrBinding, "the token is bound to another client certificate than the connection's", nil)
		}
	}
	if rt.bound && !conf.Bound() {
		return rt.refuseDPoP(ErrBinding, "this API accepts only sender-constrained tokens (DPoP or a client certificate)", nil)
	}
	return nil
}

// refuseDPoP is refuse with a DPoP challenge (RFC 9449 §7.1): a client that sent DPoP, or
// should have, learns which algorithms its proofs may use.
func (rt *Route) refuseDPoP(reason error, description string, cause error) *Error {
	e := refuse(reason, description, cause)
	e.scheme, e.algs = schemeDPoP, rt.v.dpopAlgs
	return e
}

// requestURL is the URL a proof's htu must name: the configured external base plus the path,
// or the request's own scheme and host.
func (v *Verifier) requestURL(r *http.Request) (string, error) {
	if base := v.dpop.ExternalURL; base != "" {
		return strings.TrimRight(base, "/") + r.URL.EscapedPath(), nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if r.Host == "" {
		return "", errors.New("no Host")
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath(), nil
}

// clientCert is the client certificate of the request's connection, or what
// Config.ClientCertificate finds (a proxy's header).
func (v *Verifier) clientCert(r *http.Request) *x509.Certificate {
	if v.certOf != nil {
		return v.certOf(r)
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0]
	}
	return nil
}
