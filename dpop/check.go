// Package dpop implements DPoP (RFC 9449), proof-of-possession for OAuth 2.0 tokens: a client
// signs a short JWT (a proof) for every request with a key it keeps, and a token issued
// against that key is useless to whoever copies it without the key.
//
// The package has both halves. Check validates a proof, as an authorization server's token
// endpoint and a resource server (package verify) do. Signer makes proofs, and its Transport
// signs every request of an http.Client and retries once when the server asks for a nonce, so
// a Go caller needs no DPoP code of its own:
//
//	signer, _ := dpop.NewSigner(key) // an *ecdsa.PrivateKey (P-256), ed25519.PrivateKey or *rsa.PrivateKey
//	client := &http.Client{Transport: signer.Transport(nil)}
//	ctx := context.WithValue(ctx, oauth2.HTTPClient, client)
//	src := cfg.TokenSource(ctx) // golang.org/x/oauth2/clientcredentials: token_type "DPoP"
//	api := &http.Client{Transport: &oauth2.Transport{Source: src, Base: client.Transport}}
//
// golang.org/x/oauth2 sends a token whose token_type is DPoP as "Authorization: DPoP …", and
// the Transport underneath adds the proof bound to it (ath).
package dpop

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Header names of RFC 9449.
const (
	// Header carries the proof on a request.
	Header = "DPoP"
	// NonceHeader carries a server-provided nonce on a response (RFC 9449 §8, §9).
	NonceHeader = "DPoP-Nonce"
	// ProofType is the typ of every proof's JOSE header.
	ProofType = "dpop+jwt"
)

// Algorithms are the proof signature algorithms accepted by default: the asymmetric ones
// Tokensmith signs with. none and HMAC can never be accepted: a proof is checked with the
// public key it carries.
var Algorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// DefaultWindow is how far a proof's iat may be from the checker's clock, either way.
const DefaultWindow = 60 * time.Second

// maxProofLen bounds what is parsed at all: a proof with an RSA-4096 key is under 2 KB.
const maxProofLen = 8192

// maxJTILen bounds the jti a replay cache must remember.
const maxJTILen = 256

// Errors Check returns, matched with errors.Is. Every one is also a *ProofError, whose
// Description says which check failed.
var (
	// ErrInvalidProof: the proof is malformed, signed wrongly, or does not match the request
	// (error code invalid_dpop_proof).
	ErrInvalidProof = errors.New("invalid_dpop_proof")
	// ErrUseNonce: the proof lacks the server's current nonce, or carries an old one (error
	// code use_dpop_nonce); the caller retries with the nonce of the DPoP-Nonce header.
	ErrUseNonce = errors.New("use_dpop_nonce")
)

// ProofError is a refused proof: Code is invalid_dpop_proof or use_dpop_nonce, Description
// says why in words safe to show the caller (it never echoes the proof).
type ProofError struct {
	Code        string
	Description string
	reason      error
}

func (e *ProofError) Error() string { return e.Code + ": " + e.Description }

// Is matches ErrInvalidProof or ErrUseNonce.
func (e *ProofError) Is(target error) bool { return target == e.reason }

func invalid(format string, args ...any) error {
	return &ProofError{Code: ErrInvalidProof.Error(), Description: "DPoP proof: " + fmt.Sprintf(format, args...), reason: ErrInvalidProof}
}

// Expect is what a proof must match.
type Expect struct {
	// Method is the request's HTTP method (htm).
	Method string
	// URL is the request's URL as the client addressed it (htu): scheme, host and path; a
	// query and fragment are ignored on both sides, and both are normalised (RFC 3986 §6)
	// before comparing. Behind a proxy, build it from the external URL, not from the Host a
	// request reached.
	URL string
	// AccessToken, when set, must be what the proof's ath hashes: a resource request.
	AccessToken string
	// Thumbprint, when set, is the RFC 7638 thumbprint the proof's key must have: the token's
	// cnf.jkt at a resource server, a refresh token's key at the token endpoint.
	Thumbprint string
	// Nonces, when not empty, lists the nonces the server currently accepts; a proof without
	// one of them is refused with ErrUseNonce.
	Nonces []string
	// Now is the checker's time; Window (DefaultWindow when 0) how far iat may be from it.
	Now    time.Time
	Window time.Duration
	// Algorithms are accepted (Algorithms when nil).
	Algorithms []string
}

// Proof is what a valid proof says.
type Proof struct {
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the proof's key, base64url: the
	// cnf.jkt of a token bound to it.
	Thumbprint string
	// ID is the proof's jti. A proof is one-time: remember (Thumbprint, ID) until
	// IssuedAt + the window and refuse it again (see the callers' replay caches).
	ID        string
	IssuedAt  time.Time
	Algorithm string
	Nonce     string
}

// ReplayKey is what a replay cache remembers of p: a jti is unique per key, not globally.
func (p *Proof) ReplayKey() string { return p.Thumbprint + "." + p.ID }

type proofClaims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.Number     `json:"iat"`
	ATH   string          `json:"ath"`
	Nonce json.RawMessage `json:"nonce"`
}

