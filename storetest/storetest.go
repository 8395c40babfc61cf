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
// -race.
//
// The package is also the test kit that storetest's rules, the users package's
// tests and the stores' tests share: a fake Clock, a Fixture (a Manager over a
// Store with that clock) and ExactlyOne, the check that one racing call won.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
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
			{"ConcurrentSameEmail", testCreateUserConcurrentSameEmail},
			{"ConcurrentSameUsername", testCreateUserConcurrentSameUsername},
		}},
		{"GetUser", []test{
			{"NotFound", testGetUserNotFound},
			{"ReturnsCopy", testGetUserReturnsCopy},
		}},
		{"GetUserByEmail", []test{
			{"NotFound", testGetUserByEmailNotFound},
			{"ReturnsCopy", testGetUserByEmailReturnsCopy},
		}},
		{"GetUserByUsername", []test{
			{"NotFound", testGetUserByUsernameNotFound},
			{"EmptyNeverMatches", testGetUserByUsernameEmpty},
			{"ReturnsCopy", testGetUserByUsernameReturnsCopy},
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
		{"Batch", batchRules},   // batch.go
		{"Indexes", indexRules}, // index.go
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

// base is the time the suite's records are created at: now, in UTC and whole
// seconds so that stores with coarse timestamps keep it exactly.
var base = time.Now().UTC().Truncate(time.Second)

var errSentinel = errors.New("storetest: error returned by fn")

// newUser returns a user record with a fresh ULID and an email and username made
// from it, not yet stored.
func newUser() *users.UserRecord {
	id := ulid.Make().String()
	low := strings.ToLower(id)
	return &users.UserRecord{
		User: users.User{
			ID:          id,
			Email:       low + "@example.com",
			Username:    "u" + low,
			FirstName:   "Ada",
			LastName:    "Lovelace",
			Role:        users.RoleUser,
			Status:      users.StatusActive,
			Preferences: map[string]string{"lang": "en"},
			CreatedAt:   base,
			UpdatedAt:   base,
		},
		PasswordHash: "$2a$04$storetest",
	}
}

func mustCreateUser(t testing.TB, s users.Store, r *users.UserRecord) {
	t.Helper()
	if err := s.CreateUser(t.Context(), r); err != nil {
		t.Fatalf("setup: CreateUser(%s): %v", r.Email, err)
	}
}

// addUser stores a new user and returns it.
func addUser(t testing.TB, s users.Store) *users.UserRecord {
	t.Helper()
	r := newUser()
	mustCreateUser(t, s, r)
	return r
}

// addUsers stores n new users, created in a random order, and returns them in
// ascending ID order. edit, if not nil, changes user i before it is stored.
func addUsers(t testing.TB, s users.Store, n int, edit func(i int, r *users.UserRecord)) []*users.UserRecord {
	t.Helper()
	rs := make([]*users.UserRecord, n)
	for i := range rs {
		rs[i] = newUser()
	}
	slices.SortFunc(rs, func(a, b *users.UserRecord) int { return strings.Compare(a.ID, b.ID) })
	for i, r := range rs {
		if edit != nil {
			edit(i, r)
		}
	}
	for _, i := range mathrand.Perm(n) {
		mustCreateUser(t, s, rs[i])
	}
	return rs
}

func mustGetUser(t testing.TB, s users.Store, id string) *users.UserRecord {
	t.Helper()
	r, err := s.GetUser(t.Context(), id)
	if err != nil {
		t.Fatalf("GetUser(%s): %v", id, err)
	}
	return r
}

func randomHash() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// newSession returns a session for u under u's Generation, not yet stored.
func newSession(u *users.UserRecord) *users.SessionRecord {
	return &users.SessionRecord{
		ID:             ulid.Make().String(),
		TokenHash:      randomHash(),
		UserID:         u.ID,
		UserGeneration: u.Generation,
		CreatedAt:      base,
		ExpiresAt:      base.Add(24 * time.Hour),
		LastSeenAt:     base,
	}
}

// addSession stores a new session for the user with the ID, under the user's
// current Generation, and returns it.
func addSession(t testing.TB, s users.Store, userID string) *users.SessionRecord {
	t.Helper()
	sess := newSession(mustGetUser(t, s, userID))
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("setup: CreateSession: %v", err)
	}
	return sess
}

// newToken returns a token for u, not yet stored.
func newToken(u *users.UserRecord, p users.Purpose) *users.TokenRecord {
	return &users.TokenRecord{
		Hash:      randomHash(),
		UserID:    u.ID,
		Purpose:   p,
		Email:     u.Email,
		CreatedAt: base,
		ExpiresAt: base.Add(time.Hour),
	}
}

func mustCreateToken(t testing.TB, s users.Store, tok *users.TokenRecord) {
	t.Helper()
	if err := s.CreateToken(t.Context(), tok, false); err != nil {
		t.Fatalf("setup: CreateToken: %v", err)
	}
}

// addToken stores a new token for u and returns it.
func addToken(t testing.TB, s users.Store, u *users.UserRecord, p users.Purpose) *users.TokenRecord {
	t.Helper()
	tok := newToken(u, p)
	mustCreateToken(t, s, tok)
	return tok
}

func mustUpdateAttempts(t testing.TB, s users.Store, key users.ThrottleKey, a users.LoginAttempts) {
	t.Helper()
	_, err := s.UpdateLoginAttempts(t.Context(), key, func(p *users.LoginAttempts) error {
		*p = a
		return nil
	})
	if err != nil {
		t.Fatalf("setup: UpdateLoginAttempts(%q): %v", key, err)
	}
}

// The norm functions return a copy that compares with reflect.DeepEqual by
// meaning: times by instant (a store may return them in another location and
// without a monotonic reading), and a nil map like an empty one.

func normUser(r *users.UserRecord) users.UserRecord {
	c := *r.Clone()
	c.EmailVerifiedAt = c.EmailVerifiedAt.UTC()
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	c.LastLoginAt = c.LastLoginAt.UTC()
	if len(c.Preferences) == 0 {
		c.Preferences = nil
	}
	return c
}

func normSession(s *users.SessionRecord) users.SessionRecord {
	c := *s.Clone()
	c.CreatedAt = c.CreatedAt.UTC()
	c.ExpiresAt = c.ExpiresAt.UTC()
	c.LastSeenAt = c.LastSeenAt.UTC()
	return c
}

func normToken(tok *users.TokenRecord) users.TokenRecord {
	c := *tok.Clone()
	c.CreatedAt = c.CreatedAt.UTC()
	c.ExpiresAt = c.ExpiresAt.UTC()
	return c
}

func normAttempts(a users.LoginAttempts) users.LoginAttempts {
	a.WindowStart = a.WindowStart.UTC()
	a.LockedUntil = a.LockedUntil.UTC()
	a.ExpiresAt = a.ExpiresAt.UTC()
	return a
}

func sameUser(a, b *users.UserRecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(normUser(a), normUser(b))
}

func sameSession(a, b *users.SessionRecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(normSession(a), normSession(b))
}

func sameToken(a, b *users.TokenRecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(normToken(a), normToken(b))
}

func sameAttempts(a, b users.LoginAttempts) bool {
	return reflect.DeepEqual(normAttempts(a), normAttempts(b))
}

// The show functions print a record with all its fields.

func showUser(r *users.UserRecord) string {
	if r == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", normUser(r))
}

func showSession(s *users.SessionRecord) string {
	if s == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", normSession(s))
}

func showToken(tok *users.TokenRecord) string {
	if tok == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", normToken(tok))
}

// wantErr reports a broken rule unless errors.Is(err, want).
func wantErr(t testing.TB, err, want error, rule string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", rule, err, want)
	}
}

// wantUser reports a broken rule unless the stored user with want.ID equals want.
func wantUser(t testing.TB, s users.Store, want *users.UserRecord, rule string) {
	t.Helper()
	got, err := s.GetUser(t.Context(), want.ID)
	if err != nil {
		t.Errorf("%s: GetUser: %v", rule, err)
		return
	}
	if !sameUser(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", rule, showUser(got), showUser(want))
	}
}

// wantNoUser reports a broken rule unless no user has the ID.
func wantNoUser(t testing.TB, s users.Store, id, rule string) {
	t.Helper()
	r, err := s.GetUser(t.Context(), id)
	if !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: GetUser returned %s, %v; want ErrNotFound", rule, showUser(r), err)
	}
}

// wantEmailOwner reports a broken rule unless the email belongs to the user with
// the ID, or to nobody when id is empty.
func wantEmailOwner(t testing.TB, s users.Store, email, id, rule string) {
	t.Helper()
	r, err := s.GetUserByEmail(t.Context(), email)
	switch {
	case id == "" && !errors.Is(err, users.ErrNotFound):
		t.Errorf("%s: GetUserByEmail(%q) returned %s, %v; want ErrNotFound", rule, email, showUser(r), err)
	case id != "" && err != nil:
		t.Errorf("%s: GetUserByEmail(%q): %v", rule, email, err)
	case id != "" && r.ID != id:
		t.Errorf("%s: GetUserByEmail(%q) returned user %s, want %s", rule, email, r.ID, id)
	}
}

// wantUsernameOwner reports a broken rule unless the username belongs to the
// user with the ID, or to nobody when id is empty.
func wantUsernameOwner(t testing.TB, s users.Store, username, id, rule string) {
	t.Helper()
	r, err := s.GetUserByUsername(t.Context(), username)
	switch {
	case id == "" && !errors.Is(err, users.ErrNotFound):
		t.Errorf("%s: GetUserByUsername(%q) returned %s, %v; want ErrNotFound", rule, username, showUser(r), err)
	case id != "" && err != nil:
		t.Errorf("%s: GetUserByUsername(%q): %v", rule, username, err)
	case id != "" && r.ID != id:
		t.Errorf("%s: GetUserByUsername(%q) returned user %s, want %s", rule, username, r.ID, id)
	}
}

// wantSession reports a broken rule unless the stored session with want's token
// hash equals want.
func wantSession(t testing.TB, s users.Store, want *users.SessionRecord, rule string) {
	t.Helper()
	got, _, err := s.GetSession(t.Context(), want.TokenHash)
	if err != nil {
		t.Errorf("%s: GetSession: %v", rule, err)
		return
	}
	if !sameSession(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", rule, showSession(got), showSession(want))
	}
}

// wantNoSession reports a broken rule unless no session has the token hash.
func wantNoSession(t testing.TB, s users.Store, hash []byte, rule string) {
	t.Helper()
	got, _, err := s.GetSession(t.Context(), hash)
	if !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: GetSession returned %s, %v; want ErrNotFound", rule, showSession(got), err)
	}
}

// wantSessions reports a broken rule unless ListSessions(userID) gives want, in
// that order.
func wantSessions(t testing.TB, s users.Store, userID string, want []*users.SessionRecord, rule string) {
	t.Helper()
	got, err := s.ListSessions(t.Context(), userID)
	if err != nil {
		t.Errorf("%s: ListSessions: %v", rule, err)
		return
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = sameSession(got[i], want[i])
	}
	if !ok {
		var g, w []string
		for _, x := range got {
			g = append(g, showSession(x))
		}
		for _, x := range want {
			w = append(w, showSession(x))
		}
		t.Errorf("%s: ListSessions returned\n%s\nwant\n%s", rule, strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// wantToken reports a broken rule unless the token is stored and can be read with
// GetToken.
func wantToken(t testing.TB, s users.Store, want *users.TokenRecord, rule string) {
	t.Helper()
	got, err := s.GetToken(t.Context(), want.Hash, want.Purpose)
	if err != nil {
		t.Errorf("%s: GetToken: %v", rule, err)
		return
	}
	if !sameToken(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", rule, showToken(got), showToken(want))
	}
}

// wantNoToken reports a broken rule unless the token is gone.
func wantNoToken(t testing.TB, s users.Store, tok *users.TokenRecord, rule string) {
	t.Helper()
	got, err := s.GetToken(t.Context(), tok.Hash, tok.Purpose)
	if !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: GetToken returned %s, %v; want ErrNotFound", rule, showToken(got), err)
	}
}

// wantAttempts reports a broken rule unless the entry for key equals want.
func wantAttempts(t testing.TB, s users.Store, key users.ThrottleKey, want users.LoginAttempts, rule string) {
	t.Helper()
	got, err := s.GetLoginAttempts(t.Context(), key)
	if err != nil {
		t.Errorf("%s: GetLoginAttempts(%q): %v", rule, key, err)
		return
	}
	if !sameAttempts(got, want) {
		t.Errorf("%s: GetLoginAttempts(%q) = %+v, want %+v", rule, key, got, want)
	}
}

// start runs fn(i) for i in [0, n) on n goroutines released together, and waits
// for them all.
func start(n int, fn func(i int)) {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-gate
			fn(i)
		})
	}
	close(gate)
	wg.Wait()
}

