package server_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tokensmith/tokensmith/internal/testlog"
	"github.com/tokensmith/tokensmith/registry"
)

// rateLimit is what a token answer's X-RateLimit-* headers say.
type rateLimit struct {
	limit, remaining string
	reset            time.Time
}

func rateLimitOf(t *testing.T, r reply) rateLimit {
	t.Helper()
	reset, err := strconv.ParseInt(r.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		t.Fatalf("X-RateLimit-Reset %q: %v", r.Header.Get("X-RateLimit-Reset"), err)
	}
	return rateLimit{r.Header.Get("X-RateLimit-Limit"), r.Header.Get("X-RateLimit-Remaining"), time.Unix(reset, 0).UTC()}
}

// TestHourlyAndDailyLimits: both windows count every new token; the tighter one is in the
// headers; whichever is reached refuses until it resets.
func TestHourlyAndDailyLimits(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withStore(open(t)))
			ts.Clock.Set(time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC))
			id, sec := ts.client(t, registry.ClientInput{HourlyLimit: ptr(2), DailyLimit: ptr(5)})
			cc := url.Values{"grant_type": {"client_credentials"}}
			eleven, midnight := time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
			steps := []struct {
				advance time.Duration
				status  int
				want    rateLimit
			}{
				{0, 200, rateLimit{"2", "1", eleven}},
				{0, 200, rateLimit{"2", "0", eleven}},
				{0, 429, rateLimit{"2", "0", eleven}}, // the hour is full: retry at 11:00
				{30 * time.Minute, 200, rateLimit{"2", "1", eleven.Add(time.Hour)}},
				{0, 200, rateLimit{"2", "0", eleven.Add(time.Hour)}},
				{time.Hour, 200, rateLimit{"5", "0", midnight}}, // the fifth of the day: the day is tighter
				{0, 429, rateLimit{"5", "0", midnight}},
			}
			for i, st := range steps {
				ts.Clock.Advance(st.advance)
				r := ts.form(t, id, sec, cc)
				if r.Status != st.status {
					t.Fatalf("step %d: %d %s", i+1, r.Status, r.RawBody)
				}
				if got := rateLimitOf(t, r); got != st.want {
					t.Fatalf("step %d: headers %+v, want %+v", i+1, got, st.want)
				}
				if st.status == 429 {
					wantRetry := int(st.want.reset.Sub(ts.Clock.Now()).Seconds())
					if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra != wantRetry {
						t.Fatalf("step %d: Retry-After %q, want %d", i+1, r.Header.Get("Retry-After"), wantRetry)
					}
				}
			}
			if got := testutil.ToFloat64(ts.Metrics.QuotaExceeded.WithLabelValues(id, "hourly", "enforced")); got != 1 {
				t.Fatalf("hourly refusals counted %v, want 1", got)
			}
			if got := testutil.ToFloat64(ts.Metrics.QuotaExceeded.WithLabelValues(id, "daily", "enforced")); got != 1 {
				t.Fatalf("daily refusals counted %v, want 1", got)
			}
		})
	}
}

// TestShadowLimits: a shadow limit refuses nothing; it counts, and tells the operator (metric,
// log line) and the caller (headers) who is beyond it.
func TestShadowLimits(t *testing.T) {
	logs := &testlog.Buffer{}
	ts := newTestServer(t, withLogs(logs))
	ts.Clock.Set(time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC))
	// Hourly in shadow beside an enforced daily limit: an operator trying an hourly limit out.
	id, sec := ts.client(t, registry.ClientInput{HourlyLimit: ptr(1), HourlyLimitShadow: ptr(true), DailyLimit: ptr(4)})
	cc := url.Values{"grant_type": {"client_credentials"}}
	for i := 1; i <= 4; i++ {
		r := ts.form(t, id, sec, cc)
		if r.Status != 200 {
			t.Fatalf("token %d: %d %s", i, r.Status, r.RawBody)
		}
		// The hour's remaining is 0 from the first token on; the day's 3, 2, 1, 0.
		if got := rateLimitOf(t, r); got.remaining != "0" {
			t.Fatalf("token %d: %+v", i, got)
		}
	}
	if r := ts.form(t, id, sec, cc); r.Status != 429 || !strings.Contains(r.str("error_description"), "daily limit of 4") {
		t.Fatalf("the enforced daily limit: %d %s", r.Status, r.RawBody)
	}
	if got := testutil.ToFloat64(ts.Metrics.QuotaExceeded.WithLabelValues(id, "hourly", "shadow")); got != 3 {
		t.Fatalf("shadow overruns counted %v, want 3 (tokens 2 to 4)", got)
	}
	if got := testutil.ToFloat64(ts.Metrics.QuotaExceeded.WithLabelValues(id, "daily", "enforced")); got != 1 {
		t.Fatalf("daily refusals counted %v, want 1", got)
	}
	lines := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "quota exceeded in shadow mode") {
			lines++
			if !strings.Contains(l, "client_id="+id) || !strings.Contains(l, "window=hourly") || !strings.Contains(l, "limit=1") {
				t.Fatalf("log line %q", l)
			}
		}
	}
	if lines != 3 {
		t.Fatalf("%d shadow log lines, want 3:\n%s", lines, logs.String())
	}

	// Both in shadow: nothing is ever refused.
	both, bothSec := ts.client(t, registry.ClientInput{DailyLimit: ptr(1), DailyLimitShadow: ptr(true), HourlyLimit: ptr(1), HourlyLimitShadow: ptr(true)})
	for i := range 5 {
		if r := ts.form(t, both, bothSec, cc); r.Status != 200 {
			t.Fatalf("both shadowed, token %d: %d %s", i+1, r.Status, r.RawBody)
		}
	}
	if got := testutil.ToFloat64(ts.Metrics.QuotaExceeded.WithLabelValues(both, "daily", "shadow")); got != 4 {
		t.Fatalf("daily shadow overruns %v, want 4", got)
	}
}

// TestQuotaFieldsInTheAdminAPI: the new client fields go in and come out.
func TestQuotaFieldsInTheAdminAPI(t *testing.T) {
	ts := newTestServer(t)
	r := ts.admin(t, "POST", "/admin/clients", `{"hourly_limit":10,"daily_limit":100,"hourly_limit_shadow":true}`)
	if r.Status != 201 || r.Body["hourly_limit"] != 10.0 || r.Body["daily_limit"] != 100.0 ||
		r.Body["hourly_limit_shadow"] != true || r.Body["daily_limit_shadow"] != false {
		t.Fatalf("create: %d %s", r.Status, r.RawBody)
	}
	id := r.str("client_id")
	if p := ts.admin(t, "PATCH", "/admin/clients/"+id, `{"hourly_limit_shadow":false,"daily_limit_shadow":true}`); p.Status != 200 ||
		p.Body["hourly_limit_shadow"] != false || p.Body["daily_limit_shadow"] != true {
		t.Fatalf("PATCH: %d %s", p.Status, p.RawBody)
	}
	if p := ts.admin(t, "PATCH", "/admin/clients/"+id, `{"hourly_limit":-1}`); p.Status != 400 {
		t.Fatalf("negative hourly_limit: %d %s", p.Status, p.RawBody)
	}
}
