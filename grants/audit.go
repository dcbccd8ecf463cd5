package grants

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// Endpoints named in refusal events.
const (
	EndpointToken      = "token"
	EndpointRevoke     = "revoke"
	EndpointIntrospect = "introspect"
	// EndpointConsole is the console's sign-in, which checks passwords as the password
	// grant does and shares its failed-login backoff.
	EndpointConsole = "console"
)

// issuedEvent describes a successful token answer.
func issuedEvent(r *Request, t *Token) audit.Event {
	e := audit.Event{
		Kind: audit.TokenIssued, ClientID: r.ClientID, Subject: t.subject, Grant: r.GrantType,
		JTI: t.jti, Scope: t.Scope, ExpiresAt: t.ExpiresAt.Unix(),
	}
	switch {
	case t.reused:
		e.Kind = audit.TokenReused
	case r.GrantType == protocol.GrantRefreshToken:
		e.Kind = audit.TokenRefreshed
	case r.GrantType == protocol.GrantTokenExchange:
		e.Kind = audit.TokenExchanged
	}
	if r.GrantType == protocol.GrantPassword {
		e.Username = r.Params[protocol.ParamUsername]
	}
	if f := r.Federated; f != nil {
		e.ExternalIssuer, e.ExternalSubject = f.Issuer, f.Subject
	}
	e.Family, _ = FamilyOf(t.jti)
	return e
}

// refused records a refused request. r may be nil (the request could not be parsed).
func (c *core) refused(ctx context.Context, endpoint string, r *Request, err error) {
	pe := protocol.As(err)
	e := audit.Event{Kind: audit.TokenRefused, Endpoint: endpoint, Error: pe.Code, Reason: pe.Description}
	if r != nil {
		e.ClientID, e.Grant = r.ClientID, r.GrantType
		if f := r.Federated; f != nil {
			e.ExternalIssuer, e.ExternalSubject = f.Issuer, f.Subject
		}
		if r.GrantType == protocol.GrantPassword {
			e.Username, e.UsernameDigest = c.refusedUsername(r.Params[protocol.ParamUsername], r.userKnown)
		}
		if rt := r.Params[protocol.ParamRefreshToken]; rt != "" && r.GrantType == protocol.GrantRefreshToken {
			// The family id is not secret (every access token of the login carries it).
			e.Family, _, _ = parseRefreshToken(rt)
		}
	}
	c.audit.Record(ctx, e)
}

// Refused records a request the HTTP layer refused before it reached a grant (a malformed
// body), so the audit trail has every refusal of the token, revocation and introspection
// endpoints.
func (h *Service) Refused(ctx context.Context, endpoint string, err error) {
	h.core.refused(ctx, endpoint, nil, err)
}

// AuditKeyName is the name of the server secret (storage.Storage.EnsureServerSecret) that keys
// the digests of refused usernames.
const AuditKeyName = "audit-username"

// WithAuditKey sets the key of the refused usernames' digests: one all replicas share and keep
// across restarts (AuditKeyName in the store), so the same name has the same digest in every
// replica's trail. Without it a key of this process is used.
func WithAuditKey(key []byte) Option { return func(c *core) { c.auditKey = key } }

// usernameDigestLen is how many hex characters of the HMAC a digest keeps: 64 bits tell
// apart every name one deployment sees, and say nothing more about it.
const usernameDigestLen = 16

// refusedUsername is what the audit trail says about the username of a refused sign-in: the
// name itself only when it names an existing user (known), since an unknown one is often a
// password typed into the wrong field, and always a keyed digest of its folded form, so
// attempts with one name correlate (also those refused before the user was looked up). An
// operator who reads the trail cannot test guesses against a digest without the key, which
// is kept in the store, not in the trail or the configuration.
func (c *core) refusedUsername(name string, known bool) (username, digest string) {
	if name == "" {
		return "", ""
	}
	if known {
		username = name
		if len(username) > maxAuditedUsername {
			username = strings.ToValidUTF8(username[:maxAuditedUsername], "") + "…"
		}
	}
	m := hmac.New(sha256.New, c.auditKey)
	m.Write([]byte(storage.FoldUsername(name)))
	return username, hex.EncodeToString(m.Sum(nil))[:usernameDigestLen]
}

// processAuditKey keys the digests of a Service given no key: stable for the process only.
func processAuditKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}
