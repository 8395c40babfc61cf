package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/userkit/users"
)

// ---- Provider flows, and a user created with its credential ----

// RunFlows checks the provider flows' part of the Store contract (CreateFlow,
// ConsumeFlow, and DeleteExpired for flows); see RunUsers and Run.
func RunFlows(t *testing.T, newStore func(t *testing.T) users.Store) {
	runGroups(t, flowGroups, newStore)
}

var flowGroups = []storeGroup{{"Flows", []rule[users.Store]{
	{"RoundTrip", "CreateFlow must store every field exactly (Data of any bytes, nil as empty), and ConsumeFlow must return it once: a second ConsumeFlow gets ErrNotFound", testFlowRoundTrip},
	{"HashTaken", "CreateFlow must return ErrConflict for a taken hash, leaving the stored flow as it was", testFlowConflict},
	{"ConsumeNotFound", "ConsumeFlow must return ErrNotFound for a hash nobody has, comparing it exactly", testFlowNotFound},
	{"ConsumeWhateverExpiry", "ConsumeFlow must return a flow whatever its ExpiresAt: expiry is the Manager's to judge", testFlowConsumeExpired},
	{"ConcurrentConsumeOneWinner", "of 32 concurrent ConsumeFlow calls for one flow exactly one must get it and the others ErrNotFound", testFlowConsumeRace},
	{"DeleteExpired", "DeleteExpired must delete and count the flows whose ExpiresAt is at or before now and keep the later ones", testFlowDeleteExpired},
	{"Copies", "changing a flow after CreateFlow must not change what is stored", testFlowCopies},
	{"CanceledContext", "CreateFlow and ConsumeFlow called with a canceled context must return an error matching context.Canceled and change nothing", testFlowCanceled},
}}}

// identityGroup is the rules of CreateUserWithCredential, part of the
// credential domain (RunCredentials).
var identityGroup = storeGroup{"CreateUserWithCredential", []rule[users.Store]{
	{"RoundTrip", "CreateUserWithCredential must store the user and its credential exactly, as CreateUser and CreateCredential would, with its audit entries", testUserCredRoundTrip},
	{"CredentialTaken", "CreateUserWithCredential must return ErrConflict for a taken (Kind, ID), checked before the email, and store neither the user nor its audit entries", testUserCredTaken},
	{"EmailTaken", "CreateUserWithCredential must return ErrDuplicateEmail for a taken email and store neither the user nor the credential", testUserCredEmailTaken},
	{"ConcurrentOneUser", "of 32 concurrent CreateUserWithCredential calls with one (Kind, ID), each for another new user, exactly one must succeed and the others get ErrConflict; only the winner's user exists, and the credential is its", testUserCredRace},
}}

func newFlow() *users.FlowRecord {
	return &users.FlowRecord{Hash: randomHash(), Data: append([]byte{0, 0xff, '\n'}, randomHash()...),
		CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute)}
}

func showFlow(f *users.FlowRecord) string {
	if f == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{Hash:%x Data:%x CreatedAt:%v ExpiresAt:%v}", f.Hash, f.Data, f.CreatedAt, f.ExpiresAt)
}

func sameFlow(a, b *users.FlowRecord) bool {
	return a != nil && b != nil && bytes.Equal(a.Hash, b.Hash) && bytes.Equal(a.Data, b.Data) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func testFlowRoundTrip(t *testing.T, s users.Store, rule string) {
	for _, data := range [][]byte{newFlow().Data, nil} {
		f := newFlow()
		f.Data = data
		must(t, s.CreateFlow(t.Context(), f))
		got, err := s.ConsumeFlow(t.Context(), f.Hash)
		if err != nil || !sameFlow(got, f) {
			t.Fatalf("%s: ConsumeFlow = %s, %v; want %s", rule, showFlow(got), err, showFlow(f))
		}
		if _, err := s.ConsumeFlow(t.Context(), f.Hash); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("%s: second ConsumeFlow = %v, want ErrNotFound", rule, err)
		}
	}
}

