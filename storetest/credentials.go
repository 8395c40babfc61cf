package storetest

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/userkit/users"
)

// Rules for credentials (users.CredentialStore): CreateCredential,
// GetCredential, ListCredentials, UpdateCredential, DeleteCredential and
// RemovePassword, and DeleteUser's part in them.

// RunCredentials checks the credentials' part of the Store contract
// (users.CredentialStore); see RunUsers and Run.
func RunCredentials(t *testing.T, newStore func(t *testing.T) users.Store) {
	runGroups(t, credentialGroups, newStore)
}

var credentialGroups = []storeGroup{{"Credentials", credentialRules}, identityGroup}

// credentialRules are the rules of this file, each with its explanation.
var credentialRules = []rule[users.Store]{
	{"RoundTrip", "CreateCredential must store every field exactly (an ID and Data of any bytes, a nil Data as an empty one), and GetCredential and ListCredentials must return them", testCredentialRoundTrip},
	{"CreateUserNotFound", "CreateCredential must return ErrNotFound, storing nothing, for a missing user", testCredentialUserNotFound},
	{"UniquePerKind", "CreateCredential must return ErrConflict for a (Kind, ID) that is taken, by another user or the same one, leaving the stored one as it was; the same ID under another Kind is another credential", testCredentialUniquePerKind},
	{"ConcurrentCreateOneWinner", "of 32 concurrent CreateCredential calls for one (Kind, ID), each for another user, exactly one must succeed and the others get ErrConflict; the stored credential is the winner's", testCredentialCreateRace},
	{"GetNotFound", "GetCredential must return ErrNotFound for a (Kind, ID) nobody has, comparing the ID exactly (another case, a prefix, another Kind)", testCredentialGetNotFound},
	{"ListOrder", "ListCredentials must return only the user's credentials, in ascending CreatedAt order, ties by Kind and then ID bytewise; a user without any, or no such user, gives an empty slice", testCredentialListOrder},
	{"UpdateRoundTrip", "UpdateCredential must call fn with the credential as last written, store what fn left and return it", testCredentialUpdate},
	{"UpdateFnErrorWritesNothing", "UpdateCredential must write nothing, no audit entry either, and return fn's error unchanged, when fn fails", testCredentialUpdateFnError},
	{"UpdateNotFound", "UpdateCredential must return ErrNotFound, without calling fn, for a (Kind, ID) nobody has", testCredentialUpdateNotFound},
	{"UpdateRefusesKeyChange", "UpdateCredential must return ErrKeyChanged and write nothing when fn changes Kind, ID or UserID", testCredentialUpdateKeyChange},
	{"UpdateCounterOneAdvance", "of 32 concurrent UpdateCredential calls whose fn advances Counter only from the value all of them read, exactly one must succeed and Counter must advance once", testCredentialCounterRace},
	{"DeleteDeletesAndFrees", "DeleteCredential must delete the credential, leave the user's others, and free its (Kind, ID) for a new credential", testCredentialDelete},
	{"DeleteNotFound", "DeleteCredential must return ErrNotFound, calling no guard and deleting nothing, for a (Kind, ID) nobody has or one of another user", testCredentialDeleteNotFound},
	{"DeleteGuard", "DeleteCredential must call guard with the user as stored and the user's other credentials in ListCredentials order, delete when guard returns nil, and write nothing (no audit entry either) and return guard's error unchanged when it refuses", testCredentialDeleteGuard},
	{"DeleteGuardLastCredentialRace", "of concurrent DeleteCredential calls for every credential of a user without a password, each guarded against leaving no credential, all but one must succeed", testCredentialDeleteLastRace},
	{"RemovePassword", "RemovePassword must clear PasswordHash and set UpdatedAt, changing nothing else, call guard with the user and all the user's credentials, write nothing and return guard's error unchanged when guard refuses, and return ErrNotFound for a missing user", testRemovePassword},
	{"RemovePasswordRacesDeleteCredential", "of a RemovePassword and a DeleteCredential of the user's only credential racing, each guarded against leaving the user no way to sign in, exactly one must succeed", testRemovePasswordRace},
	{"CreateRacesDeleteUser", "a CreateCredential racing DeleteUser of its user must either fail with ErrNotFound or have its credential deleted with the user: no credential outlives its user", testCredentialCreateRacesDeleteUser},
	{"DeleteUserDeletesCredentials", "DeleteUser must delete the user's credentials, and free their (Kind, ID), keeping other users' credentials", testCredentialDeleteUser},
	{"AuditWithChange", "every credential method that writes must write its audit entries in the same step, and none when it fails or is refused; UpdateCredential writes them as fn left them, leaving out those whose Type fn emptied", testCredentialAudit},
	{"Copies", "changing a credential after CreateCredential, or a value GetCredential, ListCredentials, UpdateCredential, fn or a guard was given, must not change what is stored", testCredentialCopies},
	{"CanceledContext", "every credential method called with a canceled context must return an error matching context.Canceled and change nothing", testCredentialCanceled},
}

