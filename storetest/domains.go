package storetest

import (
	"testing"

	"github.com/userkit/users"
)

// The rules of each domain of the Store contract, grouped by method, each with
// the rule in words beside its test, as testing/slogtest pairs a case with its
// explanation. Rules whose test lives in another file say so in the group.

// RunUsers checks the users' part of the Store contract: creating, reading,
// updating, deleting, listing, counting and searching users, and the batch
// methods. Like every RunX function it takes a whole users.Store but runs
// only its own domain's rules; see Run for newStore and Check.
func RunUsers(t *testing.T, newStore func(t *testing.T) users.Store) {
	runGroups(t, userGroups, newStore)
}

// RunSessions checks the sessions' part of the Store contract, including
// DeleteOtherSessions and the last activity TouchSession records; see RunUsers
// and Run.
func RunSessions(t *testing.T, newStore func(t *testing.T) users.Store) {
	runGroups(t, sessionGroups, newStore)
}

// RunThrottle checks the login throttle's part of the Store contract
// (GetLoginAttempts, UpdateLoginAttempts), alone and under a Manager's
// concurrent logins and rate limits; see RunUsers and Run.
func RunThrottle(t *testing.T, newStore func(t *testing.T) users.Store) {
	runGroups(t, throttleGroups, newStore)
}

// RunTokens checks the one-time tokens' part of the Store contract; see
// RunUsers and Run.
func RunTokens(t *testing.T, newStore func(t *testing.T) users.Store) {
	runGroups(t, tokenGroups, newStore)
}

// RunAudit checks the audit log's part of the Store contract: every domain's
// writes and their entries, ListAudit and DeleteAuditBefore; see RunUsers and
// Run.
func RunAudit(t *testing.T, newStore func(t *testing.T) users.Store) {
	runGroups(t, auditGroups, newStore)
}

// RunSecondFactor checks the second factors' part of the Store contract: MFA
// records and challenges; see RunUsers and Run.
func RunSecondFactor(t *testing.T, newStore func(t *testing.T) users.Store) {
	runGroups(t, secondFactorGroups, newStore)
}

// storeGroup is a named list of Store rules, one subtest each.
type storeGroup struct {
	name  string
	rules []rule[users.Store]
}

