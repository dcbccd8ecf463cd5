package grants

import (
	"context"
	"errors"
	"fmt"
	"github.com/golang-jwt/jwt/v5"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/protocol"
	"github.com/tokensmith/tokensmith/storage"
)

// TestReuse: a reuse client is handed its earlier token while it has at least
// reuse_min_remaining left, per subject, scope and audience; with one live replica a pool holds
// one token, so the cap wins over the minimum until the token expires.
func TestReuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{Reuse: true, Scopes: []string{"a", "b"},
		GrantTypes: []string{protocol.GrantClientCredentials, protocol.GrantPassword, protocol.GrantRefreshToken}})
	cc := func(kv ...string) *Token { return e.token(t, req(id, sec, protocol.GrantClientCredentials, kv...)) }
	first := cc()
	e.clock.Advance(time.Hour)
	again := cc()
	if again.AccessToken != first.AccessToken || !again.ExpiresAt.Equal(first.ExpiresAt) || !again.reused {
		t.Fatal("a reuse client got a new token while the first had 2h left")
	}
	if got := again.ExpiresIn(e.clock.Now()); got != 2*3600 {
		t.Errorf("reused expires_in %d, want the 7200 s left", got)
	}
	if got := e.minted(protocol.GrantClientCredentials); got != 1 {
		t.Errorf("%d tokens minted, want 1", got)
	}
	if cc("scope", "a").AccessToken == first.AccessToken {
		t.Error("another scope reused the token")
	}
	if cc("audience", testAudience).AccessToken != first.AccessToken {
		t.Error("the default audience asked for by name is another pool")
	}
	e.clock.Advance(time.Hour + 57*time.Minute)
	if late := cc(); late.AccessToken != first.AccessToken || late.ExpiresIn(e.clock.Now()) != 180 {
		t.Errorf("near expiry with a full pool: a new token, or %d s left, want the same with 180", late.ExpiresIn(e.clock.Now()))
	}
	e.clock.Advance(4 * time.Minute)
	if cc().AccessToken == first.AccessToken {
		t.Error("an expired token was reused")
	}

	// A reused password answer carries no refresh token; subjects are pools of their own.
	e.user(t, "dave", "dave-password")
	e.user(t, "erin", "erin-password")
	p1 := e.token(t, loginReq(id, sec, "dave"))
	p2 := e.token(t, loginReq(id, sec, "dave"))
	if p1.RefreshToken == "" || p2.RefreshToken != "" || p2.AccessToken != p1.AccessToken {
		t.Errorf("password reuse: first has refresh token %v, second %v, same access token %v",
			p1.RefreshToken != "", p2.RefreshToken != "", p2.AccessToken == p1.AccessToken)
	}
	if e.token(t, loginReq(id, sec, "erin")).AccessToken == p1.AccessToken {
		t.Error("another user got dave's token")
	}
	// The first login's refresh token was stored with the pooled token, and rotates.
	if next := e.token(t, refreshReq(id, sec, p1.RefreshToken)); next.AccessToken == p1.AccessToken {
		t.Error("a refresh was answered from the reuse pool")
	}
}

// TestReuseCapacityFollowsReplicas: each live replica may hold one valid token in a pool; once
// the pool is full the freshest is reused even under the minimum.
func TestReuseCapacityFollowsReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, WithReplicas(func() int { return 2 }))
	// Tokens live 3h; reuse wants 2h50m left.
	id, sec := e.client(t, storage.Client{Reuse: true, ReuseMinRemaining: 170 * time.Minute})
	cc := func() string { return e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken }
	a := cc()
	e.clock.Advance(20 * time.Minute)
	b := cc()
	if a == b {
		t.Fatal("with 2 live replicas a second token should be minted")
	}
	e.clock.Advance(20 * time.Minute)
	if c := cc(); c != b {
		t.Fatal("with both slots valid the freshest token must be reused")
	}
}