// newCredential returns a passkey-like credential for the user, not yet
// stored: an ID and Data of any bytes, a name that is not ASCII.
func newCredential(userID string, kind users.CredentialKind) *users.CredentialRecord {
	return &users.CredentialRecord{
		Kind:       kind,
		ID:         string(append([]byte{0, 0xff, 0x80}, randomHash()...)),
		UserID:     userID,
		Name:       "work laptop ☃",
		CreatedAt:  base,
		LastUsedAt: base.Add(time.Minute),
		Counter:    7,
		Data:       append([]byte{0, 0xff}, randomHash()...),
	}
}

func addCredential(t testing.TB, s users.Store, c *users.CredentialRecord) *users.CredentialRecord {
	t.Helper()
	if err := s.CreateCredential(t.Context(), c); err != nil {
		t.Fatalf("setup: CreateCredential: %v", err)
	}
	return c
}

func normCredential(c *users.CredentialRecord) users.CredentialRecord {
	d := *c.Clone()
	d.CreatedAt, d.LastUsedAt = d.CreatedAt.UTC(), d.LastUsedAt.UTC()
	if len(d.Data) == 0 {
		d.Data = nil
	}
	return d
}

func sameCredential(a, b *users.CredentialRecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(normCredential(a), normCredential(b))
}

func showCredential(c *users.CredentialRecord) string {
	if c == nil {
		return "<nil>"
	}
	n := normCredential(c)
	return fmt.Sprintf("{%s %x user %s %q %v %v %d %x}", n.Kind, n.ID, n.UserID, n.Name, n.CreatedAt, n.LastUsedAt, n.Counter, n.Data)
}

func showCredentials(cs []*users.CredentialRecord) string {
	out := "["
	for i, c := range cs {
		if i > 0 {
			out += " "
		}
		out += showCredential(c)
	}
	return out + "]"
}

func sameCredentials(a, b []*users.CredentialRecord) bool {
	return slices.EqualFunc(a, b, sameCredential)
}

func wantCredential(t testing.TB, s users.Store, want *users.CredentialRecord, rule string) {
	t.Helper()
	got, err := s.GetCredential(t.Context(), want.Kind, want.ID)
	if err != nil {
		t.Errorf("%s: GetCredential(%s %x): %v", rule, want.Kind, want.ID, err)
		return
	}
	if !sameCredential(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", rule, showCredential(got), showCredential(want))
	}
}

func wantNoCredential(t testing.TB, s users.Store, kind users.CredentialKind, id, rule string) {
	t.Helper()
	if c, err := s.GetCredential(t.Context(), kind, id); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: GetCredential(%s %x) = %s, %v; want ErrNotFound", rule, kind, id, showCredential(c), err)
	}
}

func wantCredentials(t testing.TB, s users.Store, userID string, want []*users.CredentialRecord, rule string) {
	t.Helper()
	got, err := s.ListCredentials(t.Context(), userID)
	if err != nil {
		t.Errorf("%s: ListCredentials: %v", rule, err)
		return
	}
	if !sameCredentials(got, want) {
		t.Errorf("%s: ListCredentials:\n got %s\nwant %s", rule, showCredentials(got), showCredentials(want))
	}
}

