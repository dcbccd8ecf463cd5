package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// Bounds on how long a fetched JWKS is trusted, whatever its Cache-Control says: at least the
// refresh interval (max-age=0 must not mean a fetch per request), at most a day (a key
// removed from the set must stop verifying eventually).
const (
	defaultJWKSAge = 5 * time.Minute
	maxJWKSAge     = 24 * time.Hour
	maxJWKSBytes   = 1 << 20
	minRSABits     = 2048
)

// keySet is the cached JWKS.
//
// A token whose kid is cached and fresh costs nothing. A kid that is cached but stale is
// answered from the cache while one background fetch renews it, so a slow or dead JWKS
// endpoint never delays a request that can be verified. A kid that is not cached makes the
// request wait for a fetch; such refetches are at most one per interval, however many unknown
// kids arrive, and concurrent callers share one (singleflight); a refetch that brings nothing
// new answers them all "unknown key". The budget for unknown kids is kept apart from the
// renewals and the first fetch, so that the first token of a rotated key is not refused just
// because the cache was filled a moment before. When a fetch fails, the keys from before stay
// in use (served stale) and no fetch of any kind is tried for an interval.
type keySet struct {
	url      func(context.Context) (string, error)
	client   *http.Client
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	group singleflight.Group

	mu         sync.Mutex
	keys       map[string]publicKey // nil until the first successful fetch
	expires    time.Time            // end of the cache lifetime of keys
	attempt    time.Time            // start of the last fetch, successful or not
	lastErr    error                // error of the last fetch, nil after a success
	kidFetched time.Time            // start of the last fetch made for an unknown kid
	fetching   bool                 // a background renewal is running
}

// Why a fetch is asked for; each has its own limit (allowed).
type fetchReason int

const (
	forced     fetchReason = iota // Verifier.Refresh
	renewal                       // the cache lifetime ran out
	unknownKid                    // a token names a kid that is not cached
)

// publicKey is a published key and the one algorithm it verifies.
type publicKey struct {
	pub any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	alg jose.SignatureAlgorithm
}

// key returns the public key named kid.
func (s *keySet) key(ctx context.Context, kid string) (publicKey, error) {
	s.mu.Lock()
	k, ok := s.keys[kid]
	if ok {
		if !s.fetching && s.allowed(renewal, s.now()) {
			s.fetching = true
			go func() {
				_ = s.refresh(context.Background(), renewal)
				s.mu.Lock()
				s.fetching = false
				s.mu.Unlock()
			}()
		}
		s.mu.Unlock()
		return k, nil
	}
	s.mu.Unlock()

	if err := s.refresh(ctx, unknownKid); err != nil && !errors.Is(err, errNotDue) {
		var e *Error
		if errors.As(err, &e) {
			return publicKey{}, e
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	if s.lastErr != nil {
		// The token may name a key the endpoint would have given us: not the caller's fault.
		return publicKey{}, refuse(ErrUnavailable, "the signing keys cannot be fetched", s.lastErr)
	}
	return publicKey{}, refuse(ErrUnknownKey, "the token is signed with an unknown key", nil)
}

// busy reports whether a background renewal is running (tests wait for it).
func (s *keySet) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetching
}

// allowed reports whether a fetch for reason may start now. After a failure nothing is tried
// for an interval; a renewal waits for the cache lifetime to run out; a refetch for an unknown
// kid waits an interval after the previous one. Callers hold s.mu.
func (s *keySet) allowed(reason fetchReason, now time.Time) bool {
	if reason == forced {
		return true
	}
	if s.lastErr != nil && now.Sub(s.attempt) < s.interval {
		return false
	}
	switch {
	case s.keys == nil:
		return true
	case reason == renewal:
		return !now.Before(s.expires)
	default:
		return s.kidFetched.IsZero() || now.Sub(s.kidFetched) >= s.interval
	}
}

var errNotDue = errors.New("a fetch is not due")

// refresh fetches the JWKS, or joins the fetch in progress. Whether a fetch is allowed is
// decided when the shared call runs, which is what bounds a flood of unknown kids to one fetch
// per interval. The fetch itself is detached from ctx (a caller giving up must not fail the
// others waiting on it); the caller stops waiting when ctx ends.
func (s *keySet) refresh(ctx context.Context, reason fetchReason) error {
	ch := s.group.DoChan("jwks", func() (any, error) {
		s.mu.Lock()
		now := s.now()
		if !s.allowed(reason, now) {
			err := s.lastErr
			s.mu.Unlock()
			if err == nil {
				err = errNotDue
			}
			return nil, err
		}
		s.attempt = now
		if reason == unknownKid && s.keys != nil {
			s.kidFetched = now
		}
		s.mu.Unlock()

		fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultHTTPTimeout)
		defer cancel()
		keys, age, err := s.fetch(fetchCtx)

		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			if s.lastErr == nil {
				s.log.Warn("JWKS fetch failed: verifying with the keys fetched before, if any", "error", err)
			}
			s.lastErr = err
			return nil, err
		}
		if s.lastErr != nil && s.keys != nil {
			s.log.Info("JWKS fetched again", "keys", len(keys))
		}
		s.keys, s.expires, s.lastErr = keys, s.now().Add(age), nil
		return nil, nil
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return refuse(ErrUnavailable, "the signing keys cannot be fetched", ctx.Err())
	}
}

