// Package storetest checks that a users.Store keeps the Store contract.
//
// A Store implementation runs the suite from one of its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) users.Store {
//			return mystore.Open(t.TempDir())
//		})
//	}
//
// Run has one subtest per rule of the contract, grouped by Store method
// (TestStore/CreateUser/DuplicateEmail, …), and each failure says which rule broke.
// Some subtests call the Store from many goroutines at once: run the suite with
// -race. RunCredentials runs the rules of one part of the contract,
// users.CredentialStore, alone.
//
// The package is also the test kit that storetest's rules, the users package's
// tests and the stores' tests share: a fake Clock, a Fixture (a Manager over a
// Store with that clock) and ExactlyOne, the check that one racing call won.
package storetest

import (
	"context"
	"testing"

	"github.com/userkit/users"
)

// Run checks that the stores newStore returns keep the users.Store contract.
// newStore is called once per subtest and must return an empty Store, which it
// may close with t.Cleanup. Subtests run one after the other.
//
// If the Store has a method Check(ctx context.Context) error, as the bbolt store
// does, Run calls it after every rule and fails the rule with the error it
// returns, so a rule that leaves the store inconsistent is caught where it ran.
func Run(t *testing.T, newStore func(t *testing.T) users.Store) {
	type test struct {
		name string
		fn   func(t *testing.T, s users.Store)
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"CreateUser", []test{
			{"RoundTrip", testCreateUserRoundTrip},
			{"DuplicateEmail", testCreateUserDuplicateEmail},
			{"DuplicateUsername", testCreateUserDuplicateUsername},
			{"EmailCheckedFirst", testCreateUserEmailCheckedFirst},
			{"DuplicateID", testCreateUserDuplicateID},
			{"EmptyUsernamesDoNotCollide", testCreateUserEmptyUsernames},
			{"ComparesExactly", testCreateUserComparesExactly},
			{"CopiesInput", testCreateUserCopiesInput},
			{"ConcurrentSameEmail", emailKey.testCreateConcurrent},
			{"ConcurrentSameUsername", usernameKey.testCreateConcurrent},
		}},
		{"GetUser", []test{
			{"NotFound", lookupByID.testNotFound},
			{"ReturnsCopy", lookupByID.testReturnsCopy},
		}},
		{"GetUserByEmail", []test{
			{"NotFound", lookupByEmail.testNotFound},
			{"ReturnsCopy", lookupByEmail.testReturnsCopy},
		}},
		{"GetUserByUsername", []test{
			{"NotFound", lookupByUsername.testNotFound},
			{"EmptyNeverMatches", testGetUserByUsernameEmpty},
			{"ReturnsCopy", lookupByUsername.testReturnsCopy},
		}},
		{"UpdateUser", []test{
			{"SeesCurrentRecord", testUpdateUserSeesCurrent},
			{"WritesAndReturns", testUpdateUserWrites},
			{"FnErrorWritesNothing", testUpdateUserFnError},
			{"NotFound", testUpdateUserNotFound},
			{"ChangeEmail", testUpdateUserChangeEmail},
			{"ChangeUsername", testUpdateUserChangeUsername},
			{"KeepOwnEmailAndUsername", testUpdateUserKeepOwn},
			{"DuplicateEmail", testUpdateUserDuplicateEmail},
			{"DuplicateUsername", testUpdateUserDuplicateUsername},
			{"RevokeSessions", testUpdateUserRevokeSessions},
			{"RevokeTokens", testUpdateUserRevokeTokens},
			{"RefusesIDChange", testUpdateUserRefusesIDChange},
			{"RefusesGenerationChange", testUpdateUserRefusesGenerationChange},
			{"FnArgumentIsCopy", testUpdateUserFnArgIsCopy},
			{"ReturnsCopy", testUpdateUserReturnsCopy},
			{"ConcurrentReadModifyWrite", testUpdateUserConcurrent},
		}},
		{"DeleteUser", []test{
			{"DeletesEverything", testDeleteUserDeletesEverything},
			{"FreesEmailAndUsername", testDeleteUserFreesKeys},
			{"NotFound", testDeleteUserNotFound},
		}},
		{"ListUsers", []test{
			{"AscendingOrder", testListUsersOrder},
			{"Limit", testListUsersLimit},
			{"After", testListUsersAfter},
			{"AfterMissingID", testListUsersAfterMissing},
			{"Before", testListUsersBefore},
			{"BeforeFewerThanLimit", testListUsersBeforeFew},
			{"Offset", testListUsersOffset},
			{"OffsetAfter", testListUsersOffsetAfter},
			{"OffsetBefore", testListUsersOffsetBefore},
			{"Filter", testListUsersFilter},
			{"FilterWithCursorsAndOffset", testListUsersFilterPaging},
			{"EmptyIsNotAnError", testListUsersEmpty},
			{"ReturnsCopies", testListUsersReturnsCopies},
			{"WalkWhileChanging", testListUsersWalkWhileChanging},
		}},
		{"CountUsers", []test{
			{"MatchesFilter", testCountUsersFilter},
		}},
		{"CreateSession", []test{
			{"RoundTrip", testCreateSessionRoundTrip},
			{"UserNotFound", testCreateSessionUserNotFound},
			{"StaleGeneration", testCreateSessionStaleGeneration},
			{"DuplicateTokenHash", testCreateSessionDuplicateHash},
			{"DuplicateID", testCreateSessionDuplicateID},
			{"CopiesInput", testCreateSessionCopiesInput},
			{"RacesDeleteUser", testCreateSessionRacesDeleteUser},
			{"RacesRevocation", testCreateSessionRacesRevocation},
		}},
		{"GetSession", []test{
			{"NotFound", testGetSessionNotFound},
			{"ReturnsExpired", testGetSessionReturnsExpired},
			{"ReturnsCurrentUser", testGetSessionCurrentUser},
			{"ReturnsCopies", testGetSessionReturnsCopies},
			{"SetsEveryField", testGetSessionSetsEveryField},
			{"FillsTheRoomGiven", testGetSessionFillsRoom},
		}},
		{"TouchSession", []test{
			{"MovesForwardOnly", testTouchSessionForward},
			{"NotFound", testTouchSessionNotFound},
			{"NeverRecreates", testTouchSessionNeverRecreates},
		}},
		{"DeleteSession", []test{
			{"Deletes", testDeleteSession},
			{"NotFound", testDeleteSessionNotFound},
			{"FreesHashAndID", testDeleteSessionFrees},
		}},
		{"DeleteSessionByID", []test{
			{"Deletes", testDeleteSessionByID},
			{"WrongUser", testDeleteSessionByIDWrongUser},
			{"NotFound", testDeleteSessionByIDNotFound},
		}},
		{"DeleteUserSessions", []test{
			{"DeletesAndIncrementsGeneration", testDeleteUserSessions},
			{"WithoutSessions", testDeleteUserSessionsNone},
			{"NotFound", testDeleteUserSessionsNotFound},
		}},
		{"ListSessions", []test{
			{"Order", testListSessionsOrder},
			{"Empty", testListSessionsEmpty},
			{"ReturnsCopies", testListSessionsReturnsCopies},
		}},
		{"GetLoginAttempts", []test{
			{"MissingIsZero", testGetLoginAttemptsMissing},
		}},
		{"UpdateLoginAttempts", []test{
			{"WritesAndReturns", testUpdateLoginAttempts},
			{"FnErrorWritesNothing", testUpdateLoginAttemptsFnError},
			{"ZeroDeletes", testUpdateLoginAttemptsZeroDeletes},
			{"KeysAreIndependent", testUpdateLoginAttemptsKeys},
			{"ConcurrentIncrements", testUpdateLoginAttemptsConcurrent},
		}},
		{"Throttle", []test{
			{"ConcurrentLogins", testThrottleConcurrentLogins},
			{"ConcurrentPasswordChanges", testThrottleConcurrentPasswordChanges},
			{"SuccessReleases", testThrottleSuccessReleases},
			{"EveryFieldKeeps", testThrottleEveryFieldKeeps},
		}},
		{"CreateToken", []test{
			{"RoundTrip", testCreateTokenRoundTrip},
			{"UserNotFound", testCreateTokenUserNotFound},
			{"DuplicateHash", testCreateTokenDuplicateHash},
			{"Replace", testCreateTokenReplace},
			{"NoReplaceKeeps", testCreateTokenNoReplace},
			{"CopiesInput", testCreateTokenCopiesInput},
			{"DecoyKeepsNothing", testCreateTokenDecoy},
		}},
		{"GetToken", []test{
			{"DoesNotConsume", testGetTokenDoesNotConsume},
			{"WrongPurpose", testGetTokenWrongPurpose},
			{"WhateverExpiry", testGetTokenWhateverExpiry},
			{"NotFound", testGetTokenNotFound},
			{"ReturnsCopy", testGetTokenReturnsCopy},
		}},
		{"ConsumeToken", []test{
			{"ConsumesOnce", testConsumeToken},
			{"WrongPurposeKeeps", testConsumeTokenWrongPurpose},
			{"WhateverExpiry", testConsumeTokenWhateverExpiry},
			{"NotFound", testConsumeTokenNotFound},
			{"ConcurrentExactlyOnce", testConsumeTokenConcurrent},
		}},
		{"DeleteExpired", []test{
			{"Boundary", testDeleteExpiredBoundary},
			{"FreesHashesAndIDs", testDeleteExpiredFrees},
			{"CountsOnlyStoredRecords", testDeleteExpiredCountsStored},
			{"FollowsCurrentExpiry", testDeleteExpiredCurrentExpiry},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := newStore(t)
					tc.fn(t, s)
					checkStore(t, s)
				})
			}
		})
	}
	// Rules written with their explanation, as testing/slogtest pairs them.
	for _, g := range []struct {
		name  string
		rules []rule
	}{
		{"Batch", batchRules},                 // batch.go
		{"Indexes", indexRules},               // index.go
		{"Audit", auditRules},                 // audit.go
		{"SessionsAndActivity", sessionRules}, // audit.go
		{"MFA", mfaRules},                     // mfa.go
	} {
		t.Run(g.name, func(t *testing.T) {
			for _, r := range g.rules {
				t.Run(r.name, func(t *testing.T) { r.fn(t, newStore(t), r.explanation) })
			}
		})
	}
	t.Run("CanceledContext", func(t *testing.T) {
		for _, c := range canceledCalls {
			t.Run(c.method, func(t *testing.T) {
				s := newStore(t)
				testCanceled(t, s, c.method, c.call)
				checkStore(t, s)
			})
		}
	})
	t.Run("Credentials", func(t *testing.T) { RunCredentials(t, newStore) }) // credentials.go
	t.Run("Manager", func(t *testing.T) { RunManager(t, newStore) })
}

// checkStore runs the store's own integrity check, when it has one, after a
// rule: like fstest probing for fs.ReadDirFS, Run asks every Store for an
// optional Check(ctx) error method (the bbolt store has one) and fails the rule
// with the error Check returns.
func checkStore(t *testing.T, s users.Store) {
	t.Helper()
	c, ok := s.(interface {
		Check(ctx context.Context) error
	})
	if !ok {
		return
	}
	if err := c.Check(t.Context()); err != nil {
		t.Errorf("after the rule, the store's Check: %v", err)
	}
}
