// Package jwkscache fetches and caches a JSON Web Key Set (RFC 7517) published at a URL, with
// one discipline for every place Tokensmith trusts keys it does not hold: resource servers
// verifying access tokens (verify/) and the token endpoint verifying the assertions of clients
// that authenticate with a key (private_key_jwt). It honours Cache-Control, refetches on an
// unknown kid at most once per interval, and keeps serving the keys it has while the endpoint
// is unreachable.
package jwkscache

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
	DefaultAge      = 5 * time.Minute
	MaxAge          = 24 * time.Hour
	MaxBytes        = 1 << 20
	MinRSABits      = 2048
	DefaultTimeout  = 10 * time.Second
	DefaultInterval = 10 * time.Second
)

// Algorithms are the signature algorithms a key from a set can be for.
var Algorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// ErrUnknownKey means no key of the set has the kid asked for, even after a refetch.
var ErrUnknownKey = errors.New("unknown key")

// ErrUnavailable means the set could not be fetched and the key asked for is not cached. The key
// may well exist: whoever presented it is not at fault.
var ErrUnavailable = errors.New("the keys cannot be fetched")

// unavailable is ErrUnavailable with the fetch error behind it.
type unavailable struct{ cause error }

func (e unavailable) Error() string        { return ErrUnavailable.Error() + ": " + e.cause.Error() }
func (e unavailable) Is(target error) bool { return target == ErrUnavailable }
func (e unavailable) Unwrap() error        { return e.cause }

// Key is a published public key and the one algorithm it verifies.
type Key struct {
	// Public is an *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey.
	Public any
	// Alg is one of Algorithms.
	Alg string
}

// Config configures a Cache.
type Config struct {
	// URL answers where the set is published; it is asked before every fetch, so it may
	// discover the URL (OAuth metadata) and fail.
	URL func(ctx context.Context) (string, error)
	// Client makes the requests; one with DefaultTimeout when nil.
	Client *http.Client
	// Interval bounds the fetches that are not due to the cache lifetime running out
	// (DefaultInterval when 0).
	Interval time.Duration
	// Timeout bounds one fetch, whoever waits for it (DefaultTimeout when 0).
	Timeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Log hears when fetching starts failing and when it works again (slog.Default when nil).
	Log *slog.Logger
}

// Cache is one cached JWKS.
//
// A kid that is cached and fresh costs nothing. A kid that is cached but stale is answered
// from the cache while one background fetch renews it, so a slow or dead endpoint never delays
// a request that can be verified. A kid that is not cached makes the request wait for a fetch;
// such refetches are at most one per interval, however many unknown kids arrive, and
// concurrent callers share one (singleflight); a refetch that brings nothing new answers them
// all ErrUnknownKey. The budget for unknown kids is kept apart from the renewals and the first
// fetch, so that the first use of a rotated key is not refused just because the cache was
// filled a moment before. When a fetch fails, the keys from before stay in use (served stale)
// and no fetch of any kind is tried for an interval.
type Cache struct {
	url      func(context.Context) (string, error)
	client   *http.Client
	interval time.Duration
	timeout  time.Duration
	now      func() time.Time
	log      *slog.Logger

	group singleflight.Group

	mu         sync.Mutex
	keys       map[string]Key // nil until the first successful fetch
	expires    time.Time      // end of the cache lifetime of keys
	attempt    time.Time      // start of the last fetch, successful or not
	lastErr    error          // error of the last fetch, nil after a success
	kidFetched time.Time      // start of the last fetch made for an unknown kid
	fetching   bool           // a background renewal is running
}