var userGroups = []storeGroup{
	{"CreateUser", []rule[users.Store]{
		{"RoundTrip", "CreateUser must store every field of a new user exactly, and GetUser, GetUserByEmail and GetUserByUsername must return it", testCreateUserRoundTrip},
		{"DuplicateEmail", "CreateUser must refuse a second user with the same email (ErrDuplicateEmail), storing nothing and leaving the first as it was", testCreateUserDuplicateEmail},
		{"DuplicateUsername", "CreateUser must refuse a second user with the same username (ErrDuplicateUsername), storing nothing and leaving the first as it was", testCreateUserDuplicateUsername},
		{"EmailCheckedFirst", "CreateUser must check the email before the username: a record whose email and username are both taken gets ErrDuplicateEmail", testCreateUserEmailCheckedFirst},
		{"DuplicateID", "CreateUser must refuse an ID that exists (ErrConflict), leaving the existing user as it was and the new record's email and username free", testCreateUserDuplicateID},
		{"EmptyUsernamesDoNotCollide", "CreateUser must allow any number of users without a username", testCreateUserEmptyUsernames},
		{"ComparesExactly", "CreateUser, GetUserByEmail and GetUserByUsername must compare emails and usernames exactly (they arrive normalised): another case is another key", testCreateUserComparesExactly},
		{"CopiesInput", "CreateUser must keep a copy: changing the record after the call must not change the stored user", testCreateUserCopiesInput},
		{"ConcurrentSameEmail", "of concurrent CreateUser calls with one email exactly one must succeed, the others get ErrDuplicateEmail, and exactly one user has the email", emailKey.testCreateConcurrent},
		{"ConcurrentSameUsername", "of concurrent CreateUser calls with one username exactly one must succeed, the others get ErrDuplicateUsername, and exactly one user has the username", usernameKey.testCreateConcurrent},
	}},
	{"GetUser", []rule[users.Store]{
		{"NotFound", "GetUser must return ErrNotFound for an ID nobody has", lookupByID.testNotFound},
		{"ReturnsCopy", "GetUser must return a copy: changing it must not change the stored user", lookupByID.testReturnsCopy},
	}},
	{"GetUserByEmail", []rule[users.Store]{
		{"NotFound", "GetUserByEmail must return ErrNotFound for an email nobody has", lookupByEmail.testNotFound},
		{"ReturnsCopy", "GetUserByEmail must return a copy: changing it must not change the stored user", lookupByEmail.testReturnsCopy},
	}},
	{"GetUserByUsername", []rule[users.Store]{
		{"NotFound", "GetUserByUsername must return ErrNotFound for a username nobody has", lookupByUsername.testNotFound},
		{"EmptyNeverMatches", "GetUserByUsername(\"\") must never match, not even a user without a username", testGetUserByUsernameEmpty},
		{"ReturnsCopy", "GetUserByUsername must return a copy: changing it must not change the stored user", lookupByUsername.testReturnsCopy},
	}},
	{"UpdateUser", []rule[users.Store]{
		{"SeesCurrentRecord", "UpdateUser must call fn with the record as last written", testUpdateUserSeesCurrent},
		{"WritesAndReturns", "UpdateUser must store what fn left and return the record as written", testUpdateUserWrites},
		{"FnErrorWritesNothing", "UpdateUser must write nothing, and return fn's error unchanged, when fn fails", testUpdateUserFnError},
		{"NotFound", "UpdateUser must return ErrNotFound for a missing user, without calling fn", testUpdateUserNotFound},
		{"ChangeEmail", "UpdateUser must move the user to a new email: found by the new one, the old one freed", testUpdateUserChangeEmail},
		{"ChangeUsername", "UpdateUser must move the user to a new username, or give one or take it away: found by the new one, the old one freed, an empty one matching nobody", testUpdateUserChangeUsername},
		{"KeepOwnEmailAndUsername", "UpdateUser must accept a record that keeps its own email and username", testUpdateUserKeepOwn},
		{"DuplicateEmail", "UpdateUser must refuse an email another user has (ErrDuplicateEmail), writing nothing", testUpdateUserDuplicateEmail},
		{"DuplicateUsername", "UpdateUser must refuse a username another user has (ErrDuplicateUsername), writing nothing", testUpdateUserDuplicateUsername},
		{"RevokeSessions", "UpdateUser with Revoke.Sessions must increment Generation and delete the user's sessions in the same step, and no other user's", testUpdateUserRevokeSessions},
		{"RevokeTokens", "UpdateUser with Revoke.Tokens must delete the user's tokens of those purposes in the same step, keep their other tokens, other users' tokens and their sessions, and leave Generation alone", testUpdateUserRevokeTokens},
		{"RefusesIDChange", "UpdateUser must return ErrKeyChanged and write nothing when fn changes the ID", testUpdateUserRefusesIDChange},
		{"RefusesGenerationChange", "UpdateUser must return ErrKeyChanged and write nothing when fn changes Generation", testUpdateUserRefusesGenerationChange},
		{"FnArgumentIsCopy", "UpdateUser must call fn with a copy: changing it after UpdateUser returned must not change the stored user", testUpdateUserFnArgIsCopy},
		{"ReturnsCopy", "UpdateUser must return a copy: changing it must not change the stored user", testUpdateUserReturnsCopy},
		{"ConcurrentReadModifyWrite", "concurrent UpdateUser calls on one user must each read, call fn and write in one step: no update is lost", testUpdateUserConcurrent},
	}},
	{"DeleteUser", []rule[users.Store]{
		{"DeletesEverything", "DeleteUser must delete the user with their sessions, tokens and UserThrottleKey throttle entry (an IdentifierThrottleKey entry stays), free the email and username, and leave other users' records alone", testDeleteUserDeletesEverything},
		{"FreesEmailAndUsername", "DeleteUser must free the email and username for a new user", testDeleteUserFreesKeys},
		{"NotFound", "DeleteUser must return ErrNotFound for a missing user", testDeleteUserNotFound},
	}},
	{"ListUsers", []rule[users.Store]{
		{"AscendingOrder", "ListUsers must return users in ascending ID order, whatever order they were created in", testListUsersOrder},
		{"Limit", "ListUsers must return at most Limit users, the first ones", testListUsersLimit},
		{"After", "ListUsers with After must start with the first user after it (After is exclusive)", testListUsersAfter},
		{"AfterMissingID", "ListUsers with After the ID of a deleted user must continue after that ID", testListUsersAfterMissing},
		{"Before", "ListUsers with Before must return the last Limit users before it (exclusive), in ascending order", testListUsersBefore},
		{"BeforeFewerThanLimit", "ListUsers with Before and fewer than Limit users before it must return those users", testListUsersBeforeFew},
		{"Offset", "ListUsers must skip Offset users counted from the start", testListUsersOffset},
		{"OffsetAfter", "ListUsers with After must skip Offset users counted from After", testListUsersOffsetAfter},
		{"OffsetBefore", "ListUsers with Before must skip Offset users counted backwards from Before, then return the Limit users before those, in ascending order", testListUsersOffsetBefore},
		{"Filter", "ListUsers must return exactly the users Match.Matches selects", testListUsersFilter},
		{"FilterWithCursorsAndOffset", "ListUsers must count Limit and Offset in matching users only, with After and Before too", testListUsersFilterPaging},
		{"EmptyIsNotAnError", "ListUsers on an empty store must return an empty slice and no error", testListUsersEmpty},
		{"ReturnsCopies", "ListUsers must return copies: changing them must not change the stored users", testListUsersReturnsCopies},
		{"WalkWhileChanging", "walking ListUsers pages with After while users are created and deleted must give strictly ascending IDs and every user that stayed", testListUsersWalkWhileChanging},
	}},
	{"CountUsers", []rule[users.Store]{
		{"MatchesFilter", "CountUsers must count the users Match.Matches selects: 0 on an empty store", testCountUsersFilter},
	}},
	{"Batch", batchRules},           // batch.go
	{"Indexes", indexRules},         // index.go
	{"ExternalID", externalIDRules}, // external.go
}

