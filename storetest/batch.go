package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/userkit/users"
)

// Rules for the batch methods: CreateUsers, GetUsers and GetUsersByEmail.

// batchRules are the rules of this file, each with its explanation.
var batchRules = []rule[users.Store]{
	{"CreateUsersStoresEach", "CreateUsers must store every record of a batch as CreateUser would, and return a nil error for each", testCreateUsersStores},
	{"CreateUsersPartialFailures", "CreateUsers must refuse, with ErrDuplicateEmail, ErrDuplicateUsername (email checked first) or ErrConflict in the record's place, a record whose key another user or an earlier record of the batch has, store none of the refused records, and store all the others", testCreateUsersPartial},
	{"CreateUsersEmpty", "CreateUsers with an empty batch must store nothing and return no error", testCreateUsersEmpty},
	{"CreateUsersCopiesInput", "CreateUsers must store copies: changing a record after the call must not change what is stored", testCreateUsersCopies},
	{"CreateUsersRacesCreateUser", "of a CreateUser and a CreateUsers racing for one email, exactly one must win; the loser gets ErrDuplicateEmail and the batch's other records are stored", testCreateUsersRace},
	{"GetUsersInInputOrder", "GetUsers must return, in the order given, the user with each ID or nil for a missing one, repeated IDs included, and never an error for a missing user", testGetUsers},
	{"GetUsersByEmailInInputOrder", "GetUsersByEmail must return, in the order given, the user with each exact email or nil for a missing one (an empty email matches nobody)", testGetUsersByEmail},
	{"GetUsersReturnsCopies", "GetUsers and GetUsersByEmail must return copies: changing one must not change the store", testGetUsersCopies},
}

func testCreateUsersStores(t *testing.T, s users.Store, rule string) {
	rs := []*users.UserRecord{newUser(), newUser(), newUser()}
	rs[1].Username = ""
	rs[2].Role, rs[2].AccountID = users.RoleAdmin, "acme"
	errs, err := s.CreateUsers(t.Context(), rs)
	if err != nil {
		t.Fatalf("%s: CreateUsers: %v", rule, err)
	}
	if len(errs) != len(rs) {
		t.Fatalf("%s: CreateUsers returned %d errors for %d records", rule, len(errs), len(rs))
	}
	for i, r := range rs {
		if errs[i] != nil {
			t.Errorf("%s: record %d: %v", rule, i, errs[i])
		}
		wantUser(t, s, r, rule)
		wantEmailOwner(t, s, r.Email, r.ID, rule)
	}
	if n, err := s.CountUsers(t.Context(), users.Match{AccountID: "acme"}); err != nil || n != 1 {
		t.Errorf("%s: CountUsers(account acme) = %d, %v; want 1", rule, n, err)
	}
}

func testCreateUsersPartial(t *testing.T, s users.Store, rule string) {
	old := addUser(t, s)
	ok1, ok2 := newUser(), newUser()
	dupEmail := newUser()
	dupEmail.Email = old.Email
	dupUsername := newUser()
	dupUsername.Username = old.Username
	dupBoth := newUser() // email and username taken, by different users
	dupBoth.Email, dupBoth.Username = ok1.Email, old.Username
	inBatchEmail := newUser()
	inBatchEmail.Email = ok1.Email
	inBatchUsername := newUser()
	inBatchUsername.Username = ok2.Username
	dupID := newUser()
	dupID.ID = old.ID
	inBatchID := newUser() // the newest ID of the batch, twice
	inBatchID.ID = ok2.ID
	batch := []*users.UserRecord{ok1, dupEmail, dupUsername, dupBoth, ok2, inBatchEmail, dupID, inBatchUsername, inBatchID}
	want := []error{nil, users.ErrDuplicateEmail, users.ErrDuplicateUsername, users.ErrDuplicateEmail, nil, users.ErrDuplicateEmail, users.ErrConflict, users.ErrDuplicateUsername, users.ErrConflict}
	errs, err := s.CreateUsers(t.Context(), batch)
	if err != nil {
		t.Fatalf("%s: CreateUsers: %v", rule, err)
	}
	if len(errs) != len(batch) {
		t.Fatalf("%s: CreateUsers returned %d errors for %d records", rule, len(errs), len(batch))
	}
	for i := range batch {
		if want[i] == nil && errs[i] != nil || want[i] != nil && !errors.Is(errs[i], want[i]) {
			t.Errorf("%s: record %d: got %v, want %v", rule, i, errs[i], want[i])
		}
	}
	wantUser(t, s, ok1, rule)
	wantUser(t, s, ok2, rule)
	wantUser(t, s, old, rule)
	for _, r := range []*users.UserRecord{dupEmail, dupUsername, dupBoth, inBatchEmail, inBatchUsername} {
		wantNoUser(t, s, r.ID, rule)
	}
	wantEmailOwner(t, s, ok1.Email, ok1.ID, rule)
	wantEmailOwner(t, s, dupUsername.Email, "", rule)
	wantEmailOwner(t, s, dupID.Email, "", rule)
	wantEmailOwner(t, s, inBatchID.Email, "", rule)
	wantUsernameOwner(t, s, ok2.Username, ok2.ID, rule)
	if n, err := s.CountUsers(t.Context(), users.Match{}); err != nil || n != 3 {
		t.Errorf("%s: CountUsers = %d, %v; want 3 (the old user and the two good records)", rule, n, err)
	}
}