// TestReuseSkipsRevokedTokens: a revoked token, or one of a revoked login, leaves its pool.
func TestReuseSkipsRevokedTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{Reuse: true, GrantTypes: []string{protocol.GrantClientCredentials, protocol.GrantPassword, protocol.GrantRefreshToken}})
	ctx := context.Background()
	first := e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken
	if err := e.svc.Revoke(ctx, req(id, sec, "", "token", first)); err != nil {
		t.Fatal(err)
	}
	if e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken == first {
		t.Error("reuse handed out a revoked token")
	}
	e.user(t, "dave", "dave-password")
	one := e.token(t, loginReq(id, sec, "dave"))
	if err := e.svc.Revoke(ctx, req(id, sec, "", "token", one.RefreshToken)); err != nil {
		t.Fatal(err)
	}
	if e.token(t, loginReq(id, sec, "dave")).AccessToken == one.AccessToken {
		t.Error("reuse handed out an access token of a revoked login")
	}
}

// TestReuseFollowsTheSigningAlgorithm: a client moved to another algorithm is not handed the
// pooled token of its old one, and one moved back is; revoking a token of the old algorithm
// takes it out of that algorithm's pool, and the daily count is one for all algorithms.
func TestReuseFollowsTheSigningAlgorithm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{Reuse: true, DailyLimit: 3})
	ctx := context.Background()
	algOf := func(tok string) string {
		parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
		if err != nil {
			t.Fatal(err)
		}
		return parsed.Header["alg"].(string)
	}
	rs := e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken
	if again := e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken; again != rs || algOf(rs) != "RS256" {
		t.Fatalf("RS256 reuse: %s then %s", rs, again)
	}
	e.update(t, id, func(c *storage.Client) { c.AccessTokenSigningAlg = "ES256" })
	es := e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken
	if es == rs || algOf(es) != "ES256" {
		t.Fatalf("after the move to ES256: a %s token (the RS256 one: %v)", algOf(es), es == rs)
	}
	if again := e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken; again != es {
		t.Fatal("the ES256 token is not reused")
	}
	// Revoked while the client is on ES256: the RS256 token leaves the RS256 pool.
	if err := e.svc.Revoke(ctx, req(id, sec, "", "token", rs)); err != nil {
		t.Fatal(err)
	}
	e.update(t, id, func(c *storage.Client) { c.AccessTokenSigningAlg = "RS256" })
	back := e.token(t, req(id, sec, protocol.GrantClientCredentials)).AccessToken
	if back == rs || algOf(back) != "RS256" {
		t.Fatalf("back on RS256: reused the revoked token: %v", back == rs)
	}
	// Three new tokens in all: the daily limit of 3 is reached whatever the algorithm.
	e.update(t, id, func(c *storage.Client) { c.AccessTokenSigningAlg = "EdDSA" })
	e.refused(t, req(id, sec, protocol.GrantClientCredentials), protocol.RateLimited)
}

// TestDailyLimit: the day is the policy zone's calendar day; each subject counts on its own;
// refreshes do not count; a refusal says when to retry.
func TestDailyLimit(t *testing.T) {
	t.Parallel()
	moscow, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(p *Policy) { p.DailyLimitLocation = moscow })
	// 23:00 in Moscow: the day ends in one hour.
	e.clock.Set(time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC))
	midnight := time.Date(2026, 11, 24, 0, 0, 0, 0, moscow)
	id, sec := e.client(t, storage.Client{DailyLimit: 3, GrantTypes: []string{protocol.GrantClientCredentials, protocol.GrantPassword, protocol.GrantRefreshToken}})
	e.user(t, "dave", "dave-password")
	e.user(t, "erin", "erin-password")
	cc := req(id, sec, protocol.GrantClientCredentials)
	for i := range 3 {
		tok := e.token(t, cc)
		if rl := tok.RateLimit; rl == nil || rl.Limit != 3 || rl.Remaining != 2-i || !rl.Reset.Equal(midnight) {
			t.Errorf("token %d: rate limit %+v, want 3, %d left, reset at %v", i+1, rl, 2-i, midnight)
		}
	}
	pe := e.refused(t, cc, protocol.RateLimited)
	if pe.RetryAfter != 3600 || pe.RateLimit == nil || pe.RateLimit.Remaining != 0 || !pe.RateLimit.Reset.Equal(midnight) {
		t.Errorf("4th of 3: Retry-After %d, rate limit %+v; want 3600 (midnight in Moscow)", pe.RetryAfter, pe.RateLimit)
	}
	rt := e.token(t, loginReq(id, sec, "dave")).RefreshToken
	for range 4 {
		rt = e.token(t, refreshReq(id, sec, rt)).RefreshToken
		e.clock.Advance(6 * time.Second)
	}
	e.token(t, loginReq(id, sec, "dave"))
	e.token(t, loginReq(id, sec, "dave"))
	e.refused(t, loginReq(id, sec, "dave"), protocol.RateLimited)
	e.token(t, loginReq(id, sec, "erin"))
	e.clock.Set(midnight)
	e.token(t, cc)
	if got := e.minted(protocol.GrantPassword); got != 4 {
		t.Errorf("%d password tokens counted as minted, want 4 (the refused login is not)", got)
	}
}

