package jwkscache

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Discover finds the jwks_uri of an OpenID provider from its metadata at
// ISSUER/.well-known/openid-configuration (OpenID Connect Discovery 1.0 §4). The metadata must
// name the same issuer (§4.3), or a server could point us at keys of its choosing, and the
// jwks_uri must pass CheckURL.
func Discover(ctx context.Context, client *http.Client, issuer string) (string, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	if err := CheckURL(u); err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery %s: status %d", u, resp.StatusCode)
	}
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxBytes)).Decode(&md); err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	if md.Issuer != issuer {
		return "", fmt.Errorf("discovery %s: names the issuer %q, want %q", u, md.Issuer, issuer)
	}
	if err := CheckURL(md.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery %s: jwks_uri: %w", u, err)
	}
	return md.JWKSURI, nil
}