var sessionGroups = []storeGroup{
	{"CreateSession", []rule[users.Store]{
		{"RoundTrip", "CreateSession must store every field of a session for an existing user under its Generation, and GetSession must return it with its user", testCreateSessionRoundTrip},
		{"UserNotFound", "CreateSession must return ErrNotFound, storing nothing, for a missing user", testCreateSessionUserNotFound},
		{"StaleGeneration", "CreateSession must refuse a UserGeneration that is not the user's Generation (ErrConflict), storing nothing", testCreateSessionStaleGeneration},
		{"DuplicateTokenHash", "CreateSession must refuse a token hash another session has (ErrConflict), leaving that session to its user", testCreateSessionDuplicateHash},
		{"DuplicateID", "CreateSession must refuse a session ID another session has (ErrConflict), leaving that session as it was", testCreateSessionDuplicateID},
		{"CopiesInput", "CreateSession must keep a copy: changing the record or its TokenHash after the call must not change the stored session", testCreateSessionCopiesInput},
		{"RacesDeleteUser", "CreateSession racing DeleteUser must succeed or return ErrNotFound, and no session may outlive its user", testCreateSessionRacesDeleteUser},
		{"RacesRevocation", "CreateSession racing DeleteUserSessions must succeed or return ErrConflict, and no session under the old Generation may outlive the revocation", testCreateSessionRacesRevocation},
		{"IdleTimeoutRoundTrip", "CreateSession and CompleteChallenge must store IdleTimeout to the nanosecond, GetSession and ListSessions return it, and TouchSession and StepUpSession keep it", testSessionIdleTimeoutRoundTrip},
	}},
	{"GetSession", []rule[users.Store]{
		{"NotFound", "GetSession must return ErrNotFound for an unknown token hash", testGetSessionNotFound},
		{"ReturnsExpired", "CreateSession must store, and GetSession and ListSessions return, a session whatever its ExpiresAt: expiry is the Manager's to decide", testGetSessionReturnsExpired},
		{"ReturnsCurrentUser", "GetSession must return the user as it is now, not as it was when the session was made", testGetSessionCurrentUser},
		{"ReturnsCopies", "GetSession must return the session by value and a copy of the user: changing them (but for the session's TokenHash and Methods, which the caller must not modify) must not change what is stored", testGetSessionReturnsCopies},
		{"SetsEveryField", "GetSession must return every field of the session and set every field of the user it is given, empty ones to their zero value, whatever the user record held before", testGetSessionSetsEveryField},
		{"KeepsNothingGiven", "GetSession must return the session (its TokenHash nil or the hash asked for) and fill the user record it is given, and keep nothing of that record once it returns", testGetSessionKeepsNothingGiven},
	}},
	{"TouchSession", []rule[users.Store]{
		{"MovesForwardOnly", "TouchSession must set LastSeenAt to a later time, never an earlier one (the same time leaves it), and change nothing else", testTouchSessionForward},
		{"NotFound", "TouchSession must return ErrNotFound for an unknown token hash", testTouchSessionNotFound},
		{"NeverRecreates", "TouchSession after the session was deleted must return ErrNotFound and not bring it back", testTouchSessionNeverRecreates},
	}},
	{"DeleteSession", []rule[users.Store]{
		{"Deletes", "DeleteSession must delete the session, by hash and by ID, and no other, leaving the user and its Generation as they were", testDeleteSession},
		{"NotFound", "DeleteSession must return ErrNotFound for an unknown token hash", testDeleteSessionNotFound},
		{"FreesHashAndID", "DeleteSession must free the token hash and session ID (no index left behind)", testDeleteSessionFrees},
	}},
	{"DeleteSessionByID", []rule[users.Store]{
		{"Deletes", "DeleteSessionByID must delete a session of the user", testDeleteSessionByID},
		{"WrongUser", "DeleteSessionByID must return ErrNotFound for a session of another user, deleting nothing", testDeleteSessionByIDWrongUser},
		{"NotFound", "DeleteSessionByID must return ErrNotFound for an unknown session ID", testDeleteSessionByIDNotFound},
	}},
	{"DeleteUserSessions", []rule[users.Store]{
		{"DeletesAndIncrementsGeneration", "DeleteUserSessions must delete every session of the user, and no other user's, increment the user's Generation and change nothing else (their tokens stay)", testDeleteUserSessions},
		{"WithoutSessions", "DeleteUserSessions must increment the Generation every time, even without sessions", testDeleteUserSessionsNone},
		{"NotFound", "DeleteUserSessions must return ErrNotFound for a missing user", testDeleteUserSessionsNotFound},
	}},
	{"ListSessions", []rule[users.Store]{
		{"Order", "ListSessions must return only the user's sessions, in ascending CreatedAt order, ties by ID", testListSessionsOrder},
		{"Empty", "ListSessions for a user without sessions, or no such user, must return an empty slice and no error", testListSessionsEmpty},
		{"ReturnsCopies", "ListSessions must return copies: changing them must not change the stored sessions", testListSessionsReturnsCopies},
	}},
	{"SessionsAndActivity", sessionRules}, // audit.go
}