func testFlowConflict(t *testing.T, s users.Store, rule string) {
	f := newFlow()
	must(t, s.CreateFlow(t.Context(), f))
	g := newFlow()
	g.Hash = f.Hash
	if err := s.CreateFlow(t.Context(), g); !errors.Is(err, users.ErrConflict) {
		t.Fatalf("%s: CreateFlow of a taken hash = %v, want ErrConflict", rule, err)
	}
	if got, err := s.ConsumeFlow(t.Context(), f.Hash); err != nil || !sameFlow(got, f) {
		t.Fatalf("%s: ConsumeFlow = %s, %v; want the first flow %s", rule, showFlow(got), err, showFlow(f))
	}
}

func testFlowNotFound(t *testing.T, s users.Store, rule string) {
	f := newFlow()
	must(t, s.CreateFlow(t.Context(), f))
	for _, h := range [][]byte{randomHash(), f.Hash[:31], append(slices.Clone(f.Hash), 0)} {
		if got, err := s.ConsumeFlow(t.Context(), h); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("%s: ConsumeFlow(%x) = %s, %v; want ErrNotFound", rule, h, showFlow(got), err)
		}
	}
	if _, err := s.ConsumeFlow(t.Context(), f.Hash); err != nil {
		t.Fatalf("%s: the flow was deleted by a ConsumeFlow of another hash: %v", rule, err)
	}
}

func testFlowConsumeExpired(t *testing.T, s users.Store, rule string) {
	f := newFlow()
	f.ExpiresAt = base.Add(-time.Hour)
	must(t, s.CreateFlow(t.Context(), f))
	if got, err := s.ConsumeFlow(t.Context(), f.Hash); err != nil || !sameFlow(got, f) {
		t.Fatalf("%s: ConsumeFlow of an expired flow = %s, %v; want it", rule, showFlow(got), err)
	}
}

func testFlowConsumeRace(t *testing.T, s users.Store, rule string) {
	rounds(20, 2*time.Second, func() {
		f := newFlow()
		must(t, s.CreateFlow(t.Context(), f))
		errs := make([]error, 32)
		start(len(errs), func(i int) { _, errs[i] = s.ConsumeFlow(t.Context(), f.Hash) })
		if !ExactlyOne(t, errs, users.ErrNotFound, rule) {
			t.FailNow()
		}
	})
}

func testFlowDeleteExpired(t *testing.T, s users.Store, rule string) {
	gone, kept := newFlow(), newFlow()
	gone.ExpiresAt, kept.ExpiresAt = base, base.Add(time.Nanosecond)
	must(t, s.CreateFlow(t.Context(), gone))
	must(t, s.CreateFlow(t.Context(), kept))
	n, err := s.DeleteExpired(t.Context(), base)
	if err != nil || n != 1 {
		t.Fatalf("%s: DeleteExpired = %d, %v; want 1", rule, n, err)
	}
	if _, err := s.ConsumeFlow(t.Context(), gone.Hash); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: the expired flow is still there: %v", rule, err)
	}
	if _, err := s.ConsumeFlow(t.Context(), kept.Hash); err != nil {
		t.Errorf("%s: the later flow was deleted: %v", rule, err)
	}
}

func testFlowCopies(t *testing.T, s users.Store, rule string) {
	f := newFlow()
	want := f.Clone()
	must(t, s.CreateFlow(t.Context(), f))
	f.Data[0]++
	f.ExpiresAt = f.ExpiresAt.Add(time.Hour)
	if got, err := s.ConsumeFlow(t.Context(), want.Hash); err != nil || !sameFlow(got, want) {
		t.Fatalf("%s: ConsumeFlow = %s, %v; want %s as created", rule, showFlow(got), err, showFlow(want))
	}
}

func testFlowCanceled(t *testing.T, s users.Store, rule string) {
	f := newFlow()
	must(t, s.CreateFlow(t.Context(), f))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateFlow(ctx, newFlow()); !errors.Is(err, context.Canceled) {
		t.Errorf("%s: CreateFlow = %v, want context.Canceled", rule, err)
	}
	if _, err := s.ConsumeFlow(ctx, f.Hash); !errors.Is(err, context.Canceled) {
		t.Errorf("%s: ConsumeFlow = %v, want context.Canceled", rule, err)
	}
	if _, err := s.ConsumeFlow(t.Context(), f.Hash); err != nil {
		t.Errorf("%s: a canceled ConsumeFlow deleted the flow: %v", rule, err)
	}
}

