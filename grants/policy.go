package grants

import "time"

// Policy holds the server-wide defaults that clients override one by one.
type Policy struct {
	Issuer               string
	Audience             []string
	ClientCredentialsTTL time.Duration
	PasswordTTL          time.Duration
	RefreshTTL           time.Duration
	// ExchangeTTL is the lifetime of access tokens from token exchange (at most the personal
	// token's remaining life).
	ExchangeTTL       time.Duration
	RefreshGrace      time.Duration
	ReuseMinRemaining time.Duration
	// DailyLimitLocation is the time zone whose calendar day a daily limit counts (UTC if nil).
	DailyLimitLocation *time.Location
	// FailedLoginLimit is how many wrong passwords one address may send for one username
	// before it is slowed down; ten times as many for one username from all addresses slow
	// down every address that has failed for it (storage.LoginAttempt).
	FailedLoginLimit int
	// ClientCacheTTL is how long a replica trusts a client record it read; 0 reads every time.
	ClientCacheTTL time.Duration
	// StoreTimeout bounds each store call of a request; 0 means no bound (tests).
	StoreTimeout time.Duration
}

// DefaultExchangeTTL is the lifetime of exchanged access tokens when the policy sets none.
const DefaultExchangeTTL = 15 * time.Minute

func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}
