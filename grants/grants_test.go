package grants

import (
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
)

func TestResolveScope(t *testing.T) {
	allowed := []string{"read", "write", "admin:all"}
	tests := []struct {
		requested, want, errCode string
	}{
		{"", "read write admin:all", ""},
		{"read", "read", ""},
		{"write read write", "write read", ""},
		{"read  write", "read write", ""},
		{"delete", "", "invalid_scope"},
		{`re"ad`, "", "invalid_scope"},
		{"read\twrite", "", "invalid_scope"},
	}
	for _, tc := range tests {
		got, err := resolveScope(allowed, tc.requested)
		if tc.errCode != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.errCode) {
				t.Errorf("%q: err %v, want %s", tc.requested, err, tc.errCode)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.requested, got, err, tc.want)
		}
	}
}

// TestValidScopeToken: a scope token is %x21 / %x23-5B / %x5D-7E (RFC 6749 §3.3).
func TestValidScopeToken(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"orders:read", true},
		{"!#[]~", true},
		{"a b", false},
		{`re"ad`, false},
		{`a\b`, false},
		{"a\x7f", false},
		{"a\tb", false},
		{"é", false},
	}
	for _, tc := range tests {
		if got := validScopeToken(tc.s); got != tc.want {
			t.Errorf("validScopeToken(%q) = %v, want %v", tc.s, got, tc.want)
		}
		// A requested scope is checked for its form even where a client record allows it.
		if _, err := resolveScope([]string{tc.s}, tc.s); (err == nil) != tc.want {
			t.Errorf("resolveScope(%q) with %q allowed: %v", tc.s, tc.s, err)
		}
	}
}

func TestRefreshTokenFormatAndSealing(t *testing.T) {
	fam := newFamilyID()
	tok := newRefreshToken(fam)
	gotFam, hash, ok := parseRefreshToken(tok)
	if !ok || gotFam != fam || len(hash) != 64 || strings.Contains(hash, tok) {
		t.Fatalf("parse(%q) = %q %q %v", tok, gotFam, hash, ok)
	}
	for _, bad := range []string{"", "tsr_", "tsr_" + fam, "tsp_" + tok[4:], tok + "x", tok[:len(tok)-1], "tsr_" + fam + "." + strings.Repeat("*", 43)} {
		if _, _, ok := parseRefreshToken(bad); ok {
			t.Errorf("accepted malformed token %q", bad)
		}
	}
	if f, ok := FamilyOf(newJTI(fam)); !ok || f != fam {
		t.Errorf("FamilyOf(newJTI(fam)) = %q, %v", f, ok)
	}
	if _, ok := FamilyOf(newJTI("")); ok {
		t.Error("a token without a family reports one")
	}

	pair := &Token{AccessToken: "a", ExpiresAt: time.Unix(100, 0), RefreshToken: "r"}
	sealed, err := seal(tok, pair)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "\"r\"") {
		t.Fatal("sealed successor is readable")
	}
	got, err := unseal(tok, sealed)
	if err != nil || got.AccessToken != "a" || got.RefreshToken != "r" || !got.ExpiresAt.Equal(pair.ExpiresAt) {
		t.Fatalf("unseal = %+v, %v", got, err)
	}
	if _, err := unseal(newRefreshToken(fam), sealed); err == nil {
		t.Fatal("another token opened the sealed successor")
	}
}

// TestAccessClaimsAreJWTClaims: golang-jwt reads the registered claims through these methods
// when it validates a token.
func TestAccessClaimsAreJWTClaims(t *testing.T) {
	c := AccessClaims{Issuer: "iss", Subject: "sub", Audience: protocol.Audience{"a", "b"}, IssuedAt: 100, ExpiresAt: 200}
	iss, _ := c.GetIssuer()
	sub, _ := c.GetSubject()
	aud, _ := c.GetAudience()
	iat, _ := c.GetIssuedAt()
	exp, _ := c.GetExpirationTime()
	nbf, _ := c.GetNotBefore()
	if iss != "iss" || sub != "sub" || strings.Join(aud, " ") != "a b" || iat.Unix() != 100 || exp.Unix() != 200 || nbf != nil {
		t.Errorf("iss %q sub %q aud %v iat %v exp %v nbf %v", iss, sub, aud, iat, exp, nbf)
	}
}