// newUserCred returns a new user and an OpenID Connect identity of it.
func newUserCred() (*users.UserRecord, *users.CredentialRecord) {
	u := newUser()
	c := newCredential(u.ID, users.CredentialOIDC)
	return u, c
}

func testUserCredRoundTrip(t *testing.T, s users.Store, rule string) {
	u, c := newUserCred()
	e := entryFor(u, "user.created")
	must(t, s.CreateUserWithCredential(t.Context(), u, c, e))
	got, err := s.GetUser(t.Context(), u.ID)
	if err != nil || got.Email != u.Email || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("%s: GetUser = %+v, %v; want the new user", rule, got, err)
	}
	gc, err := s.GetCredential(t.Context(), c.Kind, c.ID)
	if err != nil || !sameCredential(gc, c) {
		t.Fatalf("%s: GetCredential = %s, %v; want %s", rule, showCredential(gc), err, showCredential(c))
	}
	wantEntries(t, s, []*users.AuditEntry{e}, rule)
}

func testUserCredTaken(t *testing.T, s users.Store, rule string) {
	owner := addUser(t, s)
	held := addCredential(t, s, newCredential(owner.ID, users.CredentialOIDC))
	u, c := newUserCred()
	u.Email = owner.Email // taken too: the credential is checked first
	c.ID = held.ID
	if err := s.CreateUserWithCredential(t.Context(), u, c, entryFor(u, "user.created")); !errors.Is(err, users.ErrConflict) {
		t.Fatalf("%s: CreateUserWithCredential = %v, want ErrConflict", rule, err)
	}
	if _, err := s.GetUser(t.Context(), u.ID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: the user was stored: %v", rule, err)
	}
	wantEntries(t, s, nil, rule)
}

func testUserCredEmailTaken(t *testing.T, s users.Store, rule string) {
	owner := addUser(t, s)
	u, c := newUserCred()
	u.Email = owner.Email
	if err := s.CreateUserWithCredential(t.Context(), u, c); !errors.Is(err, users.ErrDuplicateEmail) {
		t.Fatalf("%s: CreateUserWithCredential = %v, want ErrDuplicateEmail", rule, err)
	}
	wantNoCredential(t, s, c.Kind, c.ID, rule)
	if _, err := s.GetUser(t.Context(), u.ID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: the user was stored: %v", rule, err)
	}
}

func testUserCredRace(t *testing.T, s users.Store, rule string) {
	rounds(10, 2*time.Second, func() {
		id := string(randomHash())
		us := make([]*users.UserRecord, 32)
		cs := make([]*users.CredentialRecord, len(us))
		for i := range us {
			us[i], cs[i] = newUserCred()
			cs[i].ID = id
		}
		errs := make([]error, len(us))
		start(len(us), func(i int) { errs[i] = s.CreateUserWithCredential(t.Context(), us[i], cs[i]) })
		if !ExactlyOne(t, errs, users.ErrConflict, rule) {
			t.FailNow()
		}
		winner := us[slices.Index(errs, nil)].ID
		for i, u := range us {
			_, err := s.GetUser(t.Context(), u.ID)
			if u.ID == winner && err != nil {
				t.Fatalf("%s: the winner's user is missing: %v", rule, err)
			}
			if u.ID != winner && !errors.Is(err, users.ErrNotFound) {
				t.Fatalf("%s: the user of losing call %d exists (%v): a user without its credential", rule, i, err)
			}
		}
		got, err := s.GetCredential(t.Context(), users.CredentialOIDC, id)
		if err != nil || got.UserID != winner {
			t.Fatalf("%s: GetCredential = %s, %v; want the winner's %s", rule, showCredential(got), err, winner)
		}
	})
}