// TestLimitNotCountedForRefusals: requests refused before an issuance do not use up the limit.
func TestLimitNotCountedForRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{DailyLimit: 1, Scopes: []string{"a"}})
	e.refused(t, req(id, sec, protocol.GrantClientCredentials, "scope", "nope"), protocol.InvalidScope)
	e.refused(t, req(id, sec, protocol.GrantClientCredentials, "audience", "https://elsewhere"), protocol.InvalidTarget)
	e.refused(t, req(id, "wrong", protocol.GrantClientCredentials), protocol.InvalidClient)
	e.token(t, req(id, sec, protocol.GrantClientCredentials))
}

// TestHourlyAndDailyLimits: both windows count every new token; the tighter one is reported;
// whichever is reached refuses until it resets.
func TestHourlyAndDailyLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.clock.Set(time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC))
	id, sec := e.client(t, storage.Client{HourlyLimit: 2, DailyLimit: 5})
	eleven, midnight := time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		advance time.Duration
		ok      bool
		limit   int
		left    int
		reset   time.Time
	}{
		{0, true, 2, 1, eleven},
		{0, true, 2, 0, eleven},
		{0, false, 2, 0, eleven}, // the hour is full: retry at 11:00
		{30 * time.Minute, true, 2, 1, eleven.Add(time.Hour)},
		{0, true, 2, 0, eleven.Add(time.Hour)},
		{time.Hour, true, 5, 0, midnight}, // the fifth of the day: the day is tighter
		{0, false, 5, 0, midnight},
	}
	for i, st := range steps {
		e.clock.Advance(st.advance)
		tok, err := e.svc.Token(context.Background(), req(id, sec, protocol.GrantClientCredentials))
		var rl *protocol.RateLimit
		if st.ok {
			if err != nil {
				t.Fatalf("step %d: %v", i+1, err)
			}
			rl = tok.RateLimit
		} else {
			pe := protocol.As(err)
			if pe.Code != protocol.RateLimited {
				t.Fatalf("step %d: %v, want rate_limited", i+1, err)
			}
			if want := int(st.reset.Sub(e.clock.Now()).Seconds()); pe.RetryAfter != want {
				t.Errorf("step %d: Retry-After %d, want %d", i+1, pe.RetryAfter, want)
			}
			rl = pe.RateLimit
		}
		if rl == nil || rl.Limit != st.limit || rl.Remaining != st.left || !rl.Reset.Equal(st.reset) {
			t.Errorf("step %d: rate limit %+v, want %d, %d left, reset at %v", i+1, rl, st.limit, st.left, st.reset)
		}
	}
	want := []QuotaEvent{
		{ClientID: id, Subject: id, Window: WindowHourly, Limit: 2, Count: 2},
		{ClientID: id, Subject: id, Window: WindowDaily, Limit: 5, Count: 5},
	}
	if got := e.quotaEvents(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("quota events %+v, want %+v", got, want)
	}
}