// rounds calls round again and again: at least 5 times, then until it has run for
// budget or max times. Races that a store loses only now and then are found in
// many rounds of a fast store, and a slow store still finishes soon.
func rounds(max int, budget time.Duration, round func()) {
	begin := time.Now()
	for i := 0; i < max && (i < 5 || time.Since(begin) < budget); i++ {
		round()
	}
}

// ---- CreateUser and the getters ----

func testCreateUserRoundTrip(t *testing.T, s users.Store) {
	r := newUser()
	r.EmailVerified = true
	r.EmailVerifiedAt = base.Add(-time.Hour)
	r.AvatarURL = "https://example.com/a.png"
	r.AccountID = "acct-1"
	r.Role = users.RoleAdmin
	r.LastLoginAt = base.Add(-time.Minute)
	r.Preferences = map[string]string{"lang": "fr", "theme": "dark"}
	r.Generation = 3
	want := r.Clone()
	if err := s.CreateUser(t.Context(), r); err != nil {
		t.Fatalf("CreateUser must store a new user: %v", err)
	}
	wantUser(t, s, want, "GetUser must return every field CreateUser stored")
	if got, err := s.GetUserByEmail(t.Context(), r.Email); err != nil || !sameUser(got, want) {
		t.Errorf("GetUserByEmail must return the user with that email:\n got %s, %v\nwant %s", showUser(got), err, showUser(want))
	}
	if got, err := s.GetUserByUsername(t.Context(), r.Username); err != nil || !sameUser(got, want) {
		t.Errorf("GetUserByUsername must return the user with that username:\n got %s, %v\nwant %s", showUser(got), err, showUser(want))
	}
}

func testCreateUserDuplicateEmail(t *testing.T, s users.Store) {
	a := addUser(t, s)
	b := newUser()
	b.Email = a.Email
	err := s.CreateUser(t.Context(), b)
	wantErr(t, err, users.ErrDuplicateEmail, "CreateUser must refuse a second user with the same email (ErrDuplicateEmail)")
	wantNoUser(t, s, b.ID, "CreateUser refused for a duplicate email must store nothing")
	wantUsernameOwner(t, s, b.Username, "", "CreateUser refused for a duplicate email must not take the username")
	wantUser(t, s, a, "CreateUser refused for a duplicate email must leave the email's owner as it was")
	c := newUser()
	c.Username = b.Username
	if err := s.CreateUser(t.Context(), c); err != nil {
		t.Errorf("CreateUser refused for a duplicate email must leave its username free for another user: %v", err)
	}
}

func testCreateUserDuplicateUsername(t *testing.T, s users.Store) {
	a := addUser(t, s)
	b := newUser()
	b.Username = a.Username
	err := s.CreateUser(t.Context(), b)
	wantErr(t, err, users.ErrDuplicateUsername, "CreateUser must refuse a second user with the same username (ErrDuplicateUsername)")
	wantNoUser(t, s, b.ID, "CreateUser refused for a duplicate username must store nothing")
	wantEmailOwner(t, s, b.Email, "", "CreateUser refused for a duplicate username must not take the email")
	c := newUser()
	c.Email = b.Email
	if err := s.CreateUser(t.Context(), c); err != nil {
		t.Errorf("CreateUser refused for a duplicate username must leave its email free for another user (no index left behind): %v", err)
	}
}

func testCreateUserEmailCheckedFirst(t *testing.T, s users.Store) {
	a := addUser(t, s)
	b := addUser(t, s)
	c := newUser()
	c.Email, c.Username = a.Email, b.Username
	wantErr(t, s.CreateUser(t.Context(), c), users.ErrDuplicateEmail,
		"CreateUser must check the email before the username: email and username both taken (by different users) must give ErrDuplicateEmail")
	d := newUser()
	d.Email, d.Username = a.Email, a.Username
	wantErr(t, s.CreateUser(t.Context(), d), users.ErrDuplicateEmail,
		"CreateUser must check the email before the username: email and username of one user must give ErrDuplicateEmail")
}

func testCreateUserDuplicateID(t *testing.T, s users.Store) {
	a := addUser(t, s)
	b := newUser()
	b.ID = a.ID
	wantErr(t, s.CreateUser(t.Context(), b), users.ErrConflict, "CreateUser must refuse an ID that exists (ErrConflict)")
	wantUser(t, s, a, "CreateUser refused for a taken ID must leave the existing user as it was")
	wantEmailOwner(t, s, b.Email, "", "CreateUser refused for a taken ID must not take the email")
	wantUsernameOwner(t, s, b.Username, "", "CreateUser refused for a taken ID must not take the username")
	c := newUser()
	c.Email, c.Username = b.Email, b.Username
	if err := s.CreateUser(t.Context(), c); err != nil {
		t.Errorf("CreateUser refused for a taken ID must leave its email and username free: %v", err)
	}
}

func testCreateUserEmptyUsernames(t *testing.T, s users.Store) {
	for i := range 3 {
		r := newUser()
		r.Username = ""
		if err := s.CreateUser(t.Context(), r); err != nil {
			t.Errorf("CreateUser must allow any number of users without a username (user %d): %v", i+1, err)
		}
	}
}

func testCreateUserComparesExactly(t *testing.T, s users.Store) {
	a := newUser()
	a.Email, a.Username = "ada@example.com", "ada"
	b := newUser()
	b.Email, b.Username = "Ada@example.com", "Ada"
	mustCreateUser(t, s, a)
	if err := s.CreateUser(t.Context(), b); err != nil {
		t.Fatalf("CreateUser must compare emails and usernames exactly (they arrive normalised): %q after %q: %v", b.Email, a.Email, err)
	}
	wantEmailOwner(t, s, "ada@example.com", a.ID, "GetUserByEmail must compare exactly")
	wantEmailOwner(t, s, "Ada@example.com", b.ID, "GetUserByEmail must compare exactly")
	wantEmailOwner(t, s, "ADA@example.com", "", "GetUserByEmail must compare exactly")
	wantUsernameOwner(t, s, "ada", a.ID, "GetUserByUsername must compare exactly")
	wantUsernameOwner(t, s, "Ada", b.ID, "GetUserByUsername must compare exactly")
	wantUsernameOwner(t, s, "ADA", "", "GetUserByUsername must compare exactly")
}

func testCreateUserCopiesInput(t *testing.T, s users.Store) {
	r := newUser()
	want := r.Clone()
	mustCreateUser(t, s, r)
	r.Preferences["lang"] = "changed"
	r.Preferences["new"] = "key"
	r.FirstName = "Changed"
	wantUser(t, s, want, "CreateUser must keep a copy: changing the record after the call must not change the stored user")
}

func testCreateUserConcurrentSameEmail(t *testing.T, s users.Store) {
	const n = 32
	errs := make([]error, n)
	start(n, func(i int) {
		r := newUser()
		r.Email = "same@example.com"
		errs[i] = s.CreateUser(t.Context(), r)
	})
	ExactlyOne(t, errs, users.ErrDuplicateEmail, "of concurrent CreateUser calls with one email exactly one must succeed, the others with ErrDuplicateEmail")
	if got, err := s.CountUsers(t.Context(), users.Match{Email: "same@example.com"}); err != nil || got != 1 {
		t.Errorf("after %d concurrent CreateUser calls with one email exactly one user must have it: CountUsers = %d, %v", n, got, err)
	}
}

func testCreateUserConcurrentSameUsername(t *testing.T, s users.Store) {
	const n = 32
	errs := make([]error, n)
	start(n, func(i int) {
		r := newUser()
		r.Username = "same"
		errs[i] = s.CreateUser(t.Context(), r)
	})
	ExactlyOne(t, errs, users.ErrDuplicateUsername, "of concurrent CreateUser calls with one username exactly one must succeed, the others with ErrDuplicateUsername")
	if got, err := s.CountUsers(t.Context(), users.Match{Username: "same"}); err != nil || got != 1 {
		t.Errorf("after %d concurrent CreateUser calls with one username exactly one user must have it: CountUsers = %d, %v", n, got, err)
	}
}

func testGetUserNotFound(t *testing.T, s users.Store) {
	addUser(t, s)
	_, err := s.GetUser(t.Context(), ulid.Make().String())
	wantErr(t, err, users.ErrNotFound, "GetUser must return ErrNotFound for a missing ID")
}

func testGetUserByEmailNotFound(t *testing.T, s users.Store) {
	addUser(t, s)
	_, err := s.GetUserByEmail(t.Context(), "nobody@example.com")
	wantErr(t, err, users.ErrNotFound, "GetUserByEmail must return ErrNotFound for an email nobody has")
}

func testGetUserByUsernameNotFound(t *testing.T, s users.Store) {
	addUser(t, s)
	_, err := s.GetUserByUsername(t.Context(), "nobody")
	wantErr(t, err, users.ErrNotFound, "GetUserByUsername must return ErrNotFound for a username nobody has")
}

func testGetUserByUsernameEmpty(t *testing.T, s users.Store) {
	r := newUser()
	r.Username = ""
	mustCreateUser(t, s, r)
	got, err := s.GetUserByUsername(t.Context(), "")
	if !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetUserByUsername(\"\") must never match, not even a user without a username: got %s, %v", showUser(got), err)
	}
}

// testReturnsCopy checks that changing a user returned by get does not change
// the stored one.
func testReturnsCopy(t *testing.T, s users.Store, method string, get func(r *users.UserRecord) (*users.UserRecord, error)) {
	r := addUser(t, s)
	got, err := get(r)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	got.Preferences["lang"] = "changed"
	got.Preferences["new"] = "key"
	got.FirstName = "Changed"
	wantUser(t, s, r, method+" must return a copy: changing the returned record must not change the stored user")
}

func testGetUserReturnsCopy(t *testing.T, s users.Store) {
	testReturnsCopy(t, s, "GetUser", func(r *users.UserRecord) (*users.UserRecord, error) {
		return s.GetUser(t.Context(), r.ID)
	})
}

func testGetUserByEmailReturnsCopy(t *testing.T, s users.Store) {
	testReturnsCopy(t, s, "GetUserByEmail", func(r *users.UserRecord) (*users.UserRecord, error) {
		return s.GetUserByEmail(t.Context(), r.Email)
	})
}

func testGetUserByUsernameReturnsCopy(t *testing.T, s users.Store) {
	testReturnsCopy(t, s, "GetUserByUsername", func(r *users.UserRecord) (*users.UserRecord, error) {
		return s.GetUserByUsername(t.Context(), r.Username)
	})
}

// ---- UpdateUser ----