// New returns an empty Cache; it fetches nothing until asked for a key or refreshed.
func New(cfg Config) *Cache {
	c := &Cache{url: cfg.URL, client: cfg.Client, interval: cfg.Interval, timeout: cfg.Timeout, now: cfg.Now, log: cfg.Log}
	if c.client == nil {
		c.client = &http.Client{Timeout: DefaultTimeout}
	}
	if c.interval <= 0 {
		c.interval = DefaultInterval
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c
}

// Why a fetch is asked for; each has its own limit (allowed).
type fetchReason int

const (
	forced     fetchReason = iota // Refresh
	renewal                       // the cache lifetime ran out
	unknownKid                    // a caller names a kid that is not cached
)

// Key returns the key named kid: from the cache, or after a fetch when it is not cached and a
// fetch is allowed. Errors match ErrUnknownKey or ErrUnavailable.
func (c *Cache) Key(ctx context.Context, kid string) (Key, error) {
	c.mu.Lock()
	k, ok := c.keys[kid]
	if ok {
		if !c.fetching && c.allowed(renewal, c.now()) {
			c.fetching = true
			go func() {
				_ = c.refresh(context.Background(), renewal)
				c.mu.Lock()
				c.fetching = false
				c.mu.Unlock()
			}()
		}
		c.mu.Unlock()
		return k, nil
	}
	c.mu.Unlock()

	if err := c.refresh(ctx, unknownKid); errors.Is(err, ErrUnavailable) && ctx.Err() != nil {
		return Key{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.keys[kid]; ok {
		return k, nil
	}
	if c.lastErr != nil {
		return Key{}, unavailable{c.lastErr}
	}
	return Key{}, ErrUnknownKey
}

// Find returns a key for which match is true: a cached one, or one found after a fetch when
// none is cached and a fetch is allowed (as for an unknown kid). It serves callers that hold a
// public key rather than a kid, such as a self-signed client certificate. Errors match
// ErrUnknownKey or ErrUnavailable.
func (c *Cache) Find(ctx context.Context, match func(Key) bool) (Key, error) {
	find := func() (Key, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, k := range c.keys {
			if match(k) {
				return k, true
			}
		}
		return Key{}, false
	}
	if k, ok := find(); ok {
		return k, nil
	}
	if err := c.refresh(ctx, unknownKid); errors.Is(err, ErrUnavailable) && ctx.Err() != nil {
		return Key{}, err
	}
	if k, ok := find(); ok {
		return k, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr != nil {
		return Key{}, unavailable{c.lastErr}
	}
	return Key{}, ErrUnknownKey
}

// Cached returns the key named kid if it is cached, without fetching anything.
func (c *Cache) Cached(kid string) (Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.keys[kid]
	return k, ok
}

// Refresh fetches the set now, whatever the cache holds.
func (c *Cache) Refresh(ctx context.Context) error {
	if err := c.refresh(ctx, forced); err != nil && !errors.Is(err, errNotDue) {
		return err
	}
	return nil
}

// Busy reports whether a background renewal is running (tests wait for it).
func (c *Cache) Busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetching
}

// allowed reports whether a fetch for reason may start now. After a failure nothing is tried
// for an interval; a renewal waits for the cache lifetime to run out; a refetch for an unknown
// kid waits an interval after the previous one. Callers hold c.mu.
func (c *Cache) allowed(reason fetchReason, now time.Time) bool {
	if reason == forced {
		return true
	}
	if c.lastErr != nil && now.Sub(c.attempt) < c.interval {
		return false
	}
	switch {
	case c.keys == nil:
		return true
	case reason == renewal:
		return !now.Before(c.expires)
	default:
		return c.kidFetched.IsZero() || now.Sub(c.kidFetched) >= c.interval
	}
}

var errNotDue = errors.New("a fetch is not due")

// refresh fetches the set, or joins the fetch in progress. Whether a fetch is allowed is
// decided when the shared call runs, which is what bounds a flood of unknown kids to one fetch
// per interval. The fetch itself is detached from ctx (a caller giving up must not fail the
// others waiting on it); the caller stops waiting when ctx ends.
func (c *Cache) refresh(ctx context.Context, reason fetchReason) error {
	ch := c.group.DoChan("jwks", func() (any, error) {
		c.mu.Lock()
		now := c.now()
		if !c.allowed(reason, now) {
			err := c.lastErr
			c.mu.Unlock()
			if err == nil {
				err = errNotDue
			}
			return nil, err
		}
		c.attempt = now
		if reason == unknownKid && c.keys != nil {
			c.kidFetched = now
		}
		c.mu.Unlock()

		fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		keys, age, err := c.fetch(fetchCtx)

		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			if c.lastErr == nil {
				c.log.Warn("JWKS fetch failed: verifying with the keys fetched before, if any", "error", err)
			}
			c.lastErr = err
			return nil, err
		}
		if c.lastErr != nil && c.keys != nil {
			c.log.Info("JWKS fetched again", "keys", len(keys))
		}
		c.keys, c.expires, c.lastErr = keys, c.now().Add(age), nil
		return nil, nil
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return unavailable{ctx.Err()}
	}
}

// fetch GETs the set and returns its signing keys by kid and how long to trust them.
func (c *Cache) fetch(ctx context.Context) (map[string]Key, time.Duration, error) {
	u, err := c.url(ctx)
	if err != nil {
		return nil, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("JWKS %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("JWKS %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("JWKS %s: status %d", u, resp.StatusCode)
	}
	if len(body) > MaxBytes {
		return nil, 0, fmt.Errorf("JWKS %s: larger than %d bytes", u, MaxBytes)
	}
	keys, err := Parse(body)
	if err != nil {
		return nil, 0, fmt.Errorf("JWKS %s: %w", u, err)
	}
	return keys, Lifetime(resp.Header, c.interval, c.now()), nil
}

// Parse keeps the keys of a set that can verify one of Algorithms: use sig (or none given), a
// kid, and a key type that fits the alg member: RSA of 2048 bits or more for RS256 or PS256,
// P-256 for ES256, Ed25519 for EdDSA. A key without alg is taken for the one algorithm its
// type implies (RSA: RS256, as sets without alg members have always meant; P-256: ES256;
// Ed25519: EdDSA), never for PS256. A set may hold keys of other types and algorithms
// (RFC 7517 §5: skip what is not understood), so one such key does not spoil the others.
// Which algorithms are accepted is the caller's to decide, not the set's.
func Parse(body []byte) (map[string]Key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New("not a JWK set: no keys member")
	}
	out := make(map[string]Key, len(set.Keys))
	for _, raw := range set.Keys {
		k, err := parseKey(raw)
		if err != nil {
			continue
		}
		out[k.kid] = k.Key
	}
	return out, nil
}

type parsedKey struct {
	Key
	kid string
}

// parseKey reads one usable signing key of a set, or says why it is not one.
func parseKey(raw json.RawMessage) (parsedKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return parsedKey{}, fmt.Errorf("not a key of a supported type (RSA, EC P-256, OKP Ed25519): %v", err)
	}
	if k.KeyID == "" {
		return parsedKey{}, errors.New("no kid")
	}
	if k.Use != "" && k.Use != "sig" {
		return parsedKey{}, fmt.Errorf("use %q is not sig", k.Use)
	}
	if !k.IsPublic() {
		return parsedKey{}, errors.New("a private or symmetric key")
	}
	var implied []string // the algorithms this key type can be for, implied first
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return parsedKey{}, fmt.Errorf("an RSA key of %d bits (at least %d)", pub.N.BitLen(), MinRSABits)
		}
		implied = []string{"RS256", "PS256"}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return parsedKey{}, fmt.Errorf("an EC key on %s (only P-256)", pub.Curve.Params().Name)
		}
		implied = []string{"ES256"}
	case ed25519.PublicKey:
		implied = []string{"EdDSA"}
	default:
		return parsedKey{}, fmt.Errorf("kty %s is not RSA, EC P-256 or OKP Ed25519", printable(keyType(raw)))
	}
	alg := k.Algorithm
	switch {
	case alg == "":
		alg = implied[0]
	case !slices.Contains(implied, alg):
		return parsedKey{}, fmt.Errorf("alg %s does not fit the key (for it: %s)", printable(alg), strings.Join(implied, ", "))
	}
	return parsedKey{Key{Public: k.Key, Alg: alg}, k.KeyID}, nil
}