// userWithoutPassword stores a user who can sign in only with credentials.
func userWithoutPassword(t testing.TB, s users.Store) *users.UserRecord {
	t.Helper()
	u := newUser()
	u.PasswordHash = ""
	mustCreateUser(t, s, u)
	return u
}

// lastWayIn is the guard the Manager gives DeleteCredential: refuse when the
// user would be left without a password and without credentials.
func lastWayIn(u *users.UserRecord, rest []*users.CredentialRecord) error {
	if u.PasswordHash == "" && len(rest) == 0 {
		return errSentinel
	}
	return nil
}

// credentialLeft is the guard the Manager gives RemovePassword: refuse when
// the user has no credential to sign in with instead.
func credentialLeft(_ *users.UserRecord, creds []*users.CredentialRecord) error {
	if len(creds) == 0 {
		return errSentinel
	}
	return nil
}

func testCredentialRoundTrip(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	wantCredential(t, s, c, rule)
	// Zero fields and a nil Data keep too, and the same user may hold many.
	bare := &users.CredentialRecord{Kind: users.CredentialOIDC, ID: "https://issuer.example\nsubject", UserID: u.ID}
	addCredential(t, s, bare)
	wantCredential(t, s, bare, rule)
	empty := &users.CredentialRecord{Kind: users.CredentialPasskey, ID: "x", UserID: u.ID, CreatedAt: base.Add(time.Hour), Data: []byte{}}
	addCredential(t, s, empty)
	wantCredential(t, s, empty, rule)
	// bare has the zero CreatedAt: it comes first.
	wantCredentials(t, s, u.ID, []*users.CredentialRecord{bare, c, empty}, rule)
}

func testCredentialUserNotFound(t *testing.T, s users.Store, rule string) {
	c := newCredential(newUser().ID, users.CredentialPasskey)
	wantErr(t, s.CreateCredential(t.Context(), c), users.ErrNotFound, rule)
	wantNoCredential(t, s, c.Kind, c.ID, rule)
	wantCredentials(t, s, c.UserID, nil, rule)
}

func testCredentialUniquePerKind(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	for _, owner := range []string{other.ID, u.ID} {
		dup := newCredential(owner, c.Kind)
		dup.ID, dup.Name, dup.Counter = c.ID, "taken", 99
		wantErr(t, s.CreateCredential(t.Context(), dup), users.ErrConflict, rule)
	}
	wantCredential(t, s, c, rule)
	wantCredentials(t, s, other.ID, nil, rule)
	wantCredentials(t, s, u.ID, []*users.CredentialRecord{c}, rule)

	sameID := newCredential(other.ID, users.CredentialOIDC)
	sameID.ID = c.ID
	if err := s.CreateCredential(t.Context(), sameID); err != nil {
		t.Fatalf("%s: CreateCredential of the same ID under another Kind: %v", rule, err)
	}
	wantCredential(t, s, sameID, rule)
	wantCredential(t, s, c, rule)
}

func testCredentialCreateRace(t *testing.T, s users.Store, rule string) {
	us := addUsers(t, s, 32, nil)
	rounds(20, 2*time.Second, func() {
		id := string(randomHash())
		errs := make([]error, len(us))
		start(len(us), func(i int) {
			c := newCredential(us[i].ID, users.CredentialPasskey)
			c.ID = id
			errs[i] = s.CreateCredential(t.Context(), c)
		})
		if !ExactlyOne(t, errs, users.ErrConflict, rule) {
			t.FailNow()
		}
		winner := us[slices.Index(errs, nil)].ID
		got, err := s.GetCredential(t.Context(), users.CredentialPasskey, id)
		if err != nil || got.UserID != winner {
			t.Fatalf("%s: GetCredential = %s, %v; want the credential of the winner %s", rule, showCredential(got), err, winner)
		}
	})
}

func testCredentialGetNotFound(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := newCredential(u.ID, users.CredentialOIDC)
	c.ID = "Issuer\nSubject"
	addCredential(t, s, c)
	wantNoCredential(t, s, users.CredentialOIDC, "issuer\nsubject", rule)
	wantNoCredential(t, s, users.CredentialOIDC, "Issuer\nSubjec", rule)
	wantNoCredential(t, s, users.CredentialOIDC, "Issuer\nSubject\x00", rule)
	wantNoCredential(t, s, users.CredentialPasskey, c.ID, rule)
	wantNoCredential(t, s, "", "", rule)
}