func testUpdateUserSeesCurrent(t *testing.T, s users.Store) {
	r := addUser(t, s)
	if _, err := s.UpdateUser(t.Context(), r.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.FirstName = "First update"
		return users.Revoke{Sessions: true}, nil
	}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want := mustGetUser(t, s, r.ID)
	var seen *users.UserRecord
	if _, err := s.UpdateUser(t.Context(), r.ID, func(r *users.UserRecord) (users.Revoke, error) {
		seen = r.Clone()
		return users.Revoke{}, nil
	}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if !sameUser(seen, want) {
		t.Errorf("UpdateUser must call fn with the current record:\n got %s\nwant %s", showUser(seen), showUser(want))
	}
}

func testUpdateUserWrites(t *testing.T, s users.Store) {
	r := addUser(t, s)
	change := func(r *users.UserRecord) {
		r.FirstName = "Grace"
		r.LastName = "Hopper"
		r.Role = users.RoleAdmin
		r.Status = users.StatusSuspended
		r.EmailVerified = true
		r.EmailVerifiedAt = base.Add(time.Minute)
		r.AccountID = "acct-2"
		r.AvatarURL = "https://example.com/g.png"
		r.Preferences = map[string]string{"theme": "dark"}
		r.UpdatedAt = base.Add(time.Minute)
		r.LastLoginAt = base.Add(time.Minute)
		r.PasswordHash = "$2a$04$changed"
	}
	want := r.Clone()
	change(want)
	got, err := s.UpdateUser(t.Context(), r.ID, func(r *users.UserRecord) (users.Revoke, error) {
		change(r)
		return users.Revoke{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if !sameUser(got, want) {
		t.Errorf("UpdateUser must return the record as written:\n got %s\nwant %s", showUser(got), showUser(want))
	}
	wantUser(t, s, want, "UpdateUser must write what fn left in the record")
}

func testUpdateUserFnError(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	tok := addToken(t, s, r, users.PurposePasswordReset)
	_, err := s.UpdateUser(t.Context(), r.ID, func(u *users.UserRecord) (users.Revoke, error) {
		u.FirstName = "Changed"
		u.Email = "changed@example.com"
		u.Username = "changed"
		return users.Revoke{Sessions: true, Tokens: users.Purposes()}, errSentinel
	})
	if !errors.Is(err, errSentinel) {
		t.Errorf("UpdateUser must return fn's error unchanged: got %v, want %v", err, errSentinel)
	}
	wantUser(t, s, r, "UpdateUser must write nothing when fn fails")
	wantEmailOwner(t, s, "changed@example.com", "", "UpdateUser must not take the new email when fn fails")
	wantUsernameOwner(t, s, "changed", "", "UpdateUser must not take the new username when fn fails")
	wantEmailOwner(t, s, r.Email, r.ID, "UpdateUser must keep the old email when fn fails")
	wantSession(t, s, sess, "UpdateUser must not apply Revoke.Sessions when fn fails")
	wantToken(t, s, tok, "UpdateUser must not apply Revoke.Tokens when fn fails")
}

func testUpdateUserNotFound(t *testing.T, s users.Store) {
	addUser(t, s)
	called := false
	_, err := s.UpdateUser(t.Context(), ulid.Make().String(), func(r *users.UserRecord) (users.Revoke, error) {
		called = true
		return users.Revoke{}, nil
	})
	wantErr(t, err, users.ErrNotFound, "UpdateUser must return ErrNotFound for a missing user")
	if called {
		t.Errorf("UpdateUser must not call fn for a missing user")
	}
}

func testUpdateUserChangeEmail(t *testing.T, s users.Store) {
	r := addUser(t, s)
	old := r.Email
	got, err := s.UpdateUser(t.Context(), r.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Email = "new-" + r.Email
		return users.Revoke{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser changing the email to a free one: %v", err)
	}
	if got.Email != "new-"+old {
		t.Errorf("UpdateUser must return the new email: got %q", got.Email)
	}
	wantEmailOwner(t, s, "new-"+old, r.ID, "UpdateUser changing the email must index the new email")
	wantEmailOwner(t, s, old, "", "UpdateUser changing the email must free the old email")
	other := newUser()
	other.Email = old
	if err := s.CreateUser(t.Context(), other); err != nil {
		t.Errorf("UpdateUser changing the email must let another user take the old email: %v", err)
	}
}

func testUpdateUserChangeUsername(t *testing.T, s users.Store) {
	r := newUser()
	r.Username = ""
	mustCreateUser(t, s, r)
	set := func(name string) {
		t.Helper()
		got, err := s.UpdateUser(t.Context(), r.ID, func(r *users.UserRecord) (users.Revoke, error) {
			r.Username = name
			return users.Revoke{}, nil
		})
		if err != nil {
			t.Fatalf("UpdateUser setting the username to %q: %v", name, err)
		}
		if got.Username != name {
			t.Errorf("UpdateUser must return the new username: got %q, want %q", got.Username, name)
		}
	}

	set("first")
	wantUsernameOwner(t, s, "first", r.ID, "UpdateUser giving a user a username must index it")
	set("second")
	wantUsernameOwner(t, s, "second", r.ID, "UpdateUser changing the username must index the new one")
	wantUsernameOwner(t, s, "first", "", "UpdateUser changing the username must free the old one")
	set("")
	wantUsernameOwner(t, s, "second", "", "UpdateUser removing the username must free it")
	wantUsernameOwner(t, s, "", "", "UpdateUser removing the username must not make \"\" match")

	other := newUser()
	other.Username = "first"
	if err := s.CreateUser(t.Context(), other); err != nil {
		t.Errorf("UpdateUser changing the username must let another user take the old one: %v", err)
	}
	other = newUser()
	other.Username = "second"
	if err := s.CreateUser(t.Context(), other); err != nil {
		t.Errorf("UpdateUser removing the username must let another user take it: %v", err)
	}
}

func testUpdateUserKeepOwn(t *testing.T, s users.Store) {
	r := addUser(t, s)
	want := r.Clone()
	want.FirstName = "Changed"
	_, err := s.UpdateUser(t.Context(), r.ID, func(u *users.UserRecord) (users.Revoke, error) {
		u.Email, u.Username = r.Email, r.Username
		u.FirstName = "Changed"
		return users.Revoke{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser must accept a record that keeps its own email and username: %v", err)
	}
	wantUser(t, s, want, "UpdateUser keeping its own email and username must write the rest")
	wantEmailOwner(t, s, r.Email, r.ID, "UpdateUser keeping its own email must keep it indexed")
	wantUsernameOwner(t, s, r.Username, r.ID, "UpdateUser keeping its own username must keep it indexed")
}

func testUpdateUserDuplicateEmail(t *testing.T, s users.Store) {
	a := addUser(t, s)
	b := addUser(t, s)
	sess := addSession(t, s, b.ID)
	_, err := s.UpdateUser(t.Context(), b.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Email = a.Email
		r.Username = "fresh"
		r.FirstName = "Changed"
		return users.Revoke{Sessions: true}, nil
	})
	wantErr(t, err, users.ErrDuplicateEmail, "UpdateUser must refuse an email another user has (ErrDuplicateEmail)")
	wantUser(t, s, b, "UpdateUser refused for a duplicate email must write nothing")
	wantUser(t, s, a, "UpdateUser refused for a duplicate email must leave the email's owner as it was")
	wantEmailOwner(t, s, a.Email, a.ID, "UpdateUser refused for a duplicate email must leave the email to its owner")
	wantEmailOwner(t, s, b.Email, b.ID, "UpdateUser refused for a duplicate email must keep the user's old email")
	wantUsernameOwner(t, s, "fresh", "", "UpdateUser refused for a duplicate email must not take the new username")
	wantSession(t, s, sess, "UpdateUser refused for a duplicate email must not apply Revoke")
}

func testUpdateUserDuplicateUsername(t *testing.T, s users.Store) {
	a := addUser(t, s)
	b := addUser(t, s)
	_, err := s.UpdateUser(t.Context(), b.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Username = a.Username
		r.Email = "fresh@example.com"
		r.FirstName = "Changed"
		return users.Revoke{}, nil
	})
	wantErr(t, err, users.ErrDuplicateUsername, "UpdateUser must refuse a username another user has (ErrDuplicateUsername)")
	wantUser(t, s, b, "UpdateUser refused for a duplicate username must write nothing")
	wantUsernameOwner(t, s, a.Username, a.ID, "UpdateUser refused for a duplicate username must leave the username to its owner")
	wantUsernameOwner(t, s, b.Username, b.ID, "UpdateUser refused for a duplicate username must keep the user's old username")
	wantEmailOwner(t, s, "fresh@example.com", "", "UpdateUser refused for a duplicate username must not take the new email")
}

func testUpdateUserRevokeSessions(t *testing.T, s users.Store) {
	r := addUser(t, s)
	other := addUser(t, s)
	s1, s2 := addSession(t, s, r.ID), addSession(t, s, r.ID)
	keep := addSession(t, s, other.ID)
	tok := addToken(t, s, r, users.PurposeVerifyEmail)

	got, err := s.UpdateUser(t.Context(), r.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.FirstName = "Changed"
		return users.Revoke{Sessions: true}, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if got.Generation != r.Generation+1 {
		t.Errorf("UpdateUser with Revoke.Sessions must return the record with Generation incremented: got %d, want %d", got.Generation, r.Generation+1)
	}
	want := r.Clone()
	want.FirstName = "Changed"
	want.Generation++
	wantUser(t, s, want, "UpdateUser with Revoke.Sessions must write the change and increment Generation")
	wantNoSession(t, s, s1.TokenHash, "UpdateUser with Revoke.Sessions must delete the user's sessions")
	wantNoSession(t, s, s2.TokenHash, "UpdateUser with Revoke.Sessions must delete the user's sessions")
	wantSessions(t, s, r.ID, nil, "UpdateUser with Revoke.Sessions must delete the user's sessions")
	wantSession(t, s, keep, "UpdateUser with Revoke.Sessions must keep other users' sessions")
	wantToken(t, s, tok, "UpdateUser with only Revoke.Sessions must keep the user's tokens")

	stale := newSession(r) // under the old Generation
	wantErr(t, s.CreateSession(t.Context(), stale), users.ErrConflict,
		"CreateSession under the Generation from before UpdateUser's Revoke.Sessions must fail with ErrConflict")
}

func testUpdateUserRevokeTokens(t *testing.T, s users.Store) {
	r := addUser(t, s)
	other := addUser(t, s)
	reset := addToken(t, s, r, users.PurposePasswordReset)
	magic := addToken(t, s, r, users.PurposeMagicLink)
	verify := addToken(t, s, r, users.PurposeVerifyEmail)
	otherReset := addToken(t, s, other, users.PurposePasswordReset)
	sess := addSession(t, s, r.ID)

	got, err := s.UpdateUser(t.Context(), r.ID, func(r *users.UserRecord) (users.Revoke, error) {
		return users.Revoke{Tokens: []users.Purpose{users.PurposePasswordReset, users.PurposeMagicLink}}, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if got.Generation != r.Generation {
		t.Errorf("UpdateUser with only Revoke.Tokens must not change Generation: got %d, want %d", got.Generation, r.Generation)
	}
	wantNoToken(t, s, reset, "UpdateUser with Revoke.Tokens must delete the user's tokens of the listed purposes")
	wantNoToken(t, s, magic, "UpdateUser with Revoke.Tokens must delete the user's tokens of the listed purposes")
	wantToken(t, s, verify, "UpdateUser with Revoke.Tokens must keep the user's tokens of other purposes")
	wantToken(t, s, otherReset, "UpdateUser with Revoke.Tokens must keep other users' tokens")
	wantSession(t, s, sess, "UpdateUser with only Revoke.Tokens must keep the user's sessions")
}

func testUpdateUserRefusesIDChange(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	newID := ulid.Make().String()
	_, err := s.UpdateUser(t.Context(), r.ID, func(u *users.UserRecord) (users.Revoke, error) {
		u.ID = newID
		u.FirstName = "Changed"
		return users.Revoke{Sessions: true}, nil
	})
	if !errors.Is(err, users.ErrKeyChanged) {
		t.Errorf("UpdateUser must refuse a fn that changes the ID with ErrKeyChanged: got %v", err)
	}
	wantUser(t, s, r, "UpdateUser refusing a changed ID must write nothing")
	wantNoUser(t, s, newID, "UpdateUser refusing a changed ID must not store a user under the new ID")
	wantSession(t, s, sess, "UpdateUser refusing a changed ID must not apply Revoke")
}

func testUpdateUserRefusesGenerationChange(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	_, err := s.UpdateUser(t.Context(), r.ID, func(u *users.UserRecord) (users.Revoke, error) {
		u.Generation += 5
		u.FirstName = "Changed"
		return users.Revoke{Sessions: true}, nil
	})
	if !errors.Is(err, users.ErrKeyChanged) {
		t.Errorf("UpdateUser must refuse a fn that changes Generation with ErrKeyChanged: got %v", err)
	}
	wantUser(t, s, r, "UpdateUser refusing a changed Generation must write nothing")
	wantSession(t, s, sess, "UpdateUser refusing a changed Generation must not apply Revoke")
}

func testUpdateUserFnArgIsCopy(t *testing.T, s users.Store) {
	r := addUser(t, s)
	var kept *users.UserRecord
	written, err := s.UpdateUser(t.Context(), r.ID, func(u *users.UserRecord) (users.Revoke, error) {
		u.FirstName = "Written"
		kept = u
		return users.Revoke{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	kept.FirstName = "Changed later"
	kept.Preferences["lang"] = "changed later"
	wantUser(t, s, written, "UpdateUser must call fn with a copy: changing it after UpdateUser returned must not change the stored user")
}

func testUpdateUserReturnsCopy(t *testing.T, s users.Store) {
	testReturnsCopy(t, s, "UpdateUser", func(r *users.UserRecord) (*users.UserRecord, error) {
		return s.UpdateUser(t.Context(), r.ID, func(*users.UserRecord) (users.Revoke, error) { return users.Revoke{}, nil })
	})
}

func testUpdateUserConcurrent(t *testing.T, s users.Store) {
	r := addUser(t, s)
	const n = 32
	errs := make([]error, n)
	start(n, func(i int) {
		_, errs[i] = s.UpdateUser(t.Context(), r.ID, func(u *users.UserRecord) (users.Revoke, error) {
			if u.Preferences == nil {
				u.Preferences = map[string]string{}
			}
			u.Preferences[fmt.Sprintf("k%02d", i)] = "v"
			runtime.Gosched() // widen the window a non-atomic store would have
			return users.Revoke{}, nil
		})
	})
	for _, err := range errs {
		if err != nil {
			t.Errorf("UpdateUser racing other updates of the user must succeed: %v", err)
		}
	}
	got := mustGetUser(t, s, r.ID)
	var lost []string
	for i := range n {
		if _, ok := got.Preferences[fmt.Sprintf("k%02d", i)]; !ok {
			lost = append(lost, fmt.Sprintf("k%02d", i))
		}
	}
	if len(lost) > 0 || got.Preferences["lang"] != "en" {
		t.Errorf("UpdateUser must read, call fn and write in one atomic step: of %d concurrent read-modify-writes these were lost: %v (lang=%q)", n, lost, got.Preferences["lang"])
	}
}

// ---- DeleteUser ----

func testDeleteUserDeletesEverything(t *testing.T, s users.Store) {
	r := addUser(t, s)
	other := addUser(t, s)
	s1, s2 := addSession(t, s, r.ID), addSession(t, s, r.ID)
	t1, t2 := addToken(t, s, r, users.PurposePasswordReset), addToken(t, s, r, users.PurposeVerifyEmail)
	mustUpdateAttempts(t, s, users.UserThrottleKey(r.ID), users.LoginAttempts{Failures: 2, WindowStart: base, ExpiresAt: base.Add(time.Hour)})
	idKey := users.LoginAttempts{Failures: 1, WindowStart: base, ExpiresAt: base.Add(time.Hour)}
	mustUpdateAttempts(t, s, users.IdentifierThrottleKey(r.Email), idKey)
	otherKey := users.LoginAttempts{Failures: 3, WindowStart: base, ExpiresAt: base.Add(time.Hour)}
	mustUpdateAttempts(t, s, users.UserThrottleKey(other.ID), otherKey)
	otherSess := addSession(t, s, other.ID)
	otherTok := addToken(t, s, other, users.PurposePasswordReset)

	if err := s.DeleteUser(t.Context(), r.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wantNoUser(t, s, r.ID, "DeleteUser must delete the user")
	wantEmailOwner(t, s, r.Email, "", "DeleteUser must free the email")
	wantUsernameOwner(t, s, r.Username, "", "DeleteUser must free the username")
	wantNoSession(t, s, s1.TokenHash, "DeleteUser must delete the user's sessions")
	wantNoSession(t, s, s2.TokenHash, "DeleteUser must delete the user's sessions")
	wantSessions(t, s, r.ID, nil, "DeleteUser must delete the user's sessions")
	wantErr(t, s.DeleteSessionByID(t.Context(), r.ID, s1.ID), users.ErrNotFound, "DeleteUser must delete the user's sessions, by ID too")
	wantNoToken(t, s, t1, "DeleteUser must delete the user's one-time tokens")
	wantNoToken(t, s, t2, "DeleteUser must delete the user's one-time tokens")
	wantAttempts(t, s, users.UserThrottleKey(r.ID), users.LoginAttempts{}, "DeleteUser must delete the login-throttle entry UserThrottleKey(id)")

	wantAttempts(t, s, users.IdentifierThrottleKey(r.Email), idKey, "DeleteUser must delete only the UserThrottleKey(id) throttle entry")
	wantAttempts(t, s, users.UserThrottleKey(other.ID), otherKey, "DeleteUser must keep other users' throttle entries")
	wantUser(t, s, other, "DeleteUser must keep other users")
	wantSession(t, s, otherSess, "DeleteUser must keep other users' sessions")
	wantToken(t, s, otherTok, "DeleteUser must keep other users' tokens")
	if n, err := s.CountUsers(t.Context(), users.Match{}); err != nil || n != 1 {
		t.Errorf("DeleteUser must delete the user: CountUsers = %d, %v; want 1", n, err)
	}
	if got, err := s.ListUsers(t.Context(), users.ListQuery{Limit: 10}); err != nil || len(got) != 1 || got[0].ID != other.ID {
		t.Errorf("DeleteUser must delete the user: ListUsers returned %d users, %v; want only the other user", len(got), err)
	}
}

func testDeleteUserFreesKeys(t *testing.T, s users.Store) {
	r := addUser(t, s)
	if err := s.DeleteUser(t.Context(), r.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	n := newUser()
	n.Email, n.Username = r.Email, r.Username
	if err := s.CreateUser(t.Context(), n); err != nil {
		t.Errorf("DeleteUser must free the email and username for a new user: %v", err)
	}
	wantEmailOwner(t, s, r.Email, n.ID, "after DeleteUser the email must belong to the new user")
	wantUsernameOwner(t, s, r.Username, n.ID, "after DeleteUser the username must belong to the new user")
}

func testDeleteUserNotFound(t *testing.T, s users.Store) {
	r := addUser(t, s)
	wantErr(t, s.DeleteUser(t.Context(), ulid.Make().String()), users.ErrNotFound, "DeleteUser must return ErrNotFound for a missing user")
	if err := s.DeleteUser(t.Context(), r.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wantErr(t, s.DeleteUser(t.Context(), r.ID), users.ErrNotFound, "DeleteUser must return ErrNotFound for a user already deleted")
}

// ---- ListUsers and CountUsers ----

// wantList reports a broken rule unless ListUsers(q) returns want, in order. all
// names the users in messages: u0, u1, … by their index in all.
func wantList(t testing.TB, s users.Store, q users.ListQuery, all []*users.UserRecord, want []*users.UserRecord, rule string) {
	t.Helper()
	got, err := s.ListUsers(t.Context(), q)
	if err != nil {
		t.Errorf("%s: ListUsers: %v", rule, err)
		return
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = sameUser(got[i], want[i])
	}
	if !ok {
		t.Errorf("%s:\nquery %s\n  got %s\n want %s", rule, showQuery(q, all), showIDs(got, all), showIDs(want, all))
	}
}

func showIDs(rs []*users.UserRecord, all []*users.UserRecord) string {
	var b strings.Builder
	b.WriteString("[")
	for i, r := range rs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(nameOf(r.ID, all))
	}
	b.WriteString("]")
	return b.String()
}

func nameOf(id string, all []*users.UserRecord) string {
	for i, r := range all {
		if r.ID == id {
			return fmt.Sprintf("u%d", i)
		}
	}
	return id
}

func showQuery(q users.ListQuery, all []*users.UserRecord) string {
	s := fmt.Sprintf("{Match:%+v Limit:%d Offset:%d", q.Match, q.Limit, q.Offset)
	if q.After != "" {
		s += " After:" + nameOf(q.After, all)
	}
	if q.Before != "" {
		s += " Before:" + nameOf(q.Before, all)
	}
	return s + "}"
}

func testListUsersOrder(t *testing.T, s users.Store) {
	all := addUsers(t, s, 12, nil)
	wantList(t, s, users.ListQuery{Limit: 100}, all, all, "ListUsers must return users in ascending ID order, whatever order they were created in")
}

func testListUsersLimit(t *testing.T, s users.Store) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{Limit: 4}, all, all[:4], "ListUsers must return at most Limit users, the first ones")
	wantList(t, s, users.ListQuery{Limit: 1}, all, all[:1], "ListUsers must return at most Limit users, the first ones")
	wantList(t, s, users.ListQuery{Limit: 10}, all, all, "ListUsers with Limit equal to the number of users must return them all")
}

func testListUsersAfter(t *testing.T, s users.Store) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{After: all[3].ID, Limit: 3}, all, all[4:7], "ListUsers with After must start with the first user after it (After is exclusive)")
	wantList(t, s, users.ListQuery{After: all[7].ID, Limit: 5}, all, all[8:], "ListUsers with After near the end must return the remaining users")
	wantList(t, s, users.ListQuery{After: all[9].ID, Limit: 5}, all, nil, "ListUsers with After the last user must return no users")
}

func testListUsersAfterMissing(t *testing.T, s users.Store) {
	all := addUsers(t, s, 10, nil)
	if err := s.DeleteUser(t.Context(), all[4].ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wantList(t, s, users.ListQuery{After: all[4].ID, Limit: 3}, all, all[5:8], "ListUsers with After the ID of a deleted user must continue after that ID")
	wantList(t, s, users.ListQuery{Before: all[4].ID, Limit: 2}, all, all[2:4], "ListUsers with Before the ID of a deleted user must return the users before that ID")
}

func testListUsersBefore(t *testing.T, s users.Store) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{Before: all[7].ID, Limit: 3}, all, all[4:7], "ListUsers with Before must return the last Limit users before it (exclusive), in ascending order")
	wantList(t, s, users.ListQuery{Before: all[0].ID, Limit: 3}, all, nil, "ListUsers with Before the first user must return no users")
}

func testListUsersBeforeFew(t *testing.T, s users.Store) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{Before: all[2].ID, Limit: 5}, all, all[:2], "ListUsers with Before and fewer than Limit users before it must return those users")
}

func testListUsersOffset(t *testing.T, s users.Store) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{Offset: 2, Limit: 3}, all, all[2:5], "ListUsers must skip Offset users counted from the start")
	wantList(t, s, users.ListQuery{Offset: 8, Limit: 5}, all, all[8:], "ListUsers must skip Offset users counted from the start")
	wantList(t, s, users.ListQuery{Offset: 10, Limit: 5}, all, nil, "ListUsers with Offset past the last user must return no users")
}

func testListUsersOffsetAfter(t *testing.T, s users.Store) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{After: all[1].ID, Offset: 2, Limit: 2}, all, all[4:6], "ListUsers with After must skip Offset users counted from After")
}

func testListUsersOffsetBefore(t *testing.T, s users.Store) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{Before: all[8].ID, Offset: 2, Limit: 3}, all, all[3:6],
		"ListUsers with Before must skip Offset users counted backwards from Before, then return the Limit users before those, in ascending order")
	wantList(t, s, users.ListQuery{Before: all[3].ID, Offset: 2, Limit: 3}, all, all[:1],
		"ListUsers with Before must skip Offset users counted backwards from Before")
}

