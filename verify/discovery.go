package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// metadata is what verify reads of the server's metadata (RFC 8414 §2).
type metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// discovery fetches the metadata once; after a failure it tries again an interval later.
type discovery struct {
	issuer   string
	client   *http.Client
	interval time.Duration
	now      func() time.Time

	group   singleflight.Group
	mu      sync.Mutex
	md      *metadata
	attempt time.Time
	lastErr error
}

func (d *discovery) get(ctx context.Context) (*metadata, error) {
	d.mu.Lock()
	if d.md != nil {
		defer d.mu.Unlock()
		return d.md, nil
	}
	d.mu.Unlock()
	v, err, _ := d.group.Do("metadata", func() (any, error) {
		d.mu.Lock()
		if d.md != nil {
			defer d.mu.Unlock()
			return d.md, nil
		}
		if !d.attempt.IsZero() && d.now().Sub(d.attempt) < d.interval {
			defer d.mu.Unlock()
			return nil, d.lastErr
		}
		d.attempt = d.now()
		d.mu.Unlock()
		md, err := d.fetch(ctx)
		d.mu.Lock()
		defer d.mu.Unlock()
		d.md, d.lastErr = md, err
		return md, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*metadata), nil
}

// wellKnown lists the metadata URLs of an issuer, in the order they are tried: RFC 8414 §3.1
// (the well-known segment goes between the host and the issuer's path), then OpenID Connect
// Discovery 1.0 §4 (appended to the issuer).
func wellKnown(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	path := strings.TrimSuffix(u.Path, "/")
	rfc8414 := *u
	rfc8414.Path, rfc8414.RawPath = "/.well-known/oauth-authorization-server"+path, ""
	return []string{rfc8414.String(), strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"}
}

func (d *discovery) fetch(ctx context.Context) (*metadata, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultHTTPTimeout)
	defer cancel()
	var errs []error
	for _, u := range wellKnown(d.issuer) {
		md, err := d.fetchOne(ctx, u)
		if err == nil {
			return md, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("discovering the JWKS of %s: %w", d.issuer, errors.Join(errs...))
}

func (d *discovery) fetchOne(ctx context.Context, u string) (*metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", u, resp.StatusCode)
	}
	var md metadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md); err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	// RFC 8414 §3.3: metadata naming another issuer must not be used, or a server could
	// point us at keys of its choosing.
	if md.Issuer != d.issuer {
		return nil, fmt.Errorf("%s: names the issuer %q, want %q", u, md.Issuer, d.issuer)
	}
	if md.JWKSURI == "" {
		return nil, fmt.Errorf("%s: no jwks_uri", u)
	}
	return &md, nil
}