func testCredentialListOrder(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	var want []*users.CredentialRecord
	for i := range 3 {
		for _, kind := range []users.CredentialKind{users.CredentialOIDC, users.CredentialPasskey} {
			for _, id := range []string{"\x00b", "a", "a\x00", "\xffa"} {
				c := newCredential(u.ID, kind)
				c.ID, c.CreatedAt = fmt.Sprint(i)+id, base.Add(time.Duration(2-i)*time.Second)
				want = append(want, c)
			}
		}
	}
	for _, i := range mathrand.Perm(len(want)) {
		addCredential(t, s, want[i])
		addCredential(t, s, newCredential(other.ID, users.CredentialPasskey))
	}
	// Oldest first: the last i above; then oidc before passkey; then the IDs
	// bytewise, as written above.
	var order []*users.CredentialRecord
	for i := 2; i >= 0; i-- {
		order = append(order, want[i*8:i*8+8]...)
	}
	wantCredentials(t, s, u.ID, order, rule)
	wantCredentials(t, s, addUser(t, s).ID, nil, rule)
	wantCredentials(t, s, newUser().ID, nil, rule)
	if cs, err := s.ListCredentials(t.Context(), newUser().ID); err != nil || cs == nil {
		t.Errorf("%s: ListCredentials of no such user = %v, %v; want an empty slice", rule, cs, err)
	}
}

func testCredentialUpdate(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	want := c.Clone()
	want.Name, want.LastUsedAt, want.Counter, want.Data = "renamed", base.Add(time.Hour), 8, []byte{1, 0, 2}
	got, err := s.UpdateCredential(t.Context(), c.Kind, c.ID, func(w *users.CredentialRecord) error {
		if !sameCredential(w, c) {
			t.Errorf("%s: fn got %s, want %s", rule, showCredential(w), showCredential(c))
		}
		*w = *want.Clone()
		return nil
	})
	if err != nil {
		t.Fatalf("%s: UpdateCredential: %v", rule, err)
	}
	if !sameCredential(got, want) {
		t.Errorf("%s: UpdateCredential returned %s, want %s", rule, showCredential(got), showCredential(want))
	}
	wantCredential(t, s, want, rule)
	// The next call sees what this one wrote.
	_, err = s.UpdateCredential(t.Context(), c.Kind, c.ID, func(w *users.CredentialRecord) error {
		if !sameCredential(w, want) {
			t.Errorf("%s: the next fn got %s, want %s", rule, showCredential(w), showCredential(want))
		}
		w.Data = nil
		return nil
	})
	must(t, err)
	want.Data = nil
	wantCredential(t, s, want, rule)
}

func testCredentialUpdateFnError(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	_, err := s.UpdateCredential(t.Context(), c.Kind, c.ID, func(w *users.CredentialRecord) error {
		w.Name, w.Counter = "changed", 100
		return errSentinel
	}, entryFor(u, "credential.test"))
	if err != errSentinel {
		t.Errorf("%s: UpdateCredential = %v, want fn's error unchanged", rule, err)
	}
	wantCredential(t, s, c, rule)
	wantEntries(t, s, nil, rule)
}

func testCredentialUpdateNotFound(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	for _, k := range []struct {
		kind users.CredentialKind
		id   string
	}{{c.Kind, c.ID + "x"}, {users.CredentialOIDC, c.ID}} {
		_, err := s.UpdateCredential(t.Context(), k.kind, k.id, func(w *users.CredentialRecord) error {
			t.Errorf("%s: fn called for a missing credential", rule)
			return nil
		})
		wantErr(t, err, users.ErrNotFound, rule)
	}
	wantCredential(t, s, c, rule)
}