// filterFixture stores users that differ in every field a Filter matches, and
// filters that select different sets of them.
func filterFixture(t testing.TB, s users.Store) ([]*users.UserRecord, []users.Match) {
	t.Helper()
	type person struct {
		first, last, email, username string
		role                         users.Role
		status                       users.Status
		account                      string
	}
	people := []person{
		{"Grace", "Hopper", "grace@example.com", "grace", users.RoleAdmin, users.StatusActive, "acme"},
		{"Alan", "Turing", "alan@example.com", "", users.RoleUser, users.StatusSuspended, "acme"},
		{"Ada", "Lovelace", "ada@example.org", "countess", users.RoleUser, users.StatusActive, "engines"},
		{"Edsger", "Dijkstra", "ewd@example.com", "ewd", users.RoleViewer, users.StatusInactive, ""},
		{"Barbara", "Liskov", "barbara@example.com", "bliskov", users.RoleUser, users.StatusActive, "acme"},
		{"Katherine", "Johnson", "kj@example.org", "orbit", users.RoleUser, users.StatusInvited, "engines"},
	}
	all := addUsers(t, s, len(people), func(i int, r *users.UserRecord) {
		p := people[i]
		r.FirstName, r.LastName, r.Email, r.Username = p.first, p.last, p.email, p.username
		r.Role, r.Status, r.AccountID = p.role, p.status, p.account
	})
	filters := []users.Match{
		{},
		{Role: users.RoleAdmin},
		{Role: users.RoleUser},
		{Status: users.StatusActive},
		{Status: users.StatusInvited},
		{AccountID: "acme"},
		{Email: "ada@example.org"},
		{Username: "ewd"},
		{Search: "hopp"},     // last name, case-insensitively
		{Search: "ada"},      // first name and email
		{Search: "countess"}, // username
		{Search: "example.org"},
		{Search: "LOVE"},
		{Role: users.RoleUser, Status: users.StatusActive},
		{Role: users.RoleUser, AccountID: "acme", Search: "li"},
		{Status: users.StatusActive, AccountID: "engines", Email: "ada@example.org", Username: "countess", Role: users.RoleUser, Search: "lace"},
		{Role: "nobody"},
		{Search: "zzz"},
	}
	return all, filters
}

// matching returns the users in all that f matches.
func matching(all []*users.UserRecord, f users.Match) []*users.UserRecord {
	var out []*users.UserRecord
	for _, r := range all {
		if f.Matches(&r.User) {
			out = append(out, r)
		}
	}
	return out
}

func testListUsersFilter(t *testing.T, s users.Store) {
	all, filters := filterFixture(t, s)
	for _, f := range filters {
		wantList(t, s, users.ListQuery{Match: f, Limit: 100}, all, matching(all, f), "ListUsers must return exactly the users Match.Matches selects")
	}
}

func testListUsersFilterPaging(t *testing.T, s users.Store) {
	all := addUsers(t, s, 20, func(i int, r *users.UserRecord) {
		r.AccountID = []string{"even", "odd"}[i%2]
	})
	even := matching(all, users.Match{AccountID: "even"}) // all[0], all[2], …
	f := users.Match{AccountID: "even"}
	wantList(t, s, users.ListQuery{Match: f, Offset: 2, Limit: 3}, all, even[2:5],
		"ListUsers must count Limit and Offset in matching users only")
	wantList(t, s, users.ListQuery{Match: f, After: all[5].ID, Limit: 2}, all, even[3:5],
		"ListUsers with a Filter and After must return the first matching users after it")
	wantList(t, s, users.ListQuery{Match: f, After: all[5].ID, Offset: 1, Limit: 2}, all, even[4:6],
		"ListUsers with a Filter, After and Offset must skip Offset matching users after After")
	wantList(t, s, users.ListQuery{Match: f, Before: all[15].ID, Offset: 1, Limit: 3}, all, even[4:7],
		"ListUsers with a Filter, Before and Offset must skip Offset matching users backwards from Before and return the Limit matching users before them")
}

