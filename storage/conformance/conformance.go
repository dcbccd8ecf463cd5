// Package conformance is the test suite every storage backend must pass. A backend's test
// calls RunTests with a constructor for a fresh, empty store; the suite checks behaviour
// (including the security promises of refresh rotation under races), never implementation.
package conformance

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/storage"
)

// RunTests runs the whole suite. newStore must return an empty store; the suite closes it.
func RunTests(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.Storage)
	}{
		{"Clients", testClients},
		{"UpdateClientAtomic", testUpdateClientAtomic},
		{"OwnedClients", testOwnedClients},
		{"OwnedClientsConcurrent", testOwnedClientsConcurrent},
		{"LongestAccessTokenTTL", testLongestAccessTokenTTL},
		{"Users", testUsers},
		{"SigningKeys", testSigningKeys},
		{"SigningKeysRace", testSigningKeysRace},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshForeignClient", testRefreshForeignClient},
		{"RefreshExpired", testRefreshExpired},
		{"RefreshReplayRevokesFamily", testRefreshReplay},
		{"RefreshConcurrentRotation", testRefreshConcurrent},
		{"RevokeFamily", testRevokeFamily},
		{"Replicas", testReplicas},
		{"ReusePool", testReusePool},
		{"ReusePoolCapacity", testReuseCapacity},
		{"DailyLimit", testDailyLimit},
		{"DailyLimitConcurrent", testDailyLimitConcurrent},
		{"HourlyAndDailyLimits", testHourlyAndDaily},
		{"ShadowLimits", testShadowLimits},
		{"LimitsConcurrent", testLimitsConcurrent},
		{"CallerClock", testCallerClock},
		{"UsersCaseInsensitive", testUsersCaseInsensitive},
		{"UpdateUser", testUpdateUser},
		{"UpdateCallbackRetries", testUpdateCallbackMayRepeat},
		{"DeadlineHonoured", testDeadline},
		{"RotationNeedsItsUser", testRotationNeedsUser},
		{"RotationAfterPasswordChange", testRotationAfterPasswordChange},
		{"AdmissionWithFamily", testAdmissionWithFamily},
		{"FamilyOutlivesItsAccessTokens", testFamilyLifetime},
		{"RevokeAccessToken", testRevokeAccess},
		{"RevokedFamilyLeavesPool", testRevokedFamilyLeavesPool},
		{"TokenStateUser", testTokenStateUser},
		{"ClientIncarnations", testIncarnations},
		{"LoginBackoff", testLoginBackoff},
		{"LoginBackoffSparesCleanAddresses", testLoginBackoffCleanAddress},
		{"ChangeFeed", testChangeFeed},
		{"PersonalTokens", testPersonalTokens},
		{"PersonalTokensGoWithTheirUser", testPersonalTokensOfDeletedUser},
		{"TrustedIssuers", testTrustedIssuers},
		{"RestoreTrustedIssuers", testRestoreTrustedIssuers},
		{"FederatedIndex", testFederatedIndex},
		{"KeyRotation", testKeyRotation},
		{"KeyRestore", testKeyRestore},
		{"SigningKeysPerAlgorithm", testSigningKeysPerAlgorithm},
		{"SigningKeysPerAlgorithmRace", testSigningKeysPerAlgorithmRace},
		{"KeyRotationPerAlgorithm", testKeyRotationPerAlgorithm},
		{"Sessions", testSessions},
		{"SessionsExpireInTheStore", testSessionsExpireInTheStore},
		{"RestoreRoundTrip", testRestoreRoundTrip},
		{"ExportReadsWhatTheStoreDid", testExportReadsWhatTheStoreDid},
		{"RestoreMerges", testRestoreMerges},
		{"RestoreBesideCurrentToken", testRestoreBesideCurrentToken},
		{"ExportWhileWriting", testExportWhileWriting},
		{"RestoredRevocationsLeavePools", testRestoredRevocationsLeavePools},
		{"AssertionOnce", testAssertionOnce},
		{"AssertionOnceConcurrent", testAssertionOnceConcurrent},
		{"AssertionExpires", testAssertionExpires},
		{"SessionEpoch", testSessionEpoch},
		{"FamilyEpoch", testFamilyEpoch},
		{"AdmissionEpoch", testAdmissionEpoch},
		{"EpochRace", testEpochRace},
		{"PersonalTokenCap", testPersonalTokenCap},
		{"Seed", testSeed},
		{"TokensLeaveTheStore", testTokensLeaveTheStore},
		{"ServerSecret", testServerSecret},
		{"UsernamesNormalised", testUsernamesNormalised},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.run(t, s)
		})
	}
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("got error %v, want %v", got, want)
	}
}

func newFamily(t *testing.T, s storage.Storage, fam string, now time.Time) storage.RefreshToken {
	t.Helper()
	rt := storage.RefreshToken{
		Hash: "h0", FamilyID: fam, ClientID: "client", Subject: "user", Scope: "a",
		AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	mustNoErr(t, s.CreateRefreshToken(context.Background(), rt))
	return rt
}

func rotation(fam, from, to string, now time.Time, grace time.Duration) storage.Rotation {
	return storage.Rotation{
		FamilyID: fam, Hash: from, ClientID: "client", Now: now, Grace: grace,
		Next: storage.RefreshToken{
			Hash: to, FamilyID: fam, ClientID: "client", Subject: "user", Scope: "a",
			AccessTTL: time.Hour, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		},
		Sealed: []byte("sealed-" + to),
	}
}

// familyRevoked asks TokenState about an access token of the family.
func familyRevoked(t *testing.T, s storage.Storage, fam string, now time.Time) bool {
	t.Helper()
	st, err := s.TokenState(context.Background(), storage.TokenQuery{ClientID: "client", JTI: fam + "-jti", FamilyID: fam, Now: now})
	mustNoErr(t, err)
	return st.Revoked
}

func admission(now time.Time, capacity int, res string) storage.Admission {
	return storage.Admission{
		Now: now, Reuse: true, Pool: storage.Pool{ClientID: "c", Subject: "c", Scope: "a b", Audience: "api"},
		MinRemaining: 5 * time.Minute, Capacity: capacity, Reservation: res, ReserveUntil: now.Add(10 * time.Second),
	}
}

func pooled(jti string, now time.Time, ttl time.Duration) *storage.PooledToken {
	return &storage.PooledToken{AccessToken: "tok-" + jti, JTI: jti, Scope: "a b", IssuedAt: now, ExpiresAt: now.Add(ttl)}
}

// admitAll runs n admissions at once and returns their answers.
func admitAll(t *testing.T, s storage.Storage, n int, mk func(i int) storage.Admission) []storage.Admitted {
	t.Helper()
	out := make([]storage.Admitted, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := s.Admit(context.Background(), mk(i))
			if err != nil {
				t.Error(err)
			}
			out[i] = got
		})
	}
	wg.Wait()
	return out
}

func limitAdmission(now time.Time, limit int, day string) storage.Admission {
	return storage.Admission{Now: now, Pool: storage.Pool{ClientID: "c", Subject: "u"}, Limit: limit, Day: day, ResetAt: now.Add(time.Hour)}
}