func testCredentialUpdateKeyChange(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	for _, change := range []func(w *users.CredentialRecord){
		func(w *users.CredentialRecord) { w.Kind = users.CredentialOIDC },
		func(w *users.CredentialRecord) { w.ID += "x" },
		func(w *users.CredentialRecord) { w.UserID = other.ID },
	} {
		_, err := s.UpdateCredential(t.Context(), c.Kind, c.ID, func(w *users.CredentialRecord) error {
			change(w)
			w.Name = "changed"
			return nil
		}, entryFor(u, "credential.test"))
		wantErr(t, err, users.ErrKeyChanged, rule)
	}
	wantCredential(t, s, c, rule)
	wantNoCredential(t, s, users.CredentialOIDC, c.ID, rule)
	wantNoCredential(t, s, c.Kind, c.ID+"x", rule)
	wantCredentials(t, s, other.ID, nil, rule)
	wantEntries(t, s, nil, rule)
}

func testCredentialCounterRace(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	want := c.Clone()
	rounds(20, 2*time.Second, func() {
		read, err := s.GetCredential(t.Context(), c.Kind, c.ID)
		must(t, err)
		errs := make([]error, 32)
		start(len(errs), func(i int) {
			_, errs[i] = s.UpdateCredential(t.Context(), c.Kind, c.ID, func(w *users.CredentialRecord) error {
				if w.Counter != read.Counter {
					return errSentinel
				}
				w.Counter = read.Counter + 1
				w.LastUsedAt = base.Add(time.Duration(i) * time.Second)
				return nil
			})
		})
		if !ExactlyOne(t, errs, errSentinel, rule) {
			t.FailNow()
		}
		want.Counter++
		want.LastUsedAt = base.Add(time.Duration(slices.Index(errs, nil)) * time.Second)
		wantCredential(t, s, want, rule)
	})
}

func testCredentialDelete(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	keep := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	if err := s.DeleteCredential(t.Context(), u.ID, c.Kind, c.ID, nil); err != nil {
		t.Fatalf("%s: DeleteCredential: %v", rule, err)
	}
	wantNoCredential(t, s, c.Kind, c.ID, rule)
	wantCredentials(t, s, u.ID, []*users.CredentialRecord{keep}, rule)
	wantErr(t, s.DeleteCredential(t.Context(), u.ID, c.Kind, c.ID, nil), users.ErrNotFound, rule+" (deleting it again)")
	again := newCredential(other.ID, c.Kind)
	again.ID = c.ID
	if err := s.CreateCredential(t.Context(), again); err != nil {
		t.Fatalf("%s: CreateCredential of a deleted credential's (Kind, ID): %v", rule, err)
	}
	wantCredential(t, s, again, rule)
}

func testCredentialDeleteNotFound(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	guard := func(*users.UserRecord, []*users.CredentialRecord) error {
		t.Errorf("%s: guard called", rule)
		return nil
	}
	wantErr(t, s.DeleteCredential(t.Context(), other.ID, c.Kind, c.ID, guard, entryFor(other, "credential.test")), users.ErrNotFound, rule+" (another user's)")
	wantErr(t, s.DeleteCredential(t.Context(), other.ID, c.Kind, c.ID, nil), users.ErrNotFound, rule+" (another user's, no guard)")
	wantErr(t, s.DeleteCredential(t.Context(), u.ID, users.CredentialOIDC, c.ID, guard), users.ErrNotFound, rule+" (another kind)")
	wantErr(t, s.DeleteCredential(t.Context(), newUser().ID, c.Kind, c.ID, guard), users.ErrNotFound, rule+" (no such user)")
	wantCredential(t, s, c, rule)
	wantEntries(t, s, nil, rule)
}

