package storetest

import (
	"errors"
	"testing"

	"github.com/userkit/users"
)

// The rules of the external ID, the key another system gave a user who moved
// in from it: unique like the email, found by GetUserByExternalID, kept by
// UpdateUser, freed by DeleteUser.
var externalIDRules = []rule[users.Store]{
	{"RoundTrip", "CreateUser must store ExternalID, and GetUserByExternalID must return the user with every field", testExternalIDRoundTrip},
	{"NotFound", "GetUserByExternalID must return ErrNotFound for an external ID nobody has", lookupByExternalID.testNotFound},
	{"EmptyNeverMatches", "GetUserByExternalID(\"\") must never match, not even a user without an external ID; any number of users may have none", testExternalIDEmpty},
	{"ReturnsCopy", "GetUserByExternalID must return a copy: changing it must not change the stored user", lookupByExternalID.testReturnsCopy},
	{"ComparesExactly", "CreateUser and GetUserByExternalID must compare external IDs exactly: another case is another key", testExternalIDComparesExactly},
	{"Duplicate", "CreateUser must refuse a second user with the same external ID (ErrDuplicateExternalID, which matches ErrConflict), storing nothing and leaving the record's email and username free", testExternalIDDuplicate},
	{"CheckedAfterEmailAndUsername", "CreateUser must check the external ID after the email and the username: a record whose email (or username) and external ID are both taken gets ErrDuplicateEmail (ErrDuplicateUsername)", testExternalIDOrder},
	{"ConcurrentSame", "of 32 concurrent CreateUser calls with one external ID exactly one must succeed, the others with ErrDuplicateExternalID, and GetUserByExternalID must return the winner", testExternalIDConcurrent},
	{"UpdateKeeps", "UpdateUser must keep the external ID when fn changes other fields, and return ErrKeyChanged, writing nothing, when fn changes it", testExternalIDUpdate},
	{"DeleteFrees", "DeleteUser must free the external ID: nobody is found by it, and a new user may take it", testExternalIDDelete},
	{"CreateUsersDuplicates", "CreateUsers must refuse a record whose external ID another user has, or an earlier record of the batch (ErrDuplicateExternalID), store the others, and a refused record must take no external ID from a later one", testExternalIDCreateUsers},
}

var lookupByExternalID = userLookup{
	method:   "GetUserByExternalID",
	get:      users.Store.GetUserByExternalID,
	keyOf:    func(r *users.UserRecord) string { return r.ExternalID },
	missing:  func() string { return "ext|nobody" },
	notFound: "GetUserByExternalID must return ErrNotFound for an external ID nobody has",
}

// wantExternalOwner checks that the user with the external ID is id, or that
// there is none for an empty id.
func wantExternalOwner(t testing.TB, s users.Store, external, id, rule string) {
	t.Helper()
	got, err := s.GetUserByExternalID(t.Context(), external)
	switch {
	case id == "" && !errors.Is(err, users.ErrNotFound):
		t.Errorf("%s: GetUserByExternalID(%q) = %s, %v; want ErrNotFound", rule, external, showUser(got), err)
	case id != "" && (err != nil || got.ID != id):
		t.Errorf("%s: GetUserByExternalID(%q) = %s, %v; want user %s", rule, external, showUser(got), err, id)
	}
}

func testExternalIDRoundTrip(t *testing.T, s users.Store, _ string) {
	r := newUser()
	r.ExternalID = "auth0|5f7c8ec7c33c6c004bbafe82"
	want := r.Clone()
	mustCreateUser(t, s, r)
	wantUser(t, s, want, "GetUser must return the ExternalID CreateUser stored")
	if got, err := s.GetUserByExternalID(t.Context(), want.ExternalID); err != nil || !sameUser(got, want) {
		t.Errorf("GetUserByExternalID must return the user with that external ID:\n got %s, %v\nwant %s", showUser(got), err, showUser(want))
	}
}

func testExternalIDEmpty(t *testing.T, s users.Store, rule string) {
	for range 3 {
		r := newUser()
		r.ExternalID = ""
		if err := s.CreateUser(t.Context(), r); err != nil {
			t.Fatalf("%s: CreateUser of a user without an external ID: %v", rule, err)
		}
	}
	wantExternalOwner(t, s, "", "", rule)
}

func testExternalIDComparesExactly(t *testing.T, s users.Store, rule string) {
	a, b := newUser(), newUser()
	a.ExternalID, b.ExternalID = "abc-1", "ABC-1"
	mustCreateUser(t, s, a)
	if err := s.CreateUser(t.Context(), b); err != nil {
		t.Fatalf("%s: %q after %q: %v", rule, b.ExternalID, a.ExternalID, err)
	}
	wantExternalOwner(t, s, "abc-1", a.ID, rule)
	wantExternalOwner(t, s, "ABC-1", b.ID, rule)
	wantExternalOwner(t, s, "Abc-1", "", rule)
}