// fetch GETs the JWKS and returns its signing keys by kid and how long to trust them.
func (s *keySet) fetch(ctx context.Context) (map[string]publicKey, time.Duration, error) {
	u, err := s.url(ctx)
	if err != nil {
		return nil, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("JWKS %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("JWKS %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("JWKS %s: status %d", u, resp.StatusCode)
	}
	if len(body) > maxJWKSBytes {
		return nil, 0, fmt.Errorf("JWKS %s: larger than %d bytes", u, maxJWKSBytes)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, 0, fmt.Errorf("JWKS %s: %w", u, err)
	}
	return keys, lifetime(resp.Header, s.interval, s.now()), nil
}

// parseJWKS keeps the keys that can verify one of Tokensmith's algorithms: use sig (or none
// given), a kid, and a key type that fits the alg member: RSA of 2048 bits or more for RS256
// or PS256, P-256 for ES256, Ed25519 for EdDSA. A key without alg is taken for the one
// algorithm its type implies (RSA: RS256, as JWKS without alg members have always meant;
// P-256: ES256; Ed25519: EdDSA), never for PS256. A set may hold keys of other types and
// algorithms (RFC 7517 §5: skip what is not understood), so one such key does not spoil the
// others. Which algorithms a token may use is the Verifier's to decide, not the set's.
func parseJWKS(body []byte) (map[string]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New("not a JWK set: no keys member")
	}
	out := make(map[string]publicKey, len(set.Keys))
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || k.KeyID == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		alg := jose.SignatureAlgorithm(k.Algorithm)
		var implied []jose.SignatureAlgorithm // the algorithms this key type can be for, implied first
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() >= minRSABits {
				implied = []jose.SignatureAlgorithm{jose.RS256, jose.PS256}
			}
		case *ecdsa.PublicKey:
			if pub.Curve == elliptic.P256() {
				implied = []jose.SignatureAlgorithm{jose.ES256}
			}
		case ed25519.PublicKey:
			implied = []jose.SignatureAlgorithm{jose.EdDSA}
		}
		switch {
		case len(implied) == 0:
			continue
		case alg == "":
			alg = implied[0]
		case !slices.Contains(implied, alg):
			continue
		}
		out[k.KeyID] = publicKey{pub: k.Key, alg: alg}
	}
	return out, nil
}

// lifetime reads how long a response may be cached (RFC 9111 §4.2.1: max-age, less Age; else
// Expires less Date), within [interval, maxJWKSAge]; defaultJWKSAge when it says nothing.
func lifetime(h http.Header, interval time.Duration, now time.Time) time.Duration {
	age, found := time.Duration(0), false
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			age, found = 0, true
		case "max-age":
			if n, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && n >= 0 && !found {
				age, found = time.Duration(min(n, int64(maxJWKSAge/time.Second)))*time.Second, true
			}
		}
	}
	if found {
		if a, err := strconv.ParseInt(h.Get("Age"), 10, 64); err == nil && a > 0 {
			age -= time.Duration(min(a, int64(maxJWKSAge/time.Second))) * time.Second
		}
	} else if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			date = now
		}
		age, found = exp.Sub(date), true
	}
	if !found {
		age = defaultJWKSAge
	}
	return min(max(age, interval), maxJWKSAge)
}