var throttleGroups = []storeGroup{
	{"GetLoginAttempts", []rule[users.Store]{
		{"MissingIsZero", "GetLoginAttempts must return the zero LoginAttempts, and no error, for a key without an entry", testGetLoginAttemptsMissing},
	}},
	{"UpdateLoginAttempts", []rule[users.Store]{
		{"WritesAndReturns", "UpdateLoginAttempts must call fn with the entry as last written (the zero value for a key without one), store what fn left and return it", testUpdateLoginAttempts},
		{"FnErrorWritesNothing", "UpdateLoginAttempts must write nothing, and return fn's error unchanged, when fn fails", testUpdateLoginAttemptsFnError},
		{"ZeroDeletes", "an entry UpdateLoginAttempts's fn leaves zero must be deleted, and the zero value returned", testUpdateLoginAttemptsZeroDeletes},
		{"KeysAreIndependent", "UpdateLoginAttempts must keep one entry per key: changing one never changes another", testUpdateLoginAttemptsKeys},
		{"ConcurrentIncrements", "concurrent UpdateLoginAttempts calls on one key must each read, call fn and write in one step: no increment is lost", testUpdateLoginAttemptsConcurrent},
	}},
	{"Throttle", []rule[users.Store]{ // throttle.go: a Manager over the store
		{"ConcurrentLogins", "of concurrent wrong-password logins to one account, exactly MaxFailedLogins may compare a password and the rest are refused as locked: the attempt is reserved in the store before bcrypt", testThrottleConcurrentLogins},
		{"ConcurrentPasswordChanges", "of concurrent UpdatePassword calls with a wrong current password, exactly MaxFailedLogins may compare it, and the account is locked afterwards", testThrottleConcurrentPasswordChanges},
		{"SuccessReleases", "a right password releases its reservation and the failures before it: the throttle entry is gone after each success", testThrottleSuccessReleases},
		{"EveryFieldKeeps", "UpdateLoginAttempts must keep an entry for which IsZero is false, every field of it", testThrottleEveryFieldKeeps},
	}},
	{"RateLimit", []rule[users.Store]{ // ratelimit.go: Manager.Limit over the store
		{"ConcurrentAdmitsLimit", "of 200 concurrent Manager.Limit calls over a limit of 10 per client (or 4 per identifier), exactly 10 (4) must be admitted: each count is read and written in one UpdateLoginAttempts", testRateLimitConcurrent},
		{"Window", "a full window must refuse with the time left until it ends, per client, and a new window must admit the full count again", testRateLimitWindow},
		{"ExpiresThroughPurge", "a window's entries must expire when it ends: PurgeExpired keeps them before and deletes them then, and the count starts over", testRateLimitExpiry},
	}},
}