func testCreateUsersEmpty(t *testing.T, s users.Store, rule string) {
	errs, err := s.CreateUsers(t.Context(), nil)
	if err != nil || len(errs) != 0 {
		t.Errorf("%s: CreateUsers(nil) = %v, %v", rule, errs, err)
	}
	if n, err := s.CountUsers(t.Context(), users.Match{}); err != nil || n != 0 {
		t.Errorf("%s: CountUsers = %d, %v; want 0", rule, n, err)
	}
}

func testCreateUsersCopies(t *testing.T, s users.Store, rule string) {
	r := newUser()
	want := r.Clone()
	if _, err := s.CreateUsers(t.Context(), []*users.UserRecord{r}); err != nil {
		t.Fatal(err)
	}
	r.FirstName = "Changed"
	r.Preferences["lang"] = "changed"
	wantUser(t, s, want, rule)
}

func testCreateUsersRace(t *testing.T, s users.Store, rule string) {
	rounds(50, 2*time.Second, func() {
		single, contested, other := newUser(), newUser(), newUser()
		contested.Email = single.Email
		errs := make([]error, 2)
		var batchErrs []error
		start(2, func(i int) {
			if i == 0 {
				errs[0] = s.CreateUser(t.Context(), single)
				return
			}
			var err error
			batchErrs, err = s.CreateUsers(t.Context(), []*users.UserRecord{other, contested})
			if err != nil {
				errs[1] = err
				return
			}
			errs[1] = batchErrs[1]
			if batchErrs[0] != nil {
				t.Errorf("%s: the batch's uncontested record was refused: %v", rule, batchErrs[0])
			}
		})
		if !ExactlyOne(t, errs, users.ErrDuplicateEmail, rule) {
			return
		}
		winner := single.ID
		if errs[1] == nil {
			winner = contested.ID
		}
		wantEmailOwner(t, s, single.Email, winner, rule)
		wantUser(t, s, other, rule)
	})
}

func testGetUsers(t *testing.T, s users.Store, rule string) {
	a, b := addUser(t, s), addUser(t, s)
	missing := newUser().ID
	got, err := s.GetUsers(t.Context(), []string{b.ID, missing, a.ID, b.ID, ""})
	if err != nil {
		t.Fatalf("%s: GetUsers: %v", rule, err)
	}
	want := []*users.UserRecord{b, nil, a, b, nil}
	wantRecords(t, got, want, rule)
	if got, err := s.GetUsers(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("%s: GetUsers(nil) = %v, %v; want no users and no error", rule, got, err)
	}
}

func testGetUsersByEmail(t *testing.T, s users.Store, rule string) {
	a, b := addUser(t, s), addUser(t, s)
	got, err := s.GetUsersByEmail(t.Context(), []string{a.Email, "nobody@example.com", "", b.Email, a.Email})
	if err != nil {
		t.Fatalf("%s: GetUsersByEmail: %v", rule, err)
	}
	wantRecords(t, got, []*users.UserRecord{a, nil, nil, b, a}, rule)
}

func testGetUsersCopies(t *testing.T, s users.Store, rule string) {
	a := addUser(t, s)
	for _, get := range []func() ([]*users.UserRecord, error){
		func() ([]*users.UserRecord, error) { return s.GetUsers(t.Context(), []string{a.ID}) },
		func() ([]*users.UserRecord, error) { return s.GetUsersByEmail(t.Context(), []string{a.Email}) },
	} {
		got, err := get()
		if err != nil || len(got) != 1 || got[0] == nil {
			t.Fatalf("%s: got %v, %v", rule, got, err)
		}
		got[0].FirstName = "Changed"
		got[0].Preferences["lang"] = "changed"
		wantUser(t, s, a, rule)
	}
}

// wantRecords reports a broken rule unless got and want hold the same users (or
// nils) in the same order.
func wantRecords(t *testing.T, got, want []*users.UserRecord, rule string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = sameUser(got[i], want[i])
	}
	if !ok {
		t.Errorf("%s:\n got %d entries:", rule, len(got))
		for _, r := range got {
			t.Errorf("  %s", showUser(r))
		}
		t.Errorf(" want %d entries:", len(want))
		for _, r := range want {
			t.Errorf("  %s", showUser(r))
		}
	}
}