func testCredentialDeleteGuard(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	var cs []*users.CredentialRecord
	for i := range 3 {
		c := newCredential(u.ID, users.CredentialPasskey)
		c.CreatedAt = base.Add(time.Duration(i) * time.Second)
		cs = append(cs, addCredential(t, s, c))
	}
	calls := 0
	refuse := func(got *users.UserRecord, rest []*users.CredentialRecord) error {
		calls++
		if !sameUser(got, u) {
			t.Errorf("%s: guard got user %s, want %s", rule, showUser(got), showUser(u))
		}
		if want := []*users.CredentialRecord{cs[0], cs[2]}; !sameCredentials(rest, want) {
			t.Errorf("%s: guard got %s, want %s", rule, showCredentials(rest), showCredentials(want))
		}
		return errSentinel
	}
	err := s.DeleteCredential(t.Context(), u.ID, cs[1].Kind, cs[1].ID, refuse, entryFor(u, "credential.test"))
	if err != errSentinel {
		t.Errorf("%s: DeleteCredential = %v, want the guard's error unchanged", rule, err)
	}
	if calls == 0 {
		t.Errorf("%s: guard not called", rule)
	}
	wantCredentials(t, s, u.ID, cs, rule)
	wantEntries(t, s, nil, rule)

	allow := func(*users.UserRecord, []*users.CredentialRecord) error { return nil }
	must(t, s.DeleteCredential(t.Context(), u.ID, cs[1].Kind, cs[1].ID, allow))
	wantCredentials(t, s, u.ID, []*users.CredentialRecord{cs[0], cs[2]}, rule)
}

func testCredentialDeleteLastRace(t *testing.T, s users.Store, rule string) {
	rounds(20, 2*time.Second, func() {
		u := userWithoutPassword(t, s)
		cs := make([]*users.CredentialRecord, 8)
		for i := range cs {
			cs[i] = addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
		}
		errs := make([]error, len(cs))
		start(len(cs), func(i int) {
			errs[i] = s.DeleteCredential(t.Context(), u.ID, cs[i].Kind, cs[i].ID, lastWayIn)
		})
		refused := 0
		for i, err := range errs {
			switch {
			case err == errSentinel:
				refused++
			case err != nil:
				t.Errorf("%s: DeleteCredential %d: %v", rule, i, err)
			}
		}
		left, err := s.ListCredentials(t.Context(), u.ID)
		must(t, err)
		if refused != 1 || len(left) != 1 {
			t.Fatalf("%s: %d of %d concurrent deletes refused, %d credentials left; want 1 and 1", rule, refused, len(cs), len(left))
		}
	})
}

func testRemovePassword(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialOIDC))
	at := base.Add(time.Hour)
	calls := 0
	refuse := func(got *users.UserRecord, creds []*users.CredentialRecord) error {
		calls++
		if !sameUser(got, u) {
			t.Errorf("%s: guard got user %s, want %s", rule, showUser(got), showUser(u))
		}
		if want := []*users.CredentialRecord{c}; !sameCredentials(creds, want) {
			t.Errorf("%s: guard got %s, want %s", rule, showCredentials(creds), showCredentials(want))
		}
		return errSentinel
	}
	r, err := s.RemovePassword(t.Context(), u.ID, at, refuse, entryFor(u, "credential.test"))
	if err != errSentinel || r != nil {
		t.Errorf("%s: RemovePassword = %v, %v; want nil and the guard's error unchanged", rule, r, err)
	}
	if calls == 0 {
		t.Errorf("%s: guard not called", rule)
	}
	wantUser(t, s, u, rule)
	wantEntries(t, s, nil, rule)

	want := u.Clone()
	want.PasswordHash, want.UpdatedAt = "", at
	r, err = s.RemovePassword(t.Context(), u.ID, at, credentialLeft)
	if err != nil || !sameUser(r, want) {
		t.Errorf("%s: RemovePassword = %s, %v; want %s", rule, showUser(r), err, showUser(want))
	}
	wantUser(t, s, want, rule)
	// Without a guard it removes the password of a user with no credential.
	other := addUser(t, s)
	r, err = s.RemovePassword(t.Context(), other.ID, at, nil)
	if err != nil || r.PasswordHash != "" {
		t.Errorf("%s: RemovePassword without a guard = %s, %v", rule, showUser(r), err)
	}
	_, err = s.RemovePassword(t.Context(), newUser().ID, at, func(*users.UserRecord, []*users.CredentialRecord) error {
		t.Errorf("%s: guard called for a missing user", rule)
		return nil
	})
	wantErr(t, err, users.ErrNotFound, rule)
}