func testListUsersEmpty(t *testing.T, s users.Store) {
	got, err := s.ListUsers(t.Context(), users.ListQuery{Limit: 10})
	if err != nil || len(got) != 0 {
		t.Errorf("ListUsers on an empty store must return an empty slice and no error: got %d users, %v", len(got), err)
	}
	addUsers(t, s, 3, nil)
	got, err = s.ListUsers(t.Context(), users.ListQuery{Match: users.Match{Role: "nobody"}, Limit: 10})
	if err != nil || len(got) != 0 {
		t.Errorf("ListUsers matching nobody must return an empty slice and no error: got %d users, %v", len(got), err)
	}
}

func testListUsersReturnsCopies(t *testing.T, s users.Store) {
	all := addUsers(t, s, 3, nil)
	got, err := s.ListUsers(t.Context(), users.ListQuery{Limit: 10})
	if err != nil || len(got) != 3 {
		t.Fatalf("ListUsers: %d users, %v", len(got), err)
	}
	for _, r := range got {
		r.Preferences["lang"] = "changed"
		r.FirstName = "Changed"
	}
	for _, r := range all {
		wantUser(t, s, r, "ListUsers must return copies: changing them must not change the stored users")
	}
}

func testListUsersWalkWhileChanging(t *testing.T, s users.Store) {
	// Users at even indexes exist throughout; those at odd indexes, interleaved
	// with them in ID order, are created and deleted while the walk goes on.
	const n = 400
	ids := make([]*users.UserRecord, n)
	for i := range ids {
		ids[i] = newUser()
	}
	slices.SortFunc(ids, func(a, b *users.UserRecord) int { return strings.Compare(a.ID, b.ID) })
	var stable, churn []*users.UserRecord
	for i, r := range ids {
		if i%2 == 0 {
			stable = append(stable, r)
		} else {
			churn = append(churn, r)
		}
	}
	for _, r := range stable {
		mustCreateUser(t, s, r)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		created := make([]bool, len(churn))
		for round := 0; ; round++ {
			for i, r := range churn {
				select {
				case <-done:
					return
				default:
				}
				var err error
				if created[i] {
					err = s.DeleteUser(t.Context(), r.ID)
				} else {
					err = s.CreateUser(t.Context(), r.Clone())
				}
				if err != nil {
					t.Errorf("walk: churn: %v", err)
					return
				}
				created[i] = !created[i]
			}
		}
	})

	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatalf("ListUsers walk with After did not reach the end after %d pages", pages)
		}
		page, err := s.ListUsers(t.Context(), users.ListQuery{After: after, Limit: 7})
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			got = append(got, r.ID)
		}
		after = page[len(page)-1].ID
		runtime.Gosched() // let the churn run between pages
	}
	close(done)
	wg.Wait()

	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("walking ListUsers pages with After while users are created and deleted must give strictly ascending IDs: %s then %s", got[i-1], got[i])
		}
	}
	seen := make(map[string]bool, len(got))
	for _, id := range got {
		seen[id] = true
	}
	missing := 0
	for _, r := range stable {
		if !seen[r.ID] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("walking ListUsers pages with After while other users are created and deleted must yield every user that existed throughout: %d of %d missing", missing, len(stable))
	}
}

func testCountUsersFilter(t *testing.T, s users.Store) {
	if n, err := s.CountUsers(t.Context(), users.Match{}); err != nil || n != 0 {
		t.Errorf("CountUsers on an empty store must return 0: got %d, %v", n, err)
	}
	all, filters := filterFixture(t, s)
	for _, f := range filters {
		want := len(matching(all, f))
		if got, err := s.CountUsers(t.Context(), f); err != nil || got != want {
			t.Errorf("CountUsers must count the users Match.Matches selects: CountUsers(%+v) = %d, %v; want %d", f, got, err, want)
		}
	}
}

// ---- Sessions ----

func testCreateSessionRoundTrip(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := newSession(r)
	sess.LastSeenAt = base.Add(time.Minute)
	want := sess.Clone()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession must store a session for an existing user under its Generation: %v", err)
	}
	got, u, err := s.GetSession(t.Context(), sess.TokenHash)
	if err != nil {
		t.Fatalf("GetSession must find a stored session: %v", err)
	}
	if !sameSession(got, want) {
		t.Errorf("GetSession must return every field CreateSession stored:\n got %s\nwant %s", showSession(got), showSession(want))
	}
	if !sameUser(u, r) {
		t.Errorf("GetSession must return the session's user:\n got %s\nwant %s", showUser(u), showUser(r))
	}
}

func testCreateSessionUserNotFound(t *testing.T, s users.Store) {
	ghost := newUser()
	sess := newSession(ghost)
	wantErr(t, s.CreateSession(t.Context(), sess), users.ErrNotFound, "CreateSession must return ErrNotFound for a missing user")
	wantNoSession(t, s, sess.TokenHash, "CreateSession refused for a missing user must store nothing")
	wantSessions(t, s, ghost.ID, nil, "CreateSession refused for a missing user must store nothing")
}

func testCreateSessionStaleGeneration(t *testing.T, s users.Store) {
	r := addUser(t, s)
	if err := s.DeleteUserSessions(t.Context(), r.ID); err != nil { // Generation 0 → 1
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	stale := newSession(r) // Generation 0
	wantErr(t, s.CreateSession(t.Context(), stale), users.ErrConflict, "CreateSession must refuse a UserGeneration older than the user's Generation (ErrConflict)")
	wantNoSession(t, s, stale.TokenHash, "CreateSession refused for a stale generation must store nothing")
	future := newSession(r)
	future.UserGeneration = 7
	wantErr(t, s.CreateSession(t.Context(), future), users.ErrConflict, "CreateSession must refuse a UserGeneration different from the user's Generation (ErrConflict)")
	wantNoSession(t, s, future.TokenHash, "CreateSession refused for a wrong generation must store nothing")
	wantSessions(t, s, r.ID, nil, "CreateSession refused for a wrong generation must store nothing")
	current := newSession(r)
	current.UserGeneration = 1
	if err := s.CreateSession(t.Context(), current); err != nil {
		t.Errorf("CreateSession must accept the user's current Generation: %v", err)
	}
}

func testCreateSessionDuplicateHash(t *testing.T, s users.Store) {
	a, b := addUser(t, s), addUser(t, s)
	first := addSession(t, s, a.ID)
	dup := newSession(b)
	dup.TokenHash = slices.Clone(first.TokenHash)
	wantErr(t, s.CreateSession(t.Context(), dup), users.ErrConflict, "CreateSession must refuse a token hash another session has (ErrConflict)")
	wantSession(t, s, first, "CreateSession refused for a taken token hash must leave the existing session as it was")
	if _, u, err := s.GetSession(t.Context(), first.TokenHash); err == nil && u.ID != a.ID {
		t.Errorf("CreateSession refused for a taken token hash must leave the session to its user: GetSession gives user %s, want %s", u.ID, a.ID)
	}
	wantSessions(t, s, b.ID, nil, "CreateSession refused for a taken token hash must store nothing")
	wantErr(t, s.DeleteSessionByID(t.Context(), b.ID, dup.ID), users.ErrNotFound, "CreateSession refused for a taken token hash must not index its session ID")
}

func testCreateSessionDuplicateID(t *testing.T, s users.Store) {
	a, b := addUser(t, s), addUser(t, s)
	first := addSession(t, s, a.ID)
	dup := newSession(b)
	dup.ID = first.ID
	wantErr(t, s.CreateSession(t.Context(), dup), users.ErrConflict, "CreateSession must refuse a session ID another session has (ErrConflict)")
	wantNoSession(t, s, dup.TokenHash, "CreateSession refused for a taken session ID must store nothing")
	wantSessions(t, s, b.ID, nil, "CreateSession refused for a taken session ID must store nothing")
	wantSession(t, s, first, "CreateSession refused for a taken session ID must leave the existing session as it was")
}

func testCreateSessionCopiesInput(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := newSession(r)
	want := sess.Clone()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	sess.TokenHash[0] ^= 0xff
	sess.LastSeenAt = base.Add(time.Hour)
	wantSession(t, s, want, "CreateSession must keep a copy: changing the record or its TokenHash after the call must not change the stored session")
}

func testCreateSessionRacesDeleteUser(t *testing.T, s users.Store) {
	const creators = 8
	rounds(500, 300*time.Millisecond, func() {
		r := addUser(t, s)
		sessions := make([]*users.SessionRecord, creators)
		errs := make([]error, creators)
		var delErr error
		start(creators+1, func(i int) {
			if i == creators {
				delErr = s.DeleteUser(t.Context(), r.ID)
				return
			}
			sessions[i] = newSession(r)
			errs[i] = s.CreateSession(t.Context(), sessions[i])
		})
		if delErr != nil {
			t.Fatalf("DeleteUser racing CreateSession: %v", delErr)
		}
		for i, err := range errs {
			if err != nil && !errors.Is(err, users.ErrNotFound) {
				t.Errorf("CreateSession racing DeleteUser must succeed or return ErrNotFound: got %v", err)
			}
			wantNoSession(t, s, sessions[i].TokenHash, "CreateSession racing DeleteUser must never leave a session of a deleted user")
		}
		wantSessions(t, s, r.ID, nil, "CreateSession racing DeleteUser must never leave a session of a deleted user")
	})
}

func testCreateSessionRacesRevocation(t *testing.T, s users.Store) {
	const creators = 8
	rounds(500, 300*time.Millisecond, func() {
		r := addUser(t, s) // Generation 0
		errs := make([]error, creators)
		var revErr error
		start(creators+1, func(i int) {
			if i == creators {
				revErr = s.DeleteUserSessions(t.Context(), r.ID)
				return
			}
			errs[i] = s.CreateSession(t.Context(), newSession(r))
		})
		if revErr != nil {
			t.Fatalf("DeleteUserSessions racing CreateSession: %v", revErr)
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, users.ErrConflict) {
				t.Errorf("CreateSession racing DeleteUserSessions must succeed or return ErrConflict: got %v", err)
			}
		}
		list, err := s.ListSessions(t.Context(), r.ID)
		if err != nil {
			t.Fatalf("ListSessions: %v", err)
		}
		if len(list) > 0 {
			t.Errorf("CreateSession racing DeleteUserSessions must never leave a session created under the Generation from before the revocation: %d left", len(list))
		}
	})
}

func testGetSessionNotFound(t *testing.T, s users.Store) {
	r := addUser(t, s)
	addSession(t, s, r.ID)
	_, _, err := s.GetSession(t.Context(), randomHash())
	wantErr(t, err, users.ErrNotFound, "GetSession must return ErrNotFound for an unknown token hash")
}

func testGetSessionReturnsExpired(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := newSession(r)
	sess.CreatedAt = base.Add(-48 * time.Hour)
	sess.LastSeenAt = sess.CreatedAt
	sess.ExpiresAt = base.Add(-24 * time.Hour) // in the past by the wall clock too
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession must store a session whatever its expiry: %v", err)
	}
	wantSession(t, s, sess, "GetSession must return a session whatever its expiry (expiry is the Manager's call)")
	wantSessions(t, s, r.ID, []*users.SessionRecord{sess}, "ListSessions must return sessions whatever their expiry")
}