// Check validates a proof (RFC 9449 §4.3) against e. The algorithm is checked before the key
// is looked at; the key must be the public key the header carries (no private members, no
// x5c or jku to follow); then the signature, then the claims. Replay is the caller's: keep
// Proof.ReplayKey for the window.
func Check(proof string, e Expect) (*Proof, error) {
	if proof == "" {
		return nil, invalid("the request carries no DPoP header")
	}
	if len(proof) > maxProofLen {
		return nil, invalid("longer than %d characters", maxProofLen)
	}
	algs := e.Algorithms
	if algs == nil {
		algs = Algorithms
	}
	accepted := make([]jose.SignatureAlgorithm, 0, len(algs))
	for _, a := range algs {
		if up := strings.ToUpper(a); up == "NONE" || strings.HasPrefix(up, "HS") {
			continue
		}
		accepted = append(accepted, jose.SignatureAlgorithm(a))
	}
	jws, err := jose.ParseSignedCompact(proof, accepted)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return nil, invalid("alg %s is not accepted (only %s)", printable(string(alg.Got)), strings.Join(algs, ", "))
		}
		if holdsPrivateKey(proof) {
			return nil, invalid("the jwk holds a private key")
		}
		return nil, invalid("not a well-formed signed JWT")
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("not a well-formed signed JWT")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, ProofType) {
		return nil, invalid("typ must be %s", ProofType)
	}
	jwk := h.JSONWebKey
	switch {
	case jwk == nil:
		return nil, invalid("the header carries no jwk")
	case !jwk.IsPublic():
		return nil, invalid("the jwk holds a private key")
	case !jwk.Valid():
		return nil, invalid("the jwk is not a valid key")
	case !keyFitsAlgorithm(jwk.Key, h.Algorithm):
		return nil, invalid("the jwk is not a key for %s", printable(h.Algorithm))
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, invalid("the signature does not verify with the header's jwk")
	}
	var c proofClaims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, invalid("the claims do not parse")
	}
	iatSec, err := c.IAT.Int64()
	switch {
	case c.JTI == "":
		return nil, invalid("jti is missing")
	case len(c.JTI) > maxJTILen:
		return nil, invalid("jti is longer than %d bytes", maxJTILen)
	case c.HTM == "" || c.HTU == "" || c.IAT == "" || err != nil:
		return nil, invalid("htm, htu and a numeric iat are required")
	case c.HTM != e.Method:
		return nil, invalid("htm %s is not this request's method %s", printable(c.HTM), e.Method)
	}
	want, err := NormalizeURL(e.URL)
	if err != nil {
		return nil, fmt.Errorf("dpop: the expected URL: %w", err)
	}
	if got, err := NormalizeURL(c.HTU); err != nil || got != want {
		return nil, invalid("htu is not this endpoint's URL %s", want)
	}
	window := e.Window
	if window <= 0 {
		window = DefaultWindow
	}
	iat := time.Unix(iatSec, 0)
	if d := iat.Sub(e.Now); d > window || d < -window {
		return nil, invalid("iat is more than %s from the server's time", window)
	}
	if e.AccessToken != "" {
		if c.ATH == "" {
			return nil, invalid("ath is missing: the proof must hash the access token it is sent with")
		}
		if c.ATH != TokenHash(e.AccessToken) {
			return nil, invalid("ath is not the hash of the access token sent")
		}
	}
	thumb, err := Thumbprint(jwk)
	if err != nil {
		return nil, invalid("the jwk has no thumbprint")
	}
	if e.Thumbprint != "" && thumb != e.Thumbprint {
		return nil, invalid("the proof's key is not the key the token is bound to")
	}
	var nonce string
	if len(c.Nonce) > 0 {
		if err := json.Unmarshal(c.Nonce, &nonce); err != nil {
			return nil, invalid("nonce must be a string")
		}
	}
	if len(e.Nonces) > 0 && !slices.Contains(e.Nonces, nonce) {
		desc := "DPoP proof: the server's current nonce is required (DPoP-Nonce)"
		if nonce != "" {
			desc = "DPoP proof: the nonce is no longer valid; use the one in DPoP-Nonce"
		}
		return nil, &ProofError{Code: ErrUseNonce.Error(), Description: desc, reason: ErrUseNonce}
	}
	return &Proof{Thumbprint: thumb, ID: c.JTI, IssuedAt: iat, Algorithm: h.Algorithm, Nonce: nonce}, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key, base64url without padding:
// the value of cnf.jkt.
func Thumbprint(jwk *jose.JSONWebKey) (string, error) {
	pub := jwk.Public()
	sum, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// TokenHash is the ath of a proof sent with an access token: its SHA-256, base64url.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// NormalizeURL reduces a URL to what htu compares (RFC 9449 §4.3): no query or fragment,
// the scheme and host in lower case, no default port, an empty path as "/".
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme == "" || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", printable(raw))
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if scheme != "https" && scheme != "http" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", printable(raw))
	}
	if port := u.Port(); (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		host = strings.TrimSuffix(host, ":"+port)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// holdsPrivateKey reports whether a proof's header carries a private JWK, which go-jose
// refuses to parse: worth its own message, since the client has leaked its key.
func holdsPrivateKey(proof string) bool {
	seg, _, _ := strings.Cut(proof, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false
	}
	var h struct {
		JWK map[string]json.RawMessage `json:"jwk"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return false
	}
	for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := h.JWK[m]; ok {
			return true
		}
	}
	return false
}

// keyFitsAlgorithm: an RSA key for RS256/PS256, a P-256 key for ES256, an Ed25519 key for
// EdDSA; go-jose would verify some mismatches (a P-384 key with ES256) that RFC 7518 forbids.
func keyFitsAlgorithm(key any, alg string) bool {
	got, ok := algorithmsFor(key)
	return ok && slices.Contains(got, alg)
}

func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, s)
}