func testRemovePasswordRace(t *testing.T, s users.Store, rule string) {
	rounds(50, 2*time.Second, func() {
		u := addUser(t, s)
		c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
		errs := make([]error, 2)
		start(2, func(i int) {
			if i == 0 {
				_, errs[0] = s.RemovePassword(t.Context(), u.ID, base, credentialLeft)
			} else {
				errs[1] = s.DeleteCredential(t.Context(), u.ID, c.Kind, c.ID, lastWayIn)
			}
		})
		if !ExactlyOne(t, errs, errSentinel, rule) {
			t.FailNow()
		}
		r := mustGetUser(t, s, u.ID)
		left, err := s.ListCredentials(t.Context(), u.ID)
		must(t, err)
		if r.PasswordHash == "" && len(left) == 0 {
			t.Fatalf("%s: the user was left with no password and no credential", rule)
		}
	})
}

func testCredentialDeleteUser(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	c1 := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	c2 := addCredential(t, s, newCredential(u.ID, users.CredentialOIDC))
	keep := addCredential(t, s, newCredential(other.ID, users.CredentialPasskey))
	must(t, s.DeleteUser(t.Context(), u.ID))
	for _, c := range []*users.CredentialRecord{c1, c2} {
		wantNoCredential(t, s, c.Kind, c.ID, rule)
	}
	wantCredentials(t, s, u.ID, nil, rule)
	wantCredential(t, s, keep, rule)
	again := newCredential(other.ID, c1.Kind)
	again.ID = c1.ID
	if err := s.CreateCredential(t.Context(), again); err != nil {
		t.Errorf("%s: CreateCredential of a deleted user's (Kind, ID): %v", rule, err)
	}
}

func testCredentialAudit(t *testing.T, s users.Store, rule string) {
	ctx := t.Context()
	u := addUser(t, s)
	var want []*users.AuditEntry
	written := func(e *users.AuditEntry) *users.AuditEntry { want = append(want, e); return e }

	c := newCredential(u.ID, users.CredentialPasskey)
	must(t, s.CreateCredential(ctx, c, written(entryFor(u, "credential.created"))))
	wantErr(t, s.CreateCredential(ctx, c, entryFor(u, "credential.refused")), users.ErrConflict, rule)
	wantErr(t, s.CreateCredential(ctx, newCredential(newUser().ID, c.Kind), entryFor(u, "credential.refused")), users.ErrNotFound, rule)

	filled := entryFor(u, "")
	dropped := entryFor(u, "credential.dropped")
	_, err := s.UpdateCredential(ctx, c.Kind, c.ID, func(w *users.CredentialRecord) error {
		w.Counter++
		filled.Type = "credential.used"
		dropped.Type = ""
		return nil
	}, filled, dropped)
	must(t, err)
	want = append(want, filled)
	_, err = s.UpdateCredential(ctx, c.Kind, c.ID+"x", func(*users.CredentialRecord) error { return nil }, entryFor(u, "credential.refused"))
	wantErr(t, err, users.ErrNotFound, rule)

	other := addCredential(t, s, newCredential(u.ID, users.CredentialOIDC))
	wantErr(t, s.DeleteCredential(ctx, u.ID, c.Kind, c.ID, func(*users.UserRecord, []*users.CredentialRecord) error { return errSentinel },
		entryFor(u, "credential.refused")), errSentinel, rule)
	must(t, s.DeleteCredential(ctx, u.ID, c.Kind, c.ID, lastWayIn, written(entryFor(u, "credential.deleted"))))

	_, err = s.RemovePassword(ctx, u.ID, base, func(*users.UserRecord, []*users.CredentialRecord) error { return errSentinel },
		entryFor(u, "credential.refused"))
	wantErr(t, err, errSentinel, rule)
	_, err = s.RemovePassword(ctx, u.ID, base, credentialLeft, written(entryFor(u, "password.removed")))
	must(t, err)
	wantErr(t, s.DeleteCredential(ctx, u.ID, other.Kind, other.ID, lastWayIn, entryFor(u, "credential.refused")), errSentinel, rule)
	wantEntries(t, s, want, rule)
}

