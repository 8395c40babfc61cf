package storetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
)

// ---- CreateUser and the getters ----

func testCreateUserRoundTrip(t *testing.T, s users.Store, _ string) {
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

func testCreateUserDuplicateEmail(t *testing.T, s users.Store, _ string) {
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

func testCreateUserDuplicateUsername(t *testing.T, s users.Store, _ string) {
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

func testCreateUserEmailCheckedFirst(t *testing.T, s users.Store, _ string) {
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

func testCreateUserDuplicateID(t *testing.T, s users.Store, _ string) {
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

func testCreateUserEmptyUsernames(t *testing.T, s users.Store, _ string) {
	for i := range 3 {
		r := newUser()
		r.Username = ""
		if err := s.CreateUser(t.Context(), r); err != nil {
			t.Errorf("CreateUser must allow any number of users without a username (user %d): %v", i+1, err)
		}
	}
}

func testCreateUserComparesExactly(t *testing.T, s users.Store, _ string) {
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

func testCreateUserCopiesInput(t *testing.T, s users.Store, _ string) {
	r := newUser()
	want := r.Clone()
	mustCreateUser(t, s, r)
	r.Preferences["lang"] = "changed"
	r.Preferences["new"] = "key"
	r.FirstName = "Changed"
	wantUser(t, s, want, "CreateUser must keep a copy: changing the record after the call must not change the stored user")
}

// uniqueKey is one of the two keys no two users may share. The rules about
// concurrent CreateUser calls with one key are the same for both and differ
// only in the data below, rule text included.
type uniqueKey struct {
	name  string                              // the key's name in the rule text
	value string                              // the value every racing call stores
	set   func(r *users.UserRecord, v string) // gives r the value
	match func(v string) users.Match          // matches the users with the value
	dup   error                               // the error of a call that loses
	// exactlyOne is the rule when the calls race.
	exactlyOne string
}

var (
	emailKey = uniqueKey{
		name:       "email",
		value:      "same@example.com",
		set:        func(r *users.UserRecord, v string) { r.Email = v },
		match:      func(v string) users.Match { return users.Match{Email: v} },
		dup:        users.ErrDuplicateEmail,
		exactlyOne: "of concurrent CreateUser calls with one email exactly one must succeed, the others with ErrDuplicateEmail",
	}
	usernameKey = uniqueKey{
		name:       "username",
		value:      "same",
		set:        func(r *users.UserRecord, v string) { r.Username = v },
		match:      func(v string) users.Match { return users.Match{Username: v} },
		dup:        users.ErrDuplicateUsername,
		exactlyOne: "of concurrent CreateUser calls with one username exactly one must succeed, the others with ErrDuplicateUsername",
	}
)

// testCreateConcurrent checks that of concurrent CreateUser calls with one
// value of the key exactly one wins.
func (k uniqueKey) testCreateConcurrent(t *testing.T, s users.Store, _ string) {
	const n = 32
	errs := make([]error, n)
	start(n, func(i int) {
		r := newUser()
		k.set(r, k.value)
		errs[i] = s.CreateUser(t.Context(), r)
	})
	ExactlyOne(t, errs, k.dup, k.exactlyOne)
	if got, err := s.CountUsers(t.Context(), k.match(k.value)); err != nil || got != 1 {
		t.Errorf("after %d concurrent CreateUser calls with one %s exactly one user must have it: CountUsers = %d, %v", n, k.name, got, err)
	}
}

// userLookup is one of the Store's three ways to read a single user. The
// NotFound and ReturnsCopy rules are the same for each and differ only in the
// key, so each lookup carries its key and its rule text, the way
// testing/slogtest pairs a case with its explanation.
type userLookup struct {
	method string // the Store method, as the Run table names its group
	// get is the method itself, keyOf the key it finds a stored user r by, and
	// missing returns a key that no stored user has.
	get      func(s users.Store, ctx context.Context, key string) (*users.UserRecord, error)
	keyOf    func(r *users.UserRecord) string
	missing  func() string
	notFound string // the NotFound rule's explanation
}

var (
	lookupByID = userLookup{
		method:   "GetUser",
		get:      users.Store.GetUser,
		keyOf:    func(r *users.UserRecord) string { return r.ID },
		missing:  func() string { return ulid.Make().String() },
		notFound: "GetUser must return ErrNotFound for a missing ID",
	}
	lookupByEmail = userLookup{
		method:   "GetUserByEmail",
		get:      users.Store.GetUserByEmail,
		keyOf:    func(r *users.UserRecord) string { return r.Email },
		missing:  func() string { return "nobody@example.com" },
		notFound: "GetUserByEmail must return ErrNotFound for an email nobody has",
	}
	lookupByUsername = userLookup{
		method:   "GetUserByUsername",
		get:      users.Store.GetUserByUsername,
		keyOf:    func(r *users.UserRecord) string { return r.Username },
		missing:  func() string { return "nobody" },
		notFound: "GetUserByUsername must return ErrNotFound for a username nobody has",
	}
)

// testNotFound checks that the lookup finds nobody by a key no stored user has.
func (l userLookup) testNotFound(t *testing.T, s users.Store, _ string) {
	addUser(t, s)
	_, err := l.get(s, t.Context(), l.missing())
	wantErr(t, err, users.ErrNotFound, l.notFound)
}

// testReturnsCopy checks that the lookup returns a copy of the stored user.
func (l userLookup) testReturnsCopy(t *testing.T, s users.Store, _ string) {
	testReturnsCopy(t, s, l.method, func(r *users.UserRecord) (*users.UserRecord, error) {
		return l.get(s, t.Context(), l.keyOf(r))
	})
}

func testGetUserByUsernameEmpty(t *testing.T, s users.Store, _ string) {
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

// ---- UpdateUser ----

func testUpdateUserSeesCurrent(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserWrites(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserFnError(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserNotFound(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserChangeEmail(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserChangeUsername(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserKeepOwn(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserDuplicateEmail(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserDuplicateUsername(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserRevokeSessions(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserRevokeTokens(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserRefusesIDChange(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserRefusesGenerationChange(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserFnArgIsCopy(t *testing.T, s users.Store, _ string) {
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

func testUpdateUserReturnsCopy(t *testing.T, s users.Store, _ string) {
	testReturnsCopy(t, s, "UpdateUser", func(r *users.UserRecord) (*users.UserRecord, error) {
		return s.UpdateUser(t.Context(), r.ID, func(*users.UserRecord) (users.Revoke, error) { return users.Revoke{}, nil })
	})
}

func testUpdateUserConcurrent(t *testing.T, s users.Store, _ string) {
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

func testDeleteUserDeletesEverything(t *testing.T, s users.Store, _ string) {
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

func testDeleteUserFreesKeys(t *testing.T, s users.Store, _ string) {
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

func testDeleteUserNotFound(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	wantErr(t, s.DeleteUser(t.Context(), ulid.Make().String()), users.ErrNotFound, "DeleteUser must return ErrNotFound for a missing user")
	if err := s.DeleteUser(t.Context(), r.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wantErr(t, s.DeleteUser(t.Context(), r.ID), users.ErrNotFound, "DeleteUser must return ErrNotFound for a user already deleted")
}