func testGetSessionCurrentUser(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	want, err := s.UpdateUser(t.Context(), r.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Status = users.StatusSuspended
		return users.Revoke{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	_, u, err := s.GetSession(t.Context(), sess.TokenHash)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if !sameUser(u, want) {
		t.Errorf("GetSession must return the user as it is now:\n got %s\nwant %s", showUser(u), showUser(want))
	}
}

func testGetSessionReturnsCopies(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	got, u, err := s.GetSession(t.Context(), sess.TokenHash)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	got.TokenHash[0] ^= 0xff
	got.LastSeenAt = base.Add(time.Hour)
	u.Preferences["lang"] = "changed"
	u.FirstName = "Changed"
	wantSession(t, s, sess, "GetSession must return a copy of the session: changing it or its TokenHash must not change the stored one")
	wantUser(t, s, r, "GetSession must return a copy of the user: changing it must not change the stored one")
}

func testTouchSessionForward(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	want := sess.Clone()
	touch := func(seen time.Time) {
		t.Helper()
		if err := s.TouchSession(t.Context(), sess.TokenHash, seen); err != nil {
			t.Fatalf("TouchSession: %v", err)
		}
	}
	touch(base.Add(2 * time.Minute))
	want.LastSeenAt = base.Add(2 * time.Minute)
	wantSession(t, s, want, "TouchSession must set LastSeenAt to a later time and change nothing else")
	touch(base.Add(time.Minute))
	wantSession(t, s, want, "TouchSession must not move LastSeenAt back")
	touch(base.Add(2 * time.Minute))
	wantSession(t, s, want, "TouchSession with the same time must leave LastSeenAt as it is")
}

func testTouchSessionNotFound(t *testing.T, s users.Store) {
	addUser(t, s)
	hash := randomHash()
	wantErr(t, s.TouchSession(t.Context(), hash, base), users.ErrNotFound, "TouchSession must return ErrNotFound for an unknown token hash")
	wantNoSession(t, s, hash, "TouchSession must never create a session")
}

func testTouchSessionNeverRecreates(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	if err := s.DeleteSession(t.Context(), sess.TokenHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantErr(t, s.TouchSession(t.Context(), sess.TokenHash, base.Add(time.Minute)), users.ErrNotFound, "TouchSession after the session was deleted must return ErrNotFound")
	wantNoSession(t, s, sess.TokenHash, "TouchSession must never recreate a deleted session")
	wantSessions(t, s, r.ID, nil, "TouchSession must never recreate a deleted session")
}

func testDeleteSession(t *testing.T, s users.Store) {
	r := addUser(t, s)
	gone, kept := addSession(t, s, r.ID), addSession(t, s, r.ID)
	if err := s.DeleteSession(t.Context(), gone.TokenHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantNoSession(t, s, gone.TokenHash, "DeleteSession must delete the session")
	wantSessions(t, s, r.ID, []*users.SessionRecord{kept}, "DeleteSession must delete only that session")
	wantErr(t, s.DeleteSessionByID(t.Context(), r.ID, gone.ID), users.ErrNotFound, "DeleteSession must delete the session's ID too")
	wantUser(t, s, r, "DeleteSession must not change the user (nor its Generation)")
}

func testDeleteSessionNotFound(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	wantErr(t, s.DeleteSession(t.Context(), randomHash()), users.ErrNotFound, "DeleteSession must return ErrNotFound for an unknown token hash")
	if err := s.DeleteSession(t.Context(), sess.TokenHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantErr(t, s.DeleteSession(t.Context(), sess.TokenHash), users.ErrNotFound, "DeleteSession must return ErrNotFound for a session already deleted")
}

func testDeleteSessionFrees(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	if err := s.DeleteSession(t.Context(), sess.TokenHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	again := sess.Clone()
	again.CreatedAt = base.Add(time.Minute)
	if err := s.CreateSession(t.Context(), again); err != nil {
		t.Errorf("DeleteSession must free the token hash and session ID (no index left behind): CreateSession with them again: %v", err)
	}
}

func testDeleteSessionByID(t *testing.T, s users.Store) {
	r := addUser(t, s)
	gone, kept := addSession(t, s, r.ID), addSession(t, s, r.ID)
	if err := s.DeleteSessionByID(t.Context(), r.ID, gone.ID); err != nil {
		t.Fatalf("DeleteSessionByID must delete a session of the user: %v", err)
	}
	wantNoSession(t, s, gone.TokenHash, "DeleteSessionByID must delete the session")
	wantSessions(t, s, r.ID, []*users.SessionRecord{kept}, "DeleteSessionByID must delete only that session")
	wantErr(t, s.DeleteSessionByID(t.Context(), r.ID, gone.ID), users.ErrNotFound, "DeleteSessionByID must return ErrNotFound for a session already deleted")
}

func testDeleteSessionByIDWrongUser(t *testing.T, s users.Store) {
	a, b := addUser(t, s), addUser(t, s)
	sess := addSession(t, s, a.ID)
	wantErr(t, s.DeleteSessionByID(t.Context(), b.ID, sess.ID), users.ErrNotFound, "DeleteSessionByID must return ErrNotFound for a session of another user")
	wantSession(t, s, sess, "DeleteSessionByID must not delete another user's session")
}

func testDeleteSessionByIDNotFound(t *testing.T, s users.Store) {
	r := addUser(t, s)
	addSession(t, s, r.ID)
	wantErr(t, s.DeleteSessionByID(t.Context(), r.ID, ulid.Make().String()), users.ErrNotFound, "DeleteSessionByID must return ErrNotFound for an unknown session ID")
	wantErr(t, s.DeleteSessionByID(t.Context(), ulid.Make().String(), ulid.Make().String()), users.ErrNotFound, "DeleteSessionByID must return ErrNotFound for an unknown user")
}

func testDeleteUserSessions(t *testing.T, s users.Store) {
	r, other := addUser(t, s), addUser(t, s)
	s1, s2 := addSession(t, s, r.ID), addSession(t, s, r.ID)
	keep := addSession(t, s, other.ID)
	tok := addToken(t, s, r, users.PurposeMagicLink)
	if err := s.DeleteUserSessions(t.Context(), r.ID); err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	wantNoSession(t, s, s1.TokenHash, "DeleteUserSessions must delete every session of the user")
	wantNoSession(t, s, s2.TokenHash, "DeleteUserSessions must delete every session of the user")
	wantSessions(t, s, r.ID, nil, "DeleteUserSessions must delete every session of the user")
	want := r.Clone()
	want.Generation++
	wantUser(t, s, want, "DeleteUserSessions must increment the user's Generation and change nothing else")
	wantSession(t, s, keep, "DeleteUserSessions must keep other users' sessions")
	wantUser(t, s, other, "DeleteUserSessions must not change other users")
	wantToken(t, s, tok, "DeleteUserSessions must keep the user's one-time tokens")
}

func testDeleteUserSessionsNone(t *testing.T, s users.Store) {
	r := addUser(t, s)
	for range 2 {
		if err := s.DeleteUserSessions(t.Context(), r.ID); err != nil {
			t.Fatalf("DeleteUserSessions on a user without sessions: %v", err)
		}
	}
	want := r.Clone()
	want.Generation += 2
	wantUser(t, s, want, "DeleteUserSessions must increment the Generation every time, even without sessions")
}

func testDeleteUserSessionsNotFound(t *testing.T, s users.Store) {
	addUser(t, s)
	wantErr(t, s.DeleteUserSessions(t.Context(), ulid.Make().String()), users.ErrNotFound, "DeleteUserSessions must return ErrNotFound for a missing user")
}

func testListSessionsOrder(t *testing.T, s users.Store) {
	r, other := addUser(t, s), addUser(t, s)
	addSession(t, s, other.ID)
	mk := func(created time.Time) *users.SessionRecord {
		sess := newSession(r)
		sess.CreatedAt, sess.LastSeenAt = created, created
		return sess
	}
	// In the order ListSessions must return them: by CreatedAt, ties by ID.
	want := []*users.SessionRecord{
		mk(base.Add(-time.Hour)),
		mk(base),
		mk(base),
		mk(base),
		mk(base.Add(time.Hour)),
	}
	want[0].ExpiresAt = base.Add(-30 * time.Minute) // expired: listed all the same
	// Make the tie-break by ID disagree with the creation order below, even
	// read back in any rotation of it (the ties are created in descending ID order).
	ids := []string{ulid.Make().String(), ulid.Make().String(), ulid.Make().String()}
	slices.Sort(ids)
	want[1].ID, want[2].ID, want[3].ID = ids[0], ids[1], ids[2]
	for _, i := range []int{3, 4, 2, 0, 1} {
		if err := s.CreateSession(t.Context(), want[i]); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	wantSessions(t, s, r.ID, want, "ListSessions must return only the user's sessions, in ascending CreatedAt order, ties by ID")
}

func testListSessionsEmpty(t *testing.T, s users.Store) {
	r, other := addUser(t, s), addUser(t, s)
	addSession(t, s, other.ID)
	for _, id := range []string{r.ID, ulid.Make().String()} {
		got, err := s.ListSessions(t.Context(), id)
		if err != nil || len(got) != 0 {
			t.Errorf("ListSessions for a user without sessions, or no such user, must return an empty slice and no error: got %d sessions, %v", len(got), err)
		}
	}
}

func testListSessionsReturnsCopies(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	got, err := s.ListSessions(t.Context(), r.ID)
	if err != nil || len(got) != 1 {
		t.Fatalf("ListSessions: %d sessions, %v", len(got), err)
	}
	got[0].TokenHash[0] ^= 0xff
	got[0].LastSeenAt = base.Add(time.Hour)
	wantSession(t, s, sess, "ListSessions must return copies: changing them must not change the stored sessions")
}

// ---- Login attempts ----

func testGetLoginAttemptsMissing(t *testing.T, s users.Store) {
	mustUpdateAttempts(t, s, "id:someone", users.LoginAttempts{Failures: 1, ExpiresAt: base.Add(time.Hour)})
	wantAttempts(t, s, "id:nobody", users.LoginAttempts{}, "GetLoginAttempts must return the zero LoginAttempts for a key without an entry")
}

func testUpdateLoginAttempts(t *testing.T, s users.Store) {
	key := users.IdentifierThrottleKey("ada@example.com")
	want := users.LoginAttempts{Failures: 1, WindowStart: base, ExpiresAt: base.Add(time.Hour)}
	var seen users.LoginAttempts
	got, err := s.UpdateLoginAttempts(t.Context(), key, func(a *users.LoginAttempts) error {
		seen = *a
		*a = want
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateLoginAttempts: %v", err)
	}
	if !sameAttempts(seen, users.LoginAttempts{}) {
		t.Errorf("UpdateLoginAttempts must call fn with the zero value for a key without an entry: got %+v", seen)
	}
	if !sameAttempts(got, want) {
		t.Errorf("UpdateLoginAttempts must return what fn left: got %+v, want %+v", got, want)
	}
	wantAttempts(t, s, key, want, "UpdateLoginAttempts must write what fn left")

	want2 := users.LoginAttempts{Failures: 2, WindowStart: base, LockedUntil: base.Add(time.Minute), ExpiresAt: base.Add(2 * time.Hour),
		Consecutive: 12, Locks: 1, HashNotUpgradable: true}
	got, err = s.UpdateLoginAttempts(t.Context(), key, func(a *users.LoginAttempts) error {
		seen = *a
		*a = want2
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateLoginAttempts: %v", err)
	}
	if !sameAttempts(seen, want) {
		t.Errorf("UpdateLoginAttempts must call fn with the stored entry: got %+v, want %+v", seen, want)
	}
	if !sameAttempts(got, want2) {
		t.Errorf("UpdateLoginAttempts must return what fn left: got %+v, want %+v", got, want2)
	}
	wantAttempts(t, s, key, want2, "UpdateLoginAttempts must write what fn left")
}

func testUpdateLoginAttemptsFnError(t *testing.T, s users.Store) {
	stored := users.LoginAttempts{Failures: 3, WindowStart: base, ExpiresAt: base.Add(time.Hour)}
	mustUpdateAttempts(t, s, "k1", stored)
	fn := func(a *users.LoginAttempts) error {
		a.Failures = 99
		a.ExpiresAt = base.Add(9 * time.Hour)
		return errSentinel
	}
	_, err := s.UpdateLoginAttempts(t.Context(), "k1", fn)
	if !errors.Is(err, errSentinel) {
		t.Errorf("UpdateLoginAttempts must return fn's error unchanged: got %v, want %v", err, errSentinel)
	}
	wantAttempts(t, s, "k1", stored, "UpdateLoginAttempts must write nothing when fn fails")
	_, err = s.UpdateLoginAttempts(t.Context(), "k2", fn)
	if !errors.Is(err, errSentinel) {
		t.Errorf("UpdateLoginAttempts must return fn's error unchanged: got %v, want %v", err, errSentinel)
	}
	wantAttempts(t, s, "k2", users.LoginAttempts{}, "UpdateLoginAttempts must create no entry when fn fails")
}

func testUpdateLoginAttemptsZeroDeletes(t *testing.T, s users.Store) {
	mustUpdateAttempts(t, s, "k", users.LoginAttempts{Failures: 3, WindowStart: base, ExpiresAt: base.Add(time.Hour)})
	got, err := s.UpdateLoginAttempts(t.Context(), "k", func(a *users.LoginAttempts) error {
		*a = users.LoginAttempts{}
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateLoginAttempts: %v", err)
	}
	if !sameAttempts(got, users.LoginAttempts{}) {
		t.Errorf("UpdateLoginAttempts must return the zero value fn left: got %+v", got)
	}
	wantAttempts(t, s, "k", users.LoginAttempts{}, "UpdateLoginAttempts leaving the zero value must delete the entry")
	// A zero entry still stored would have ExpiresAt (zero) before any now.
	if n, err := s.DeleteExpired(t.Context(), base.Add(24*time.Hour)); err != nil || n != 0 {
		t.Errorf("UpdateLoginAttempts leaving the zero value must delete the entry, not store a zero one: DeleteExpired then deleted %d, %v; want 0", n, err)
	}
}

func testUpdateLoginAttemptsKeys(t *testing.T, s users.Store) {
	a := users.LoginAttempts{Failures: 1, WindowStart: base, ExpiresAt: base.Add(time.Hour)}
	b := users.LoginAttempts{Failures: 5, WindowStart: base, LockedUntil: base.Add(time.Minute), ExpiresAt: base.Add(time.Hour)}
	mustUpdateAttempts(t, s, "user:a", a)
	mustUpdateAttempts(t, s, "user:b", b)
	wantAttempts(t, s, "user:a", a, "UpdateLoginAttempts must keep one entry per key")
	wantAttempts(t, s, "user:b", b, "UpdateLoginAttempts must keep one entry per key")
}

func testUpdateLoginAttemptsConcurrent(t *testing.T, s users.Store) {
	const n = 100
	start(n, func(int) {
		_, err := s.UpdateLoginAttempts(t.Context(), "id:hot", func(a *users.LoginAttempts) error {
			a.Failures++
			a.ExpiresAt = base.Add(time.Hour)
			runtime.Gosched() // widen the window a non-atomic store would have
			return nil
		})
		if err != nil {
			t.Errorf("UpdateLoginAttempts racing others for one key must succeed: %v", err)
		}
	})
	got, err := s.GetLoginAttempts(t.Context(), "id:hot")
	if err != nil || got.Failures != n {
		t.Errorf("UpdateLoginAttempts must serialise calls for one key: %d concurrent increments gave Failures = %d, %v", n, got.Failures, err)
	}
}

// ---- Tokens ----

func testCreateTokenRoundTrip(t *testing.T, s users.Store) {
	r := addUser(t, s)
	tok := newToken(r, users.PurposeInvitation)
	want := tok.Clone()
	if err := s.CreateToken(t.Context(), tok, true); err != nil {
		t.Fatalf("CreateToken must store a token for an existing user: %v", err)
	}
	wantToken(t, s, want, "GetToken must return every field CreateToken stored")
	got, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
	if err != nil {
		t.Fatalf("ConsumeToken: %v", err)
	}
	if !sameToken(got, want) {
		t.Errorf("ConsumeToken must return every field CreateToken stored:\n got %s\nwant %s", showToken(got), showToken(want))
	}
}

func testCreateTokenUserNotFound(t *testing.T, s users.Store) {
	tok := newToken(newUser(), users.PurposePasswordReset)
	wantErr(t, s.CreateToken(t.Context(), tok, true), users.ErrNotFound, "CreateToken must return ErrNotFound for a missing user")
	wantNoToken(t, s, tok, "CreateToken refused for a missing user must store nothing")
}

func testCreateTokenDuplicateHash(t *testing.T, s users.Store) {
	a, b := addUser(t, s), addUser(t, s)
	first := addToken(t, s, a, users.PurposePasswordReset)
	for _, dup := range []*users.TokenRecord{
		newToken(b, users.PurposeVerifyEmail),
		newToken(a, users.PurposeVerifyEmail),
	} {
		dup.Hash = slices.Clone(first.Hash)
		wantErr(t, s.CreateToken(t.Context(), dup, false), users.ErrConflict, "CreateToken must refuse a hash another token has (ErrConflict)")
		wantToken(t, s, first, "CreateToken refused for a taken hash must leave the existing token as it was")
		wantNoToken(t, s, dup, "CreateToken refused for a taken hash must store nothing")
	}
}

func testCreateTokenReplace(t *testing.T, s users.Store) {
	r, other := addUser(t, s), addUser(t, s)
	old1 := addToken(t, s, r, users.PurposePasswordReset)
	old2 := addToken(t, s, r, users.PurposePasswordReset)
	verify := addToken(t, s, r, users.PurposeVerifyEmail)
	otherReset := addToken(t, s, other, users.PurposePasswordReset)
	tok := newToken(r, users.PurposePasswordReset)
	if err := s.CreateToken(t.Context(), tok, true); err != nil {
		t.Fatalf("CreateToken with replace: %v", err)
	}
	wantToken(t, s, tok, "CreateToken with replace must store the new token")
	wantNoToken(t, s, old1, "CreateToken with replace must delete the user's other tokens of that purpose")
	wantNoToken(t, s, old2, "CreateToken with replace must delete the user's other tokens of that purpose")
	wantToken(t, s, verify, "CreateToken with replace must keep the user's tokens of other purposes")
	wantToken(t, s, otherReset, "CreateToken with replace must keep other users' tokens")
}

func testCreateTokenNoReplace(t *testing.T, s users.Store) {
	r := addUser(t, s)
	old := addToken(t, s, r, users.PurposeMagicLink)
	tok := addToken(t, s, r, users.PurposeMagicLink)
	wantToken(t, s, old, "CreateToken without replace must keep the user's other tokens of that purpose")
	wantToken(t, s, tok, "CreateToken without replace must store the new token")
}

func testCreateTokenCopiesInput(t *testing.T, s users.Store) {
	r := addUser(t, s)
	tok := newToken(r, users.PurposeVerifyEmail)
	want := tok.Clone()
	mustCreateToken(t, s, tok)
	tok.Hash[0] ^= 0xff
	tok.Email = "changed@example.com"
	wantToken(t, s, want, "CreateToken must keep a copy: changing the record or its Hash after the call must not change the stored token")
}

func testGetTokenDoesNotConsume(t *testing.T, s users.Store) {
	r := addUser(t, s)
	tok := addToken(t, s, r, users.PurposePasswordReset)
	wantToken(t, s, tok, "GetToken must return a stored token of that purpose")
	wantToken(t, s, tok, "GetToken must not consume the token")
	if _, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose); err != nil {
		t.Errorf("GetToken must not consume the token: ConsumeToken afterwards: %v", err)
	}
}

func testGetTokenWrongPurpose(t *testing.T, s users.Store) {
	r := addUser(t, s)
	tok := addToken(t, s, r, users.PurposePasswordReset)
	_, err := s.GetToken(t.Context(), tok.Hash, users.PurposeMagicLink)
	wantErr(t, err, users.ErrNotFound, "GetToken must return ErrNotFound for a token of another purpose")
	wantToken(t, s, tok, "GetToken must not delete a token of another purpose")
}

func testGetTokenWhateverExpiry(t *testing.T, s users.Store) {
	r := addUser(t, s)
	tok := newToken(r, users.PurposePasswordReset)
	tok.CreatedAt, tok.ExpiresAt = base.Add(-48*time.Hour), base.Add(-24*time.Hour)
	mustCreateToken(t, s, tok)
	wantToken(t, s, tok, "GetToken must return a token whatever its ExpiresAt: expiry is the Manager's to decide")
}

func testGetTokenNotFound(t *testing.T, s users.Store) {
	r := addUser(t, s)
	addToken(t, s, r, users.PurposePasswordReset)
	_, err := s.GetToken(t.Context(), randomHash(), users.PurposePasswordReset)
	wantErr(t, err, users.ErrNotFound, "GetToken must return ErrNotFound for an unknown hash")
}

func testGetTokenReturnsCopy(t *testing.T, s users.Store) {
	r := addUser(t, s)
	tok := addToken(t, s, r, users.PurposePasswordReset)
	got, err := s.GetToken(t.Context(), tok.Hash, tok.Purpose)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	got.Hash[0] ^= 0xff
	got.Email = "changed@example.com"
	wantToken(t, s, tok, "GetToken must return a copy: changing it or its Hash must not change the stored token")
}

func testConsumeToken(t *testing.T, s users.Store) {
	r := addUser(t, s)
	tok := addToken(t, s, r, users.PurposeVerifyEmail)
	other := addToken(t, s, r, users.PurposeVerifyEmail)
	got, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
	if err != nil {
		t.Fatalf("ConsumeToken must return a stored token of that purpose: %v", err)
	}
	if !sameToken(got, tok) {
		t.Errorf("ConsumeToken must return the token:\n got %s\nwant %s", showToken(got), showToken(tok))
	}
	wantNoToken(t, s, tok, "ConsumeToken must delete the token")
	_, err = s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
	wantErr(t, err, users.ErrNotFound, "ConsumeToken must return ErrNotFound for a token already consumed")
	wantToken(t, s, other, "ConsumeToken must delete only that token")
}

func testConsumeTokenWrongPurpose(t *testing.T, s users.Store) {
	r := addUser(t, s)
	tok := addToken(t, s, r, users.PurposePasswordReset)
	_, err := s.ConsumeToken(t.Context(), tok.Hash, users.PurposeInvitation)
	wantErr(t, err, users.ErrNotFound, "ConsumeToken must return ErrNotFound for a token of another purpose")
	wantToken(t, s, tok, "ConsumeToken must not delete a token of another purpose")
	if _, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose); err != nil {
		t.Errorf("ConsumeToken with the wrong purpose must leave the token redeemable: %v", err)
	}
}

func testConsumeTokenWhateverExpiry(t *testing.T, s users.Store) {
	r := addUser(t, s)
	tok := newToken(r, users.PurposeMagicLink)
	tok.CreatedAt, tok.ExpiresAt = base.Add(-48*time.Hour), base.Add(-24*time.Hour)
	mustCreateToken(t, s, tok)
	got, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
	if err != nil || !sameToken(got, tok) {
		t.Errorf("ConsumeToken must return a token whatever its ExpiresAt (expiry is the Manager's to decide): got %s, %v; want %s", showToken(got), err, showToken(tok))
	}
	wantNoToken(t, s, tok, "ConsumeToken must delete the token it returns, expired or not")
}

func testConsumeTokenNotFound(t *testing.T, s users.Store) {
	r := addUser(t, s)
	addToken(t, s, r, users.PurposePasswordReset)
	_, err := s.ConsumeToken(t.Context(), randomHash(), users.PurposePasswordReset)
	wantErr(t, err, users.ErrNotFound, "ConsumeToken must return ErrNotFound for an unknown hash")
}

func testConsumeTokenConcurrent(t *testing.T, s users.Store) {
	r := addUser(t, s)
	const n = 16
	rounds(2000, 300*time.Millisecond, func() {
		tok := addToken(t, s, r, users.PurposePasswordReset)
		errs := make([]error, n)
		start(n, func(i int) {
			_, errs[i] = s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
		})
		if !ExactlyOne(t, errs, users.ErrNotFound, "of concurrent ConsumeToken calls for one token exactly one must get it, the others ErrNotFound") {
			t.FailNow()
		}
	})
}

// ---- DeleteExpired ----

func testDeleteExpiredBoundary(t *testing.T, s users.Store) {
	now := base
	r := addUser(t, s)
	var sess [3]*users.SessionRecord
	var toks [3]*users.TokenRecord
	var att [3]users.LoginAttempts
	keys := [3]users.ThrottleKey{"k-before", "k-at", "k-after"}
	for i, exp := range []time.Time{now.Add(-time.Second), now, now.Add(time.Second)} {
		sess[i] = newSession(r)
		sess[i].ExpiresAt = exp
		if err := s.CreateSession(t.Context(), sess[i]); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		toks[i] = newToken(r, users.PurposePasswordReset)
		toks[i].ExpiresAt = exp
		mustCreateToken(t, s, toks[i])
		att[i] = users.LoginAttempts{Failures: 1, WindowStart: now.Add(-time.Hour), ExpiresAt: exp}
		mustUpdateAttempts(t, s, keys[i], att[i])
	}

	n, err := s.DeleteExpired(t.Context(), now)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if n != 6 {
		t.Errorf("DeleteExpired must return how many records it deleted: got %d, want 6 (2 sessions, 2 tokens, 2 throttle entries expiring at or before now)", n)
	}
	for i, rule := range []string{"before now must be deleted", "exactly at now must be deleted"} {
		wantNoSession(t, s, sess[i].TokenHash, "DeleteExpired: a session expiring "+rule)
		wantNoToken(t, s, toks[i], "DeleteExpired: a token expiring "+rule)
		wantAttempts(t, s, keys[i], users.LoginAttempts{}, "DeleteExpired: a throttle entry expiring "+rule)
	}
	wantSession(t, s, sess[2], "DeleteExpired must keep a session expiring after now")
	wantSessions(t, s, r.ID, sess[2:], "DeleteExpired must keep only the sessions expiring after now")
	if got, err := s.GetToken(t.Context(), toks[2].Hash, toks[2].Purpose); err != nil || !sameToken(got, toks[2]) {
		t.Errorf("DeleteExpired must keep a token expiring after now: GetToken = %s, %v", showToken(got), err)
	}
	wantAttempts(t, s, keys[2], att[2], "DeleteExpired must keep a throttle entry expiring after now")
	wantUser(t, s, r, "DeleteExpired must not touch users")

	if n, err := s.DeleteExpired(t.Context(), now); err != nil || n != 0 {
		t.Errorf("DeleteExpired run again at the same time must delete nothing: got %d, %v", n, err)
	}
}

func testDeleteExpiredFrees(t *testing.T, s users.Store) {
	r := addUser(t, s)
	sess := newSession(r)
	sess.ExpiresAt = base
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	tok := newToken(r, users.PurposePasswordReset)
	tok.ExpiresAt = base
	mustCreateToken(t, s, tok)
	if n, err := s.DeleteExpired(t.Context(), base); err != nil || n != 2 {
		t.Fatalf("DeleteExpired = %d, %v; want 2", n, err)
	}
	wantErr(t, s.DeleteSessionByID(t.Context(), r.ID, sess.ID), users.ErrNotFound, "DeleteExpired must delete an expired session's ID too")
	wantSessions(t, s, r.ID, nil, "DeleteExpired must delete expired sessions from the user's list")
	sess.ExpiresAt = base.Add(time.Hour)
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Errorf("DeleteExpired must free an expired session's token hash and ID: CreateSession with them again: %v", err)
	}
	tok.ExpiresAt = base.Add(time.Hour)
	if err := s.CreateToken(t.Context(), tok, false); err != nil {
		t.Errorf("DeleteExpired must free an expired token's hash: CreateToken with it again: %v", err)
	}
}

func testDeleteExpiredCountsStored(t *testing.T, s users.Store) {
	now := base
	expiredSession := func(userID string) *users.SessionRecord {
		t.Helper()
		sess := newSession(mustGetUser(t, s, userID))
		sess.ExpiresAt = now.Add(-time.Minute)
		must(t, s.CreateSession(t.Context(), sess))
		return sess
	}
	expiredToken := func(u *users.UserRecord, p users.Purpose) *users.TokenRecord {
		t.Helper()
		tok := newToken(u, p)
		tok.ExpiresAt = now.Add(-time.Minute)
		mustCreateToken(t, s, tok)
		return tok
	}
	r, gone := addUser(t, s), addUser(t, s)

	// Expired sessions deleted by logout, by ID, and by both kinds of revocation.
	must(t, s.DeleteSession(t.Context(), expiredSession(r.ID).TokenHash))
	must(t, s.DeleteSessionByID(t.Context(), r.ID, expiredSession(r.ID).ID))
	expiredSession(r.ID)
	must(t, s.DeleteUserSessions(t.Context(), r.ID))
	expiredSession(r.ID)
	_, err := s.UpdateUser(t.Context(), r.ID, func(*users.UserRecord) (users.Revoke, error) {
		return users.Revoke{Sessions: true}, nil
	})
	must(t, err)

	// Expired tokens deleted by consumption, by replacement and by Revoke.Tokens.
	consumed := expiredToken(r, users.PurposePasswordReset)
	_, err = s.ConsumeToken(t.Context(), consumed.Hash, consumed.Purpose)
	must(t, err) // an expired token is consumed like any other: expiry is the Manager's
	expiredToken(r, users.PurposeInvitation)
	must(t, s.CreateToken(t.Context(), newToken(r, users.PurposeInvitation), true))
	expiredToken(r, users.PurposeMagicLink)
	_, err = s.UpdateUser(t.Context(), r.ID, func(*users.UserRecord) (users.Revoke, error) {
		return users.Revoke{Tokens: []users.Purpose{users.PurposeMagicLink}}, nil
	})
	must(t, err)

	// An expired throttle entry zeroed by UpdateLoginAttempts.
	mustUpdateAttempts(t, s, "zeroed", users.LoginAttempts{Failures: 1, ExpiresAt: now.Add(-time.Minute)})
	mustUpdateAttempts(t, s, "zeroed", users.LoginAttempts{})

	// An expired session, token and throttle entry deleted with their user.
	expiredSession(gone.ID)
	expiredToken(gone, users.PurposeVerifyEmail)
	mustUpdateAttempts(t, s, users.UserThrottleKey(gone.ID), users.LoginAttempts{Failures: 1, ExpiresAt: now.Add(-time.Minute)})
	must(t, s.DeleteUser(t.Context(), gone.ID))

	// One expired record still stored.
	live := expiredSession(r.ID)

	n, err := s.DeleteExpired(t.Context(), now)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if n != 1 {
		t.Errorf("DeleteExpired must count only the records it deleted, not those already deleted by logout, revocation, consumption, replacement, zeroing or DeleteUser: got %d, want 1", n)
	}
	wantNoSession(t, s, live.TokenHash, "DeleteExpired must delete an expired session")
}

func testDeleteExpiredCurrentExpiry(t *testing.T, s users.Store) {
	now := base
	r := addUser(t, s)

	// A throttle entry whose ExpiresAt moves from before now to after it, stored
	// before a record that does expire.
	mustUpdateAttempts(t, s, "later", users.LoginAttempts{Failures: 1, ExpiresAt: now.Add(-time.Hour)})
	// One that moves from after now to before it, stored before records that
	// expire sooner than it did.
	mustUpdateAttempts(t, s, "sooner", users.LoginAttempts{Failures: 1, ExpiresAt: now.Add(3 * time.Hour)})
	expired := newSession(r)
	expired.ExpiresAt = now.Add(-30 * time.Minute)
	must(t, s.CreateSession(t.Context(), expired))

	// A session and a token deleted before their expiry and recreated under the
	// same hash with a later one.
	sess := newSession(r)
	sess.ExpiresAt = now.Add(-time.Hour)
	must(t, s.CreateSession(t.Context(), sess))
	must(t, s.DeleteSession(t.Context(), sess.TokenHash))
	again := sess.Clone()
	again.ExpiresAt = now.Add(time.Hour)
	must(t, s.CreateSession(t.Context(), again))
	tok := newToken(r, users.PurposeVerifyEmail)
	tok.ExpiresAt = now.Add(-time.Hour)
	mustCreateToken(t, s, tok)
	_, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
	must(t, err) // an expired token is consumed like any other: expiry is the Manager's
	tokAgain := tok.Clone()
	tokAgain.ExpiresAt = now.Add(time.Hour)
	mustCreateToken(t, s, tokAgain)

	later := users.LoginAttempts{Failures: 2, ExpiresAt: now.Add(time.Hour)}
	mustUpdateAttempts(t, s, "later", later)
	mustUpdateAttempts(t, s, "sooner", users.LoginAttempts{Failures: 2, ExpiresAt: now.Add(-time.Minute)})

	n, err := s.DeleteExpired(t.Context(), now)
	if err != nil || n != 2 {
		t.Errorf("DeleteExpired must go by each record's current ExpiresAt: deleted %d, %v; want 2 (an expired session and a throttle entry whose ExpiresAt was moved before now)", n, err)
	}
	wantNoSession(t, s, expired.TokenHash, "DeleteExpired must delete an expired session")
	wantAttempts(t, s, "sooner", users.LoginAttempts{}, "DeleteExpired must delete a throttle entry whose ExpiresAt was moved before now")
	wantAttempts(t, s, "later", later, "DeleteExpired must keep a throttle entry whose ExpiresAt was moved after now")
	wantSession(t, s, again, "DeleteExpired must keep a session recreated with the same hash and a later expiry")
	wantToken(t, s, tokAgain, "DeleteExpired must keep a token recreated with the same hash and a later expiry")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
}

// ---- Canceled context ----

// fixture is one of everything a Store keeps.
type fixture struct {
	user     *users.UserRecord
	session  *users.SessionRecord
	token    *users.TokenRecord
	key      users.ThrottleKey
	attempts users.LoginAttempts
}

func newFixture(t testing.TB, s users.Store) fixture {
	t.Helper()
	f := fixture{key: "id:fixture", attempts: users.LoginAttempts{Failures: 2, WindowStart: base, ExpiresAt: base.Add(time.Hour)}}
	f.user = addUser(t, s)
	f.session = addSession(t, s, f.user.ID)
	f.token = addToken(t, s, f.user, users.PurposePasswordReset)
	mustUpdateAttempts(t, s, f.key, f.attempts)
	return f
}

// canceledCalls call every Store method with an already-canceled context, in a
// way that would change the fixture if the call went through.
var canceledCalls = []struct {
	method string
	call   func(ctx context.Context, s users.Store, f fixture) error
}{
	{"CreateUser", func(ctx context.Context, s users.Store, f fixture) error {
		return s.CreateUser(ctx, newUser())
	}},
	{"GetUser", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetUser(ctx, f.user.ID)
		return err
	}},
	{"CreateUsers", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.CreateUsers(ctx, []*users.UserRecord{newUser(), newUser()})
		return err
	}},
	{"GetUsers", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetUsers(ctx, []string{f.user.ID})
		return err
	}},
	{"GetUsersByEmail", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetUsersByEmail(ctx, []string{f.user.Email})
		return err
	}},
	{"GetUserByEmail", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetUserByEmail(ctx, f.user.Email)
		return err
	}},
	{"GetUserByUsername", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetUserByUsername(ctx, f.user.Username)
		return err
	}},
	{"UpdateUser", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.UpdateUser(ctx, f.user.ID, func(r *users.UserRecord) (users.Revoke, error) {
			r.FirstName = "Changed"
			r.Email = "changed@example.com"
			return users.Revoke{Sessions: true, Tokens: users.Purposes()}, nil
		})
		return err
	}},
	{"DeleteUser", func(ctx context.Context, s users.Store, f fixture) error {
		return s.DeleteUser(ctx, f.user.ID)
	}},
	{"ListUsers", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.ListUsers(ctx, users.ListQuery{Limit: 10})
		return err
	}},
	{"CountUsers", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.CountUsers(ctx, users.Match{})
		return err
	}},
	{"CreateSession", func(ctx context.Context, s users.Store, f fixture) error {
		return s.CreateSession(ctx, newSession(f.user))
	}},
	{"GetSession", func(ctx context.Context, s users.Store, f fixture) error {
		_, _, err := s.GetSession(ctx, f.session.TokenHash)
		return err
	}},
	{"TouchSession", func(ctx context.Context, s users.Store, f fixture) error {
		return s.TouchSession(ctx, f.session.TokenHash, base.Add(time.Hour))
	}},
	{"DeleteSession", func(ctx context.Context, s users.Store, f fixture) error {
		return s.DeleteSession(ctx, f.session.TokenHash)
	}},
	{"DeleteSessionByID", func(ctx context.Context, s users.Store, f fixture) error {
		return s.DeleteSessionByID(ctx, f.user.ID, f.session.ID)
	}},
	{"DeleteUserSessions", func(ctx context.Context, s users.Store, f fixture) error {
		return s.DeleteUserSessions(ctx, f.user.ID)
	}},
	{"ListSessions", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.ListSessions(ctx, f.user.ID)
		return err
	}},
	{"GetLoginAttempts", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetLoginAttempts(ctx, f.key)
		return err
	}},
	{"UpdateLoginAttempts", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.UpdateLoginAttempts(ctx, f.key, func(a *users.LoginAttempts) error {
			a.Failures++
			return nil
		})
		return err
	}},
	{"CreateToken", func(ctx context.Context, s users.Store, f fixture) error {
		return s.CreateToken(ctx, newToken(f.user, f.token.Purpose), true)
	}},
	{"GetToken", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetToken(ctx, f.token.Hash, f.token.Purpose)
		return err
	}},
	{"ConsumeToken", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.ConsumeToken(ctx, f.token.Hash, f.token.Purpose)
		return err
	}},
	{"DeleteExpired", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.DeleteExpired(ctx, base.Add(24*time.Hour))
		return err
	}},
}

func testCanceled(t *testing.T, s users.Store, method string, call func(context.Context, users.Store, fixture) error) {
	f := newFixture(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := call(ctx, s, f)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a canceled context must return an error matching context.Canceled: got %v", method, err)
	}

	rule := method + " with a canceled context must change nothing"
	wantUser(t, s, f.user, rule)
	if n, err := s.CountUsers(t.Context(), users.Match{}); err != nil || n != 1 {
		t.Errorf("%s: CountUsers = %d, %v; want 1", rule, n, err)
	}
	wantSessions(t, s, f.user.ID, []*users.SessionRecord{f.session}, rule)
	wantToken(t, s, f.token, rule)
	wantAttempts(t, s, f.key, f.attempts, rule)
	// Nothing was added either: the fixture's session, token and throttle entry
	// are the only records DeleteExpired finds.
	if n, err := s.DeleteExpired(t.Context(), base.Add(24*time.Hour)); err != nil || n != 3 {
		t.Errorf("%s: DeleteExpired then deleted %d, %v; want 3 (the fixture's session, token and throttle entry)", rule, n, err)
	}
}