func testCredentialCopies(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := newCredential(u.ID, users.CredentialPasskey)
	kept := c.Clone()
	must(t, s.CreateCredential(t.Context(), c))
	second := addCredential(t, s, newCredential(u.ID, users.CredentialOIDC))
	scribble := func(c *users.CredentialRecord) {
		c.Name = "scribbled"
		c.Counter = -1
		if len(c.Data) > 0 {
			c.Data[0] ^= 0xff
		}
	}
	scribble(c)
	wantCredential(t, s, kept, rule+" (after changing CreateCredential's argument)")

	got, err := s.GetCredential(t.Context(), kept.Kind, kept.ID)
	must(t, err)
	scribble(got)
	list, err := s.ListCredentials(t.Context(), u.ID)
	must(t, err)
	for _, l := range list {
		scribble(l)
	}
	wantCredential(t, s, kept, rule+" (after changing what GetCredential and ListCredentials returned)")

	var fromFn *users.CredentialRecord
	up, err := s.UpdateCredential(t.Context(), kept.Kind, kept.ID, func(w *users.CredentialRecord) error {
		fromFn = w
		w.Counter = 8
		return nil
	})
	must(t, err)
	kept.Counter = 8
	scribble(fromFn)
	scribble(up)
	wantCredential(t, s, kept, rule+" (after changing fn's record and UpdateCredential's result)")

	_ = s.DeleteCredential(t.Context(), u.ID, second.Kind, second.ID, func(g *users.UserRecord, rest []*users.CredentialRecord) error {
		g.PasswordHash = "scribbled"
		for _, r := range rest {
			scribble(r)
		}
		return errSentinel
	})
	_, _ = s.RemovePassword(t.Context(), u.ID, base, func(g *users.UserRecord, rest []*users.CredentialRecord) error {
		g.PasswordHash = "scribbled"
		for _, r := range rest {
			scribble(r)
		}
		return errSentinel
	})
	wantCredential(t, s, kept, rule+" (after changing what a guard was given)")
	wantCredential(t, s, second, rule+" (after changing what a guard was given)")
	wantUser(t, s, u, rule+" (after changing what a guard was given)")
}

func testCredentialCanceled(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := addCredential(t, s, newCredential(u.ID, users.CredentialPasskey))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	allow := func(*users.UserRecord, []*users.CredentialRecord) error { return nil }
	for name, call := range map[string]func() error{
		"CreateCredential": func() error {
			return s.CreateCredential(ctx, newCredential(u.ID, users.CredentialOIDC), entryFor(u, "credential.test"))
		},
		"GetCredential":   func() error { _, err := s.GetCredential(ctx, c.Kind, c.ID); return err },
		"ListCredentials": func() error { _, err := s.ListCredentials(ctx, u.ID); return err },
		"UpdateCredential": func() error {
			_, err := s.UpdateCredential(ctx, c.Kind, c.ID, func(w *users.CredentialRecord) error { w.Counter++; return nil })
			return err
		},
		"DeleteCredential": func() error { return s.DeleteCredential(ctx, u.ID, c.Kind, c.ID, allow) },
		"RemovePassword":   func() error { _, err := s.RemovePassword(ctx, u.ID, base, allow); return err },
	} {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %s = %v, want an error matching context.Canceled", rule, name, err)
		}
	}
	wantCredentials(t, s, u.ID, []*users.CredentialRecord{c}, rule)
	wantUser(t, s, u, rule)
	wantEntries(t, s, nil, rule)
}

func testCredentialCreateRacesDeleteUser(t *testing.T, s users.Store, rule string) {
	rounds(50, 2*time.Second, func() {
		u := addUser(t, s)
		c := newCredential(u.ID, users.CredentialPasskey)
		var createErr, deleteErr error
		start(2, func(i int) {
			if i == 0 {
				createErr = s.CreateCredential(t.Context(), c)
			} else {
				deleteErr = s.DeleteUser(t.Context(), u.ID)
			}
		})
		must(t, deleteErr)
		if createErr != nil && !errors.Is(createErr, users.ErrNotFound) {
			t.Fatalf("%s: CreateCredential = %v, want nil or ErrNotFound", rule, createErr)
		}
		wantNoCredential(t, s, c.Kind, c.ID, rule)
	})
}
