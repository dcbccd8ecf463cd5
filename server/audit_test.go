package server_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/audit"
	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/registry"
	"github.com/tokensmith/tokensmith/secret"
	"github.com/tokensmith/tokensmith/server"
)

// TestAuditTrail makes one request of every audited kind, then reads the trail the server
// wrote (JSON lines, through the same Writer and file sink an operator configures) and checks
// one event of each kind, and that no secret the test handled appears anywhere in it.
func TestAuditTrail(t *testing.T) {
	ts := newTestServer(t)
	var secrets []string
	keep := func(s ...string) {
		for _, v := range s {
			if v == "" {
				t.Fatal("a secret the test meant to keep is empty")
			}
			secrets = append(secrets, v)
		}
	}
	keep(testAdminToken)

	// Admin changes, through the admin API as an operator makes them.
	c := ts.admin(t, "POST", "/admin/clients", `{"name":"audited","grant_types":["client_credentials","password","refresh_token","`+protocol.GrantTokenExchange+`"],"scopes":["orders:read"]}`)
	id, sec := c.str("client_id"), c.str("client_secret")
	keep(sec, secret.HashHex(sec))
	if r := ts.admin(t, "PATCH", "/admin/clients/"+id, `{"name":"audited v2","daily_limit":1000}`); r.Status != 200 {
		t.Fatalf("PATCH: %d %s", r.Status, r.RawBody)
	}
	rot := ts.admin(t, "POST", "/admin/clients/"+id+"/rotate-secret", `{"grace":"1h"}`)
	newSec := rot.str("client_secret")
	keep(newSec)
	const password = "audited-password-1"
	keep(password)
	u := ts.admin(t, "POST", "/admin/users", `{"username":"audited-user","password":"`+password+`","scopes":["orders:read"]}`)
	userID := u.str("id")
	pat := ts.admin(t, "POST", "/admin/users/"+userID+"/tokens", `{"name":"ci","scopes":["orders:read"]}`)
	keep(pat.str("token"))

	// Tokens: issued, refreshed, replayed, exchanged, revoked.
	cc := ts.form(t, id, newSec, url.Values{"grant_type": {"client_credentials"}})
	login := ts.form(t, id, newSec, url.Values{"grant_type": {"password"}, "username": {"audited-user"}, "password": {password}})
	oldRefresh := login.str("refresh_token")
	refreshed := ts.form(t, id, newSec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {oldRefresh}})
	ts.Clock.Advance(6 * time.Second)
	replay := ts.form(t, id, newSec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {oldRefresh}})
	exchanged := ts.form(t, id, newSec, exchangeForm(pat.str("token")))
	for name, r := range map[string]reply{"client_credentials": cc, "password": login, "refresh": refreshed, "exchange": exchanged} {
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", name, r.Status, r.RawBody)
		}
		keep(r.str("access_token"))
	}
	keep(oldRefresh, refreshed.str("refresh_token"))
	if replay.Status != 400 {
		t.Fatalf("replay: %d %s", replay.Status, replay.RawBody)
	}
	if r := ts.revoke(t, id, newSec, cc.str("access_token")); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.RawBody)
	}

	// Reuse, on a client of its own.
	rc := ts.admin(t, "POST", "/admin/clients", `{"reuse":true}`)
	rid, rsec := rc.str("client_id"), rc.str("client_secret")
	keep(rsec)
	first := ts.form(t, rid, rsec, url.Values{"grant_type": {"client_credentials"}})
	again := ts.form(t, rid, rsec, url.Values{"grant_type": {"client_credentials"}})
	if again.str("access_token") != first.str("access_token") {
		t.Fatal("reuse did not hand out the earlier token")
	}

	// Refusals: a wrong secret, a wrong password, a malformed body.
	const wrongSecret = "not-the-secret-at-all"
	const wrongPassword = "not-the-password-at-all"
	keep(wrongSecret, wrongPassword)
	ts.form(t, id, wrongSecret, url.Values{"grant_type": {"client_credentials"}})
	ts.form(t, id, newSec, url.Values{"grant_type": {"password"}, "username": {"audited-user"}, "password": {wrongPassword}})
	ts.post(t, "text/plain", "client_secret="+wrongSecret, nil)

	// More admin changes: a password change, then delete what was created.
	const newPassword = "audited-new-password-77"
	keep(newPassword)
	if r := ts.admin(t, "PATCH", "/admin/users/"+userID, `{"password":"`+newPassword+`"}`); r.Status != 200 {
		t.Fatalf("PATCH user: %d %s", r.Status, r.RawBody)
	}
	if r := ts.admin(t, "POST", "/admin/keys/rotate", `{}`); r.Status != 201 {
		t.Fatalf("key rotation: %d %s", r.Status, r.RawBody)
	}
	ts.admin(t, "DELETE", "/admin/users/"+userID+"/tokens/"+pat.str("id"), "")
	ts.admin(t, "DELETE", "/admin/users/"+userID, "")
	ts.admin(t, "DELETE", "/admin/clients/"+id, "")

	raw, events := ts.auditTrail(t)
	for _, s := range secrets {
		if strings.Contains(raw, s) {
			t.Errorf("the audit trail contains a secret the test handled: %.20s…", s)
		}
	}
	// A JWT's signature alone would be enough to spot a leak.
	for _, tok := range []string{cc.str("access_token"), refreshed.str("access_token")} {
		if sig := tok[strings.LastIndexByte(tok, '.')+1:]; strings.Contains(raw, sig) {
			t.Errorf("the audit trail contains an access token's signature")
		}
	}

	find := func(kind string, match func(audit.Event) bool) audit.Event {
		t.Helper()
		for _, e := range events {
			if e.Kind == kind && match(e) {
				return e
			}
		}
		t.Errorf("no %s event matching; the trail:\n%s", kind, raw)
		return audit.Event{}
	}
	// Every event of a request carries its id and the caller's address.
	for _, e := range events {
		if e.RequestID == "" || e.Remote == "" || e.Time.IsZero() {
			t.Errorf("%s event without request id, address or time: %+v", e.Kind, e)
		}
	}
	issued := find(audit.TokenIssued, func(e audit.Event) bool { return e.Grant == "client_credentials" && e.ClientID == id })
	if issued.Subject != id || issued.JTI == "" || issued.Scope != "orders:read" || issued.ExpiresAt == 0 {
		t.Errorf("issued: %+v", issued)
	}
	pw := find(audit.TokenIssued, func(e audit.Event) bool { return e.Grant == "password" })
	if pw.Subject != userID || pw.Username != "audited-user" || pw.Family == "" {
		t.Errorf("password: %+v", pw)
	}
	reused := find(audit.TokenReused, func(e audit.Event) bool { return e.ClientID == rid })
	firstIssued := find(audit.TokenIssued, func(e audit.Event) bool { return e.ClientID == rid })
	if reused.JTI == "" || reused.JTI != firstIssued.JTI {
		t.Errorf("reused jti %q, want the first token's %q", reused.JTI, firstIssued.JTI)
	}
	ref := find(audit.TokenRefreshed, func(e audit.Event) bool { return e.ClientID == id })
	if ref.Subject != userID || ref.Family != pw.Family || ref.JTI == "" || ref.JTI == pw.JTI {
		t.Errorf("refreshed: %+v (login %+v)", ref, pw)
	}
	rep := find(audit.TokenReplayed, func(e audit.Event) bool { return e.ClientID == id })
	if rep.Family != pw.Family || rep.Subject != userID || rep.Error != protocol.InvalidGrant {
		t.Errorf("replayed: %+v", rep)
	}
	ex := find(audit.TokenExchanged, func(e audit.Event) bool { return e.ClientID == id })
	if ex.Subject != userID || !strings.HasPrefix(ex.JTI, pat.str("id")+".") {
		t.Errorf("exchanged: %+v", ex)
	}
	rv := find(audit.TokenRevoked, func(e audit.Event) bool { return e.ClientID == id })
	if rv.JTI != issued.JTI || rv.TokenType != protocol.TokenTypeAccess || rv.Who != id {
		t.Errorf("revoked: %+v", rv)
	}
	find(audit.TokenRefused, func(e audit.Event) bool {
		return e.Error == protocol.InvalidClient && e.ClientID == id && e.Endpoint == "token" && e.Reason != ""
	})
	find(audit.TokenRefused, func(e audit.Event) bool {
		return e.Error == protocol.InvalidGrant && e.Grant == "password" && e.Username == "audited-user"
	})
	find(audit.TokenRefused, func(e audit.Event) bool { return e.Error == protocol.InvalidRequest && e.ClientID == "" })

	// Admin changes: who, what, and before/after of only the changed fields.
	upd := find(audit.AdminChange, func(e audit.Event) bool { return e.What == registry.ActionClientUpdate })
	if upd.Who != "admin" || upd.Target != id || upd.Before["name"] != "audited" || upd.After["name"] != "audited v2" ||
		upd.After["daily_limit"] != float64(1000) || len(upd.Before) != 2 || len(upd.After) != 2 {
		t.Errorf("client update: before %v after %v", upd.Before, upd.After)
	}
	for _, what := range []string{registry.ActionClientCreate, registry.ActionClientRotateSecret, registry.ActionClientDelete,
		registry.ActionUserCreate, registry.ActionUserUpdate, registry.ActionUserDelete, registry.ActionPersonalTokenCreate, registry.ActionPersonalTokenDelete} {
		e := find(audit.AdminChange, func(e audit.Event) bool { return e.What == what })
		if e.Who != "admin" || e.Target == "" {
			t.Errorf("%s: %+v", what, e)
		}
	}
	if cr := find(audit.AdminChange, func(e audit.Event) bool { return e.What == registry.ActionClientCreate && e.Target == id }); cr.After["name"] != "audited" ||
		!slices.Contains(toStrings(cr.After["grant_types"]), "password") {
		t.Errorf("client create: %v", cr.After)
	}
	if kr := find(audit.AdminChange, func(e audit.Event) bool { return e.What == server.ActionKeysRotate }); kr.Who != "admin" ||
		kr.Target == "" || kr.After["signs_from"] == nil {
		t.Errorf("key rotation: %+v", kr)
	}
	if pw := find(audit.AdminChange, func(e audit.Event) bool { return e.What == registry.ActionUserUpdate }); pw.Target != userID || pw.After["password"] != "changed" {
		t.Errorf("password change: %+v", pw)
	}
	if del := find(audit.AdminChange, func(e audit.Event) bool { return e.What == registry.ActionClientDelete }); del.Before["name"] != "audited v2" {
		t.Errorf("client delete: before %v", del.Before)
	}
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}
