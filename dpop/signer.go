package dpop

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Signer makes DPoP proofs with one key. It remembers the last nonce each server (origin)
// sent in DPoP-Nonce and puts it in the next proof for that server. Safe for concurrent use.
type Signer struct {
	key   crypto.Signer
	alg   jose.SignatureAlgorithm
	jwk   jose.JSONWebKey
	thumb string
	now   func() time.Time

	mu     sync.Mutex
	nonces map[string]string
}

// NewSigner returns a Signer for key: an *ecdsa.PrivateKey on P-256 (ES256), an
// ed25519.PrivateKey (EdDSA) or an *rsa.PrivateKey of at least 2048 bits (PS256; RS256 with
// NewSignerFor). Keep the key for as long as the tokens bound to it are used: a new key means
// new tokens.
func NewSigner(key crypto.Signer) (*Signer, error) {
	algs, ok := algorithmsFor(key.Public())
	if !ok {
		return nil, fmt.Errorf("dpop: a %T cannot sign proofs (P-256, Ed25519 or RSA of 2048 bits or more)", key)
	}
	return NewSignerFor(key, algs[len(algs)-1])
}

// NewSignerFor is NewSigner with the algorithm named: one of Algorithms that fits the key.
func NewSignerFor(key crypto.Signer, alg string) (*Signer, error) {
	if !keyFitsAlgorithm(key.Public(), alg) {
		return nil, fmt.Errorf("dpop: %s does not fit a %T", alg, key)
	}
	// go-jose signs with the standard library's key types; fail here rather than at the
	// first request for a key it cannot use.
	if _, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, nil); err != nil {
		return nil, fmt.Errorf("dpop: %w (use an *ecdsa.PrivateKey, ed25519.PrivateKey or *rsa.PrivateKey)", err)
	}
	jwk := jose.JSONWebKey{Key: key.Public()}
	thumb, err := Thumbprint(&jwk)
	if err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	return &Signer{key: key, alg: jose.SignatureAlgorithm(alg), jwk: jwk, thumb: thumb, now: time.Now,
		nonces: map[string]string{}}, nil
}

// Thumbprint is the key's RFC 7638 thumbprint: the cnf.jkt of the tokens bound to it.
func (s *Signer) Thumbprint() string { return s.thumb }

// Algorithm is the alg of the proofs.
func (s *Signer) Algorithm() string { return string(s.alg) }

// Proof returns a proof for a request of method to rawURL (its query and fragment are left
// out of htu), bound to accessToken when it is not empty (ath). It carries the nonce last
// seen from that server, if any.
func (s *Signer) Proof(method, rawURL, accessToken string) (string, error) {
	htu, err := NormalizeURL(rawURL)
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	return s.proof(method, htu, accessToken, s.nonce(htu))
}

func (s *Signer) proof(method, htu, accessToken, nonce string) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	claims := map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"htm": method, "htu": htu, "iat": s.now().Unix(),
	}
	if accessToken != "" {
		claims["ath"] = TokenHash(accessToken)
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(ProofType)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	return jws.CompactSerialize()
}

// origin is the scheme and host of a normalised URL: nonces are per server.
func origin(htu string) string {
	scheme, rest, _ := strings.Cut(htu, "://")
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host
}

func (s *Signer) nonce(htu string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nonces[origin(htu)]
}

func (s *Signer) remember(htu, nonce string) {
	if nonce == "" || len(nonce) > 1024 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonces[origin(htu)] = nonce
}

// Transport returns an http.RoundTripper that adds a proof to every request sent through
// base (http.DefaultTransport when nil): bound to the access token when the request carries
// "Authorization: DPoP <token>". When a server answers use_dpop_nonce (400 from a token
// endpoint, 401 with a DPoP challenge from a resource server), the request is sent once more
// with the nonce it gave, if its body can be read again (http.NewRequest arranges that for
// the usual bodies).
func (s *Signer) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{s: s, base: base}
}

type transport struct {
	s    *Signer
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	htu, err := NormalizeURL(req.URL.String())
	if err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	var token string
	if scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "DPoP") {
		token = strings.TrimSpace(tok)
	}
	send := func(r *http.Request) (*http.Response, error) {
		proof, err := t.s.proof(r.Method, htu, token, t.s.nonce(htu))
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
		r.Header.Set(Header, proof)
		resp, err := t.base.RoundTrip(r)
		if err == nil {
			t.s.remember(htu, resp.Header.Get(NonceHeader))
		}
		return resp, err
	}
	resp, err := send(req)
	if err != nil || !asksForNonce(resp) || resp.Header.Get(NonceHeader) == "" {
		return resp, err
	}
	retry := req
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil
		}
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry = req.Clone(req.Context())
		retry.Body = body
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return send(retry)
}

// asksForNonce recognises use_dpop_nonce: in a token endpoint's JSON error (RFC 9449 §8) or a
// resource server's DPoP challenge (§9). The body is put back for the caller.
func asksForNonce(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		for _, c := range resp.Header.Values("WWW-Authenticate") {
			if strings.HasPrefix(strings.ToLower(c), "dpop") && strings.Contains(c, `error="use_dpop_nonce"`) {
				return true
			}
		}
		return false
	case http.StatusBadRequest:
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		if err != nil {
			return false
		}
		var e struct {
			Error string `json:"error"`
		}
		return json.Unmarshal(raw, &e) == nil && e.Error == ErrUseNonce.Error()
	}
	return false
}

// algorithmsFor lists the algorithms a public key may sign proofs with, the preferred last.
func algorithmsFor(pub any) ([]string, bool) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return []string{"ES256"}, true
		}
	case ed25519.PublicKey:
		return []string{"EdDSA"}, true
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return []string{"RS256", "PS256"}, true
		}
	}
	return nil, false
}
