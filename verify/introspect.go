package verify

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/sync/singleflight"
)

// maxCached bounds the introspection cache; beyond it, expired answers are dropped, then all.
const maxCached = 10000

// Token types an introspection answer may carry (Tokensmith's token_type).
const (
	introspectedAccess   = "Bearer"
	introspectedPersonal = "personal_token"
	// introspectedDPoP is the token_type of a DPoP-bound access token (RFC 9449 §6.2).
	introspectedDPoP = "DPoP"
)

// introspection is an RFC 7662 §2.2 answer.
type introspection struct {
	Active    bool          `json:"active"`
	Scope     string        `json:"scope"`
	ClientID  string        `json:"client_id"`
	Username  string        `json:"username"`
	TokenType string        `json:"token_type"`
	Exp       int64         `json:"exp"`
	Iat       int64         `json:"iat"`
	Nbf       int64         `json:"nbf"`
	Sub       string        `json:"sub"`
	Aud       jwt.Audience  `json:"aud"`
	Iss       string        `json:"iss"`
	Jti       string        `json:"jti"`
	Cnf       *Confirmation `json:"cnf"`
}

type cachedAnswer struct {
	answer *introspection
	until  time.Time
}

// introspector asks the introspection endpoint, and remembers answers for a short time.
// Identical questions in flight at once are asked once.
type introspector struct {
	endpoint         func(context.Context) (string, error)
	clientID, secret string
	client           *http.Client
	ttl              time.Duration
	now              func() time.Time
	log              *slog.Logger

	group   singleflight.Group
	mu      sync.Mutex
	cache   map[[32]byte]cachedAnswer
	failing bool
}

func (in *introspector) introspect(ctx context.Context, token string) (*introspection, error) {
	// Tokens are keyed by digest: the cache holds no usable credential.
	key := sha256.Sum256([]byte(token))
	if in.ttl > 0 {
		in.mu.Lock()
		c, ok := in.cache[key]
		in.mu.Unlock()
		if ok && in.now().Before(c.until) {
			return c.answer, nil
		}
	}
	ch := in.group.DoChan(string(key[:]), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultHTTPTimeout)
		defer cancel()
		a, err := in.ask(ctx, token)
		in.mu.Lock()
		defer in.mu.Unlock()
		if err != nil {
			if !in.failing {
				in.log.Warn("introspection failed: introspecting routes answer 503", "error", err)
			}
			in.failing = true
			return nil, err
		}
		if in.failing {
			in.log.Info("introspection answers again")
		}
		in.failing = false
		if in.ttl > 0 {
			in.store(key, a)
		}
		return a, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, refuse(ErrUnavailable, "the token cannot be checked now", r.Err)
		}
		return r.Val.(*introspection), nil
	case <-ctx.Done():
		return nil, refuse(ErrUnavailable, "the token cannot be checked now", ctx.Err())
	}
}

// store caches an answer for ttl, never past the token's exp. Callers hold in.mu.
func (in *introspector) store(key [32]byte, a *introspection) {
	now := in.now()
	until := now.Add(in.ttl)
	if a.Active && a.Exp != 0 {
		until = minTime(until, time.Unix(a.Exp, 0))
	}
	if in.cache == nil {
		in.cache = make(map[[32]byte]cachedAnswer)
	}
	if len(in.cache) >= maxCached {
		for k, c := range in.cache {
			if !now.Before(c.until) {
				delete(in.cache, k)
			}
		}
		if len(in.cache) >= maxCached {
			clear(in.cache)
		}
	}
	in.cache[key] = cachedAnswer{a, until}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// ask POSTs the token to the introspection endpoint (RFC 7662 §2.1) as the resource server's
// client, with HTTP Basic credentials form-encoded first (RFC 6749 §2.3.1).
func (in *introspector) ask(ctx context.Context, token string) (*introspection, error) {
	u, err := in.endpoint(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.secret))
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspection %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("introspection %s refused the resource server's client credentials (status 401)", u)
		}
		return nil, fmt.Errorf("introspection %s: status %d", u, resp.StatusCode)
	}
	var a introspection
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&a); err != nil {
		return nil, fmt.Errorf("introspection %s: %w", u, err)
	}
	return &a, nil
}