// TestShadowLimits: a shadow limit refuses nothing; it counts, and tells the operator (quota
// event, log line) and the caller (rate limit) who is beyond it.
func TestShadowLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.clock.Set(time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC))
	// Hourly in shadow beside an enforced daily limit: an operator trying an hourly limit out.
	id, sec := e.client(t, storage.Client{HourlyLimit: 1, HourlyLimitShadow: true, DailyLimit: 4})
	for i := 1; i <= 4; i++ {
		tok := e.token(t, req(id, sec, protocol.GrantClientCredentials))
		// The hour's remaining is 0 from the first token on; the day's 3, 2, 1, 0.
		if tok.RateLimit == nil || tok.RateLimit.Remaining != 0 {
			t.Errorf("token %d: rate limit %+v, want 0 left", i, tok.RateLimit)
		}
	}
	if pe := e.refused(t, req(id, sec, protocol.GrantClientCredentials), protocol.RateLimited); !strings.Contains(pe.Description, "daily limit of 4") {
		t.Errorf("the enforced daily limit: %q", pe.Description)
	}
	shadow, enforced := 0, 0
	for _, q := range e.quotaEvents() {
		switch {
		case q.Shadow && q.Window == WindowHourly && q.Limit == 1:
			shadow++
		case !q.Shadow && q.Window == WindowDaily && q.Limit == 4:
			enforced++
		default:
			t.Errorf("quota event %+v", q)
		}
	}
	if shadow != 3 || enforced != 1 {
		t.Errorf("%d shadow overruns (want 3, tokens 2 to 4), %d daily refusals (want 1)", shadow, enforced)
	}
	lines := 0
	for _, l := range strings.Split(e.log.String(), "\n") {
		if strings.Contains(l, "quota exceeded in shadow mode") {
			lines++
			if !strings.Contains(l, "client_id="+id) || !strings.Contains(l, "window=hourly") || !strings.Contains(l, "limit=1") {
				t.Errorf("log line %q", l)
			}
		}
	}
	if lines != 3 {
		t.Errorf("%d shadow log lines, want 3:\n%s", lines, e.log.String())
	}

	// Both in shadow: nothing is ever refused.
	both, bothSec := e.client(t, storage.Client{DailyLimit: 1, DailyLimitShadow: true, HourlyLimit: 1, HourlyLimitShadow: true})
	for range 5 {
		e.token(t, req(both, bothSec, protocol.GrantClientCredentials))
	}
	daily := 0
	for _, q := range e.quotaEvents() {
		if q.ClientID == both && q.Window == WindowDaily && q.Shadow {
			daily++
		}
	}
	if daily != 4 {
		t.Errorf("daily shadow overruns %d, want 4", daily)
	}
}

// TestLimitedLogin: a login under a limit (no reuse) stores its refresh family in the
// admission's own store call, and only when the admission lets it out.
func TestLimitedLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, sec := e.client(t, storage.Client{DailyLimit: 1, GrantTypes: loginGrants})
	e.user(t, "dave", "dave-password")
	tok := e.token(t, loginReq(id, sec, "dave"))
	if tok.RateLimit == nil || tok.RateLimit.Remaining != 0 || tok.RefreshToken == "" {
		t.Fatalf("limited login: %+v", tok)
	}
	e.refused(t, loginReq(id, sec, "dave"), protocol.RateLimited)
	if got := e.minted(protocol.GrantPassword); got != 1 {
		t.Errorf("%d minted, want 1: the refused login was signed but never let out", got)
	}
	e.token(t, refreshReq(id, sec, tok.RefreshToken))
}

func TestWindows(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		now     time.Time
		loc     *time.Location
		day     string
		dayEnd  time.Time
		hour    string
		hourEnd time.Time
	}{
		{"UTC by default", time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC), nil,
			"2026-03-01", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), "2026-03-01T23:00:00Z", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{"a half-hour zone", time.Date(2026, 3, 1, 18, 40, 0, 0, time.UTC), kolkata,
			"2026-03-02", time.Date(2026, 3, 3, 0, 0, 0, 0, kolkata), "2026-03-01T18:30:00Z", time.Date(2026, 3, 1, 19, 30, 0, 0, time.UTC)},
		// Clocks go back at 03:00 CEST on 25 October 2026: 02:00-03:00 happens twice, as two hours.
		{"the first 02:30", time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), berlin,
			"2026-10-25", time.Date(2026, 10, 26, 0, 0, 0, 0, berlin), "2026-10-25T00:00:00Z", time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)},
		{"the second 02:30", time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), berlin,
			"2026-10-25", time.Date(2026, 10, 26, 0, 0, 0, 0, berlin), "2026-10-25T01:00:00Z", time.Date(2026, 10, 25, 2, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		day, dayEnd := dayWindow(tc.now, tc.loc)
		hour, hourEnd := hourWindow(tc.now, tc.loc)
		if day != tc.day || !dayEnd.Equal(tc.dayEnd) {
			t.Errorf("%s: day %s ending %v, want %s ending %v", tc.name, day, dayEnd, tc.day, tc.dayEnd)
		}
		if hour != tc.hour || !hourEnd.Equal(tc.hourEnd) {
			t.Errorf("%s: hour %s ending %v, want %s ending %v", tc.name, hour, hourEnd, tc.hour, tc.hourEnd)
		}
	}
}

