package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/tokensmith/tokensmith/dpop"
)

// preparePrivateKeyJWT is fresh issuance for a client that authenticates with its own key
// (private_key_jwt): every request carries a new ES256 assertion, signed here, whose jti the
// server remembers (one store write per request beside the signature check).
func preparePrivateKeyJWT(s *server, _ *fixture) (newWorker, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	c, err := s.createClient("private-key-jwt", []string{"client_credentials"}, map[string]any{
		"token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(set)})
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		return nil, err
	}
	tokenURL := s.url + "/oauth2/token"
	assertion := func() (string, error) {
		var jti [16]byte
		_, _ = rand.Read(jti[:])
		now := time.Now()
		return josejwt.Signed(signer).Claims(josejwt.Claims{Issuer: c.ID, Subject: c.ID, Audience: josejwt.Audience{tokenURL},
			ID: base64.RawURLEncoding.EncodeToString(jti[:]), IssuedAt: josejwt.NewNumericDate(now),
			Expiry: josejwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	}
	return freshEach(func() (post, error) {
		a, err := assertion()
		return assertionPost(tokenURL, c.ID, a), err
	}, nil, "Bearer")
}

// prepareDPoP is fresh issuance with a DPoP proof (ES256) on every request, by a client with
// a secret: the server checks the proof and remembers its jti, and the token carries cnf.jkt.
func prepareDPoP(s *server, _ *fixture) (newWorker, error) {
	c, err := s.createClient("dpop", []string{"client_credentials"}, nil)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := dpop.NewSigner(key)
	if err != nil {
		return nil, err
	}
	tokenURL := s.url + "/oauth2/token"
	p := newPost(tokenURL, c, url.Values{"grant_type": {"client_credentials"}})
	// Every answer must be a DPoP token: a bearer one would mean the proof was not looked at.
	return freshEach(func() (post, error) { return p, nil }, func(req *http.Request) error {
		proof, err := signer.Proof("POST", tokenURL, "")
		req.Header.Set(dpop.Header, proof)
		return err
	}, "DPoP")
}

// freshEach runs a request that next builds anew each time (with edit, if any, applied to the
// HTTP request), checking that the answer is a token of tokenType; it is sent once before the
// measured window, so a scenario that cannot work fails at once.
func freshEach(next func() (post, error), edit func(*http.Request) error, tokenType string) (newWorker, error) {
	send := func(hc *http.Client) error {
		p, err := next()
		if err != nil {
			return err
		}
		req, err := http.NewRequest("POST", p.url, bytes.NewReader(p.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if p.auth != "" {
			req.Header.Set("Authorization", p.auth)
		}
		if edit != nil {
			if err := edit(req); err != nil {
				return err
			}
		}
		status, body, err := roundTrip(hc, req)
		if err != nil {
			return err
		}
		if err := checkToken(status, body); err != nil {
			return err
		}
		if tt := field(body, "token_type"); tt != tokenType {
			return fmt.Errorf("token_type %s, want %s", tt, tokenType)
		}
		return nil
	}
	if err := send(http.DefaultClient); err != nil {
		return nil, fmt.Errorf("the first request: %w", err)
	}
	return func(_ int, hc *http.Client) (step, error) {
		return func() error { return send(hc) }, nil
	}, nil
}