// privateMembers are the JWK members that carry private or symmetric key material
// (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// Check validates a set a client registers as its own, strictly: unlike Parse, which skips
// what it does not understand in a set someone else publishes, it refuses a set with any key
// that carries private material, has no kid, shares a kid, or has a type or algorithm that
// cannot verify one of Algorithms. It returns the kids in order.
func Check(body []byte) ([]string, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, errors.New("not a JWK set (RFC 7517 §5)")
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("the set holds no keys")
	}
	kids := make([]string, 0, len(set.Keys))
	for i, raw := range set.Keys {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			return nil, fmt.Errorf("key %d is not a JSON object", i)
		}
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				return nil, fmt.Errorf("key %d holds the private member %q: register the public key only", i, m)
			}
		}
		if _, ok := members["kid"]; !ok {
			return nil, fmt.Errorf("key %d has no kid", i)
		}
		if a, ok := members["alg"]; ok {
			var alg string
			if json.Unmarshal(a, &alg) != nil || !slices.Contains(Algorithms, alg) {
				return nil, fmt.Errorf("key %d: alg %s is not one of %s", i, printable(string(a)), strings.Join(Algorithms, ", "))
			}
		}
		k, err := parseKey(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", i, err)
		}
		if slices.Contains(kids, k.kid) {
			return nil, fmt.Errorf("key %d: kid %s is used twice", i, printable(k.kid))
		}
		kids = append(kids, k.kid)
	}
	return kids, nil
}

func keyType(raw json.RawMessage) string {
	var m struct {
		Kty string `json:"kty"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.Kty
}

// printable quotes s for an error message, shortened: it comes from the caller.
func printable(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}

// Lifetime reads how long a response may be cached (RFC 9111 §4.2.1: max-age, less Age; else
// Expires less Date), within [interval, MaxAge]; DefaultAge when it says nothing.
func Lifetime(h http.Header, interval time.Duration, now time.Time) time.Duration {
	age, found := time.Duration(0), false
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			age, found = 0, true
		case "max-age":
			if n, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && n >= 0 && !found {
				age, found = time.Duration(min(n, int64(MaxAge/time.Second)))*time.Second, true
			}
		}
	}
	if found {
		if a, err := strconv.ParseInt(h.Get("Age"), 10, 64); err == nil && a > 0 {
			age -= time.Duration(min(a, int64(MaxAge/time.Second))) * time.Second
		}
	} else if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			date = now
		}
		age, found = exp.Sub(date), true
	}
	if !found {
		age = DefaultAge
	}
	return min(max(age, interval), MaxAge)
}