func TestTightest(t *testing.T) {
	t.Parallel()
	noon, midnight := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		qs   []quota
		want *protocol.RateLimit
	}{
		{"none", nil, nil},
		{"one", []quota{{WindowDaily, 10, 3, false, midnight}}, &protocol.RateLimit{Limit: 10, Remaining: 7, Reset: midnight}},
		{"the fewest left", []quota{{WindowDaily, 10, 3, false, midnight}, {WindowHourly, 2, 1, false, noon}},
			&protocol.RateLimit{Limit: 2, Remaining: 1, Reset: noon}},
		{"a tie: the later reset", []quota{{WindowHourly, 2, 2, false, noon}, {WindowDaily, 5, 5, false, midnight}},
			&protocol.RateLimit{Limit: 5, Remaining: 0, Reset: midnight}},
		{"past a shadow limit: none left, not fewer", []quota{{WindowHourly, 1, 3, true, noon}},
			&protocol.RateLimit{Limit: 1, Remaining: 0, Reset: noon}},
	}
	for _, tc := range tests {
		got := tightest(tc.qs)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// slowAdmit is the memory store with admissions that take a while, so identical requests
// overlap.
type slowAdmit struct {
	Store
	delay time.Duration
}

func (s *slowAdmit) Admit(ctx context.Context, a storage.Admission) (storage.Admitted, error) {
	time.Sleep(s.delay)
	return s.Store.Admit(ctx, a)
}

// TestSharedIssuanceHandsTheRefreshTokenToOne: identical logins of a reuse client that arrive
// together share one issuance; all get its access token, exactly one its refresh token, which
// then rotates like any other.
func TestSharedIssuanceHandsTheRefreshTokenToOne(t *testing.T) {
	t.Parallel()
	// The first login's issuance stays open until the others, slowed by their password checks,
	// have joined it.
	e := newEnvOver(t, func(s Store) Store { return &slowAdmit{Store: s, delay: 300 * time.Millisecond} }, nil)
	id, sec := e.client(t, storage.Client{Reuse: true, GrantTypes: loginGrants})
	e.user(t, "dave", "dave-password")
	const n = 8
	answers := make([]*Token, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = e.token(t, loginReq(id, sec, "dave")) })
	}
	wg.Wait()
	var refresh []string
	for _, tok := range answers {
		if tok.AccessToken != answers[0].AccessToken {
			t.Fatal("concurrent logins got different access tokens")
		}
		if tok.RefreshToken != "" {
			refresh = append(refresh, tok.RefreshToken)
		}
	}
	if len(refresh) != 1 {
		t.Fatalf("%d concurrent logins got %d refresh tokens, want exactly 1", n, len(refresh))
	}
	if got := e.minted(protocol.GrantPassword); got != 1 {
		t.Errorf("%d minted, want 1", got)
	}
	e.token(t, refreshReq(id, sec, refresh[0]))
}

// busyStore answers that every reuse slot is held by an issuance in flight, busy times.
type busyStore struct {
	Store
	mu   sync.Mutex
	busy int
}

func (s *busyStore) Admit(ctx context.Context, a storage.Admission) (storage.Admitted, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy > 0 {
		s.busy--
		return storage.Admitted{Busy: true}, nil
	}
	return s.Store.Admit(ctx, a)
}

// TestBusyPool: while every slot of a pool is held by issuances in flight, the request waits
// for their token; if none comes, it is answered 503 for this server's load, not the store's.
func TestBusyPool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		busy int
		ok   bool
	}{
		{"busy twice", 2, true},
		{"busy for good", 1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvOver(t, func(s Store) Store { return &busyStore{Store: s, busy: tc.busy} }, nil)
			id, sec := e.client(t, storage.Client{Reuse: true})
			_, err := e.svc.Token(context.Background(), req(id, sec, protocol.GrantClientCredentials))
			if tc.ok {
				if err != nil {
					t.Fatalf("after two busy answers: %v", err)
				}
				return
			}
			if protocol.As(err).Code != protocol.TemporarilyUnavailable || !errors.Is(err, ErrBusy) {
				t.Fatalf("busy for good: %v, want temporarily_unavailable caused by ErrBusy", err)
			}
		})
	}
}