func testExternalIDDuplicate(t *testing.T, s users.Store, rule string) {
	a := addUser(t, s)
	b := newUser()
	b.ExternalID = a.ExternalID
	err := s.CreateUser(t.Context(), b)
	wantErr(t, err, users.ErrDuplicateExternalID, rule)
	wantErr(t, err, users.ErrConflict, rule+" (ErrDuplicateExternalID matches ErrConflict)")
	wantNoUser(t, s, b.ID, rule)
	wantUser(t, s, a, rule+": the external ID's owner stays as it was")
	wantExternalOwner(t, s, a.ExternalID, a.ID, rule)
	c := newUser()
	c.Email, c.Username = b.Email, b.Username
	if err := s.CreateUser(t.Context(), c); err != nil {
		t.Errorf("%s: the refused record's email and username must stay free: %v", rule, err)
	}
}

func testExternalIDOrder(t *testing.T, s users.Store, rule string) {
	a, b := addUser(t, s), addUser(t, s)
	c := newUser()
	c.Email, c.ExternalID = a.Email, b.ExternalID
	wantErr(t, s.CreateUser(t.Context(), c), users.ErrDuplicateEmail, rule)
	d := newUser()
	d.Username, d.ExternalID = a.Username, b.ExternalID
	wantErr(t, s.CreateUser(t.Context(), d), users.ErrDuplicateUsername, rule)
	e := newUser()
	e.ID, e.ExternalID = a.ID, b.ExternalID
	wantErr(t, s.CreateUser(t.Context(), e), users.ErrDuplicateExternalID, rule+": a taken external ID comes before a taken ID")
}

func testExternalIDConcurrent(t *testing.T, s users.Store, rule string) {
	const n = 32
	const external = "legacy:42"
	errs := make([]error, n)
	ids := make([]string, n)
	start(n, func(i int) {
		r := newUser()
		r.ExternalID, ids[i] = external, r.ID
		errs[i] = s.CreateUser(t.Context(), r)
	})
	if !ExactlyOne(t, errs, users.ErrDuplicateExternalID, rule) {
		return
	}
	for i, err := range errs {
		if err == nil {
			wantExternalOwner(t, s, external, ids[i], rule)
			continue
		}
		wantNoUser(t, s, ids[i], rule+": a losing call stores nothing")
	}
}

func testExternalIDUpdate(t *testing.T, s users.Store, rule string) {
	a := addUser(t, s)
	got, err := s.UpdateUser(t.Context(), a.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Email, r.FirstName = "moved-"+r.Email, "Grace"
		return users.Revoke{}, nil
	})
	if err != nil || got.ExternalID != a.ExternalID {
		t.Fatalf("%s: UpdateUser of other fields = %s, %v; want the external ID %q kept", rule, showUser(got), err, a.ExternalID)
	}
	wantExternalOwner(t, s, a.ExternalID, a.ID, rule)
	before := mustGetUser(t, s, a.ID)
	for _, to := range []string{"ext|other", ""} {
		_, err = s.UpdateUser(t.Context(), a.ID, func(r *users.UserRecord) (users.Revoke, error) {
			r.ExternalID, r.FirstName = to, "Changed"
			return users.Revoke{}, nil
		})
		wantErr(t, err, users.ErrKeyChanged, rule+": fn changed the external ID to "+to)
		wantUser(t, s, before, rule+": a refused change writes nothing")
		wantExternalOwner(t, s, a.ExternalID, a.ID, rule)
		if to != "" {
			wantExternalOwner(t, s, to, "", rule)
		}
	}
}

func testExternalIDDelete(t *testing.T, s users.Store, rule string) {
	a := addUser(t, s)
	must(t, s.DeleteUser(t.Context(), a.ID))
	wantExternalOwner(t, s, a.ExternalID, "", rule)
	b := newUser()
	b.ExternalID = a.ExternalID
	if err := s.CreateUser(t.Context(), b); err != nil {
		t.Fatalf("%s: CreateUser with a deleted user's external ID: %v", rule, err)
	}
	wantExternalOwner(t, s, a.ExternalID, b.ID, rule)
}

func testExternalIDCreateUsers(t *testing.T, s users.Store, rule string) {
	old := addUser(t, s)
	rs := make([]*users.UserRecord, 5)
	for i := range rs {
		rs[i] = newUser()
	}
	rs[1].ExternalID = old.ExternalID   // taken before the batch
	rs[3].ExternalID = rs[2].ExternalID // taken by an earlier record
	rs[4].Email = old.Email             // refused for its email: its external ID stays free
	free := rs[4].ExternalID
	errs, err := s.CreateUsers(t.Context(), rs)
	if err != nil || len(errs) != len(rs) {
		t.Fatalf("%s: CreateUsers = %v, %v", rule, errs, err)
	}
	for i, want := range []error{nil, users.ErrDuplicateExternalID, nil, users.ErrDuplicateExternalID, users.ErrDuplicateEmail} {
		if want == nil {
			if errs[i] != nil {
				t.Errorf("%s: record %d: %v, want it stored", rule, i, errs[i])
			}
			continue
		}
		wantErr(t, errs[i], want, rule)
		wantNoUser(t, s, rs[i].ID, rule+": a refused record stores nothing")
	}
	wantExternalOwner(t, s, old.ExternalID, old.ID, rule)
	wantExternalOwner(t, s, rs[2].ExternalID, rs[2].ID, rule)
	wantExternalOwner(t, s, free, "", rule)
	late := newUser()
	late.ExternalID = free
	if err := s.CreateUser(t.Context(), late); err != nil {
		t.Errorf("%s: the external ID of a record refused for its email must stay free: %v", rule, err)
	}
}
