package storage

import (
	"time"
)

// LoginAttempt is one password login (the failed-login backoff). Failures are counted per (username,
// remote address) and per username, both compared case-insensitively and stored only as
// digests, so memory does not grow with the size of what a guesser sends:
//   - an address that has failed Limit times in a row for a username waits 1 s, then 2 s, 4 s …
//     up to MaxDelay before each further attempt;
//   - a username that has failed UserLimit times from all addresses together makes every
//     address that has failed for it at least once wait the same way. An address that has not
//     failed goes through, so a guesser spread over many addresses cannot lock the real user
//     out, and each of its addresses gets one attempt per delay once the ceiling is reached.
//
// Counts lapse Window after the last failure.
type LoginAttempt struct {
	Username  string
	Remote    string
	Now       time.Time
	Limit     int
	UserLimit int
	MaxDelay  time.Duration
	Window    time.Duration
}

// LoginState is what Login answers.
type LoginState struct {
	// User is nil when no user has the username.
	User *User
	// Wait is how long this attempt must wait before it may be checked; 0 lets it through.
	Wait time.Duration
	// Failed reports that this address has failures on record for this username (a success
	// should then call LoginSucceeded).
	Failed bool
}

// Backoff is how long to wait after fails consecutive failures when limit are allowed: none
// below the limit, then 1 s, doubling with every further failure, up to max.
func Backoff(fails, limit int, max time.Duration) time.Duration {
	over := fails - limit
	switch {
	case over < 0:
		return 0
	case over >= 30:
		return max
	}
	return min(time.Second<<over, max)
}
