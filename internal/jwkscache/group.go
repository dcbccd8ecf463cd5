package jwkscache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
)

// CheckURL accepts where a set may be fetched from when someone other than the operator
// chooses it (a client's jwks_uri): https, or http to a loopback address only, because keys
// fetched in the clear from anywhere else could be swapped on the way.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("not an absolute URL")
	}
	if u.User != nil {
		return errors.New("a URL with credentials in it")
	}
	if u.Fragment != "" {
		return errors.New("a URL with a fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("not https (http is accepted for loopback addresses only)")
	}
	return fmt.Errorf("scheme %q is not https", u.Scheme)
}

// IsLoopback reports whether host (no port) names this machine: localhost or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Group holds one Cache per URL, all with the same configuration, for keys that many
// parties publish (one jwks_uri per client). Its URLs are checked with CheckURL before every
// fetch, whatever they were checked with when registered.
type Group struct {
	cfg Config
	mu  sync.Mutex
	m   map[string]*Cache
}

// maxGroup bounds a Group: past it, the caches start over (a fetch each) rather than grow.
const maxGroup = 10000

// NewGroup returns an empty Group; cfg.URL is not used.
func NewGroup(cfg Config) *Group { return &Group{cfg: cfg, m: map[string]*Cache{}} }

// Get returns the cache of the set at u, creating it (empty) on first use.
func (g *Group) Get(u string) *Cache {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.m[u]; ok {
		return c
	}
	if len(g.m) >= maxGroup {
		clear(g.m)
	}
	cfg := g.cfg
	cfg.URL = func(context.Context) (string, error) {
		if err := CheckURL(u); err != nil {
			return "", fmt.Errorf("JWKS %s: %w", u, err)
		}
		return u, nil
	}
	c := New(cfg)
	g.m[u] = c
	return c
}