var tokenGroups = []storeGroup{
	{"CreateToken", []rule[users.Store]{
		{"RoundTrip", "CreateToken must store every field of a token for an existing user, and GetToken must return it", testCreateTokenRoundTrip},
		{"UserNotFound", "CreateToken must return ErrNotFound, storing nothing, for a missing user", testCreateTokenUserNotFound},
		{"DuplicateHash", "CreateToken must refuse a hash another token has (ErrConflict), leaving that token as it was", testCreateTokenDuplicateHash},
		{"Replace", "CreateToken with replace must store the new token and delete the user's other tokens of that purpose, keeping the user's tokens of other purposes and other users' tokens", testCreateTokenReplace},
		{"NoReplaceKeeps", "CreateToken without replace must keep the user's other tokens of that purpose", testCreateTokenNoReplace},
		{"CopiesInput", "CreateToken must keep a copy: changing the record or its Hash after the call must not change the stored token", testCreateTokenCopiesInput},
		{"DecoyKeepsNothing", "CreateTokenDecoy must succeed for a user's token, nobody's token and a taken hash and entry ID, and keep nothing: no token, no audit entry, no expiry entry, and a stored token with that hash, the user's other tokens and a stored entry with that ID left alone", testCreateTokenDecoy},
	}},
	{"GetToken", []rule[users.Store]{
		{"DoesNotConsume", "GetToken must return a stored token of that purpose and leave it stored", testGetTokenDoesNotConsume},
		{"WrongPurpose", "GetToken must return ErrNotFound for a token of another purpose", testGetTokenWrongPurpose},
		{"WhateverExpiry", "GetToken must return a token whatever its ExpiresAt: expiry is the Manager's to decide", testGetTokenWhateverExpiry},
		{"NotFound", "GetToken must return ErrNotFound for an unknown hash", testGetTokenNotFound},
		{"ReturnsCopy", "GetToken must return a copy: changing it or its Hash must not change the stored token", testGetTokenReturnsCopy},
	}},
	{"ConsumeToken", []rule[users.Store]{
		{"ConsumesOnce", "ConsumeToken must return a stored token of that purpose and delete it: a second call gets ErrNotFound", testConsumeToken},
		{"WrongPurposeKeeps", "ConsumeToken must return ErrNotFound for a token of another purpose, and keep it", testConsumeTokenWrongPurpose},
		{"WhateverExpiry", "ConsumeToken must return a token whatever its ExpiresAt: expiry is the Manager's to decide", testConsumeTokenWhateverExpiry},
		{"NotFound", "ConsumeToken must return ErrNotFound for an unknown hash", testConsumeTokenNotFound},
		{"ConcurrentExactlyOnce", "of concurrent ConsumeToken calls for one token exactly one must get it, the others ErrNotFound", testConsumeTokenConcurrent},
	}},
}

var auditGroups = []storeGroup{
	{"Audit", auditRules}, // audit.go
}

var secondFactorGroups = []storeGroup{
	{"MFA", mfaRules}, // mfa.go
}

// expiryGroups are the rules of DeleteExpired, which spans the domains.
var expiryGroups = []storeGroup{
	{"DeleteExpired", []rule[users.Store]{
		{"Boundary", "DeleteExpired must delete the sessions, tokens and throttle entries whose ExpiresAt is at or before now, keep the later ones and every user, and return how many it deleted", testDeleteExpiredBoundary},
		{"FreesHashesAndIDs", "DeleteExpired must delete an expired session from its user's list and by ID, and free what it deletes: an expired session's token hash and ID, and a token's hash, take a new record", testDeleteExpiredFrees},
		{"CountsOnlyStoredRecords", "DeleteExpired must count only the records it deleted, not those already deleted by logout, revocation, consumption, replacement, zeroing or DeleteUser", testDeleteExpiredCountsStored},
		{"FollowsCurrentExpiry", "DeleteExpired must look at each record's current ExpiresAt: an entry moved later stays, one moved sooner goes, and a record recreated under the same hash with a later expiry stays", testDeleteExpiredCurrentExpiry},
	}},
}
