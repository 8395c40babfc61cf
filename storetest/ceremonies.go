package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/userkit/users"
)

// Rules for ceremonies (users.CeremonyStore): CreateCeremony and
// ConsumeCeremony, and DeleteExpired's part in them.

// RunCeremonies checks the ceremonies' part of the Store contract
// (users.CeremonyStore); see RunUsers and Run.
func RunCeremonies(t *testing.T, newStore func(t *testing.T) users.Store) {
	runGroups(t, ceremonyGroups, newStore)
}

var ceremonyGroups = []storeGroup{{"Ceremonies", ceremonyRules}}

// ceremonyRules are the rules of this file, each with its explanation.
var ceremonyRules = []rule[users.Store]{
	{"RoundTrip", "ConsumeCeremony must return every field CreateCeremony stored, for a ceremony with a user and for one with none, and a second ConsumeCeremony of it must return ErrNotFound", testCeremonyRoundTrip},
	{"KindMismatch", "ConsumeCeremony must return ErrNotFound, deleting nothing, for a hash nobody has or a ceremony of another kind", testCeremonyKindMismatch},
	{"HashTaken", "CreateCeremony must return ErrConflict for a taken hash, whatever the kind, leaving the stored ceremony as it was", testCeremonyHashTaken},
	{"ConsumeOneWinner", "of 32 concurrent ConsumeCeremony calls for one ceremony exactly one must get it and the others ErrNotFound", testCeremonyConsumeRace},
	{"ConsumeWhateverExpiry", "ConsumeCeremony must return a ceremony whatever its ExpiresAt: expiry is the Manager's to decide", testCeremonyExpired},
	{"DeleteExpired", "DeleteExpired must delete, and count, the ceremonies expiring at or before now and keep the later ones, and free their hashes", testCeremonyDeleteExpired},
	{"AuditWithChange", "CreateCeremony and ConsumeCeremony must write their audit entries in the same step, and none when they refuse", testCeremonyAudit},
	{"Copies", "changing a ceremony after CreateCeremony must not change what is stored", testCeremonyCopies},
	{"CanceledContext", "CreateCeremony and ConsumeCeremony called with a canceled context must return an error matching context.Canceled and change nothing", testCeremonyCanceled},
}

// newCeremony returns a ceremony of the user (or of none, for ""), not yet
// stored, expiring five minutes after base.
func newCeremony(userID string, kind users.CeremonyKind) *users.CeremonyRecord {
	return &users.CeremonyRecord{Hash: randomHash(), Kind: kind, UserID: userID,
		CreatedAt: base, ExpiresAt: base.Add(5 * time.Minute)}
}

func normCeremony(c *users.CeremonyRecord) users.CeremonyRecord {
	d := *c.Clone()
	d.CreatedAt, d.ExpiresAt = d.CreatedAt.UTC(), d.ExpiresAt.UTC()
	return d
}

// wantConsumed consumes want and checks it comes back exactly.
func wantConsumed(t testing.TB, s users.Store, want *users.CeremonyRecord, rule string) {
	t.Helper()
	got, err := s.ConsumeCeremony(t.Context(), want.Hash, want.Kind)
	if err != nil {
		t.Errorf("%s: ConsumeCeremony: %v", rule, err)
		return
	}
	if !reflect.DeepEqual(normCeremony(got), normCeremony(want)) {
		t.Errorf("%s: ConsumeCeremony = %+v, want %+v", rule, got, want)
	}
}

// wantNoCeremony checks that no ceremony of c's hash is left, of any kind.
func wantNoCeremony(t testing.TB, s users.Store, c *users.CeremonyRecord, rule string) {
	t.Helper()
	for _, k := range []users.CeremonyKind{users.CeremonyPasskeyRegistration, users.CeremonyPasskeyLogin,
		users.CeremonyPasskeyFactor} {
		if got, err := s.ConsumeCeremony(t.Context(), c.Hash, k); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("%s: ConsumeCeremony(%s) = %+v, %v; want ErrNotFound", rule, k, got, err)
		}
	}
}

func testCeremonyRoundTrip(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	withUser := newCeremony(u.ID, users.CeremonyPasskeyRegistration)
	withUser.CreatedAt = base.Add(123456789 * time.Nanosecond)
	anonymous := newCeremony("", users.CeremonyPasskeyLogin)
	for _, c := range []*users.CeremonyRecord{withUser, anonymous} {
		must(t, s.CreateCeremony(t.Context(), c))
	}
	for _, c := range []*users.CeremonyRecord{anonymous, withUser} {
		wantConsumed(t, s, c, rule)
		wantNoCeremony(t, s, c, rule+" (consumed once)")
	}
}

func testCeremonyKindMismatch(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := newCeremony(u.ID, users.CeremonyPasskeyFactor)
	must(t, s.CreateCeremony(t.Context(), c))
	for _, k := range []users.CeremonyKind{users.CeremonyPasskeyLogin, users.CeremonyPasskeyRegistration, "passkey_factor "} {
		if got, err := s.ConsumeCeremony(t.Context(), c.Hash, k); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("%s: ConsumeCeremony as %q = %+v, %v; want ErrNotFound", rule, k, got, err)
		}
	}
	if got, err := s.ConsumeCeremony(t.Context(), randomHash(), c.Kind); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: ConsumeCeremony of an unknown hash = %+v, %v; want ErrNotFound", rule, got, err)
	}
	wantConsumed(t, s, c, rule+" (the refused calls must delete nothing)")
}

func testCeremonyHashTaken(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	c := newCeremony(u.ID, users.CeremonyPasskeyRegistration)
	must(t, s.CreateCeremony(t.Context(), c))
	again := newCeremony(other.ID, users.CeremonyPasskeyLogin)
	again.Hash = append([]byte(nil), c.Hash...)
	wantErr(t, s.CreateCeremony(t.Context(), again), users.ErrConflict, rule)
	wantConsumed(t, s, c, rule)
}

func testCeremonyConsumeRace(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	rounds(20, 2*time.Second, func() {
		c := newCeremony(u.ID, users.CeremonyPasskeyFactor)
		must(t, s.CreateCeremony(t.Context(), c))
		errs := make([]error, 32)
		got := make([]*users.CeremonyRecord, len(errs))
		start(len(errs), func(i int) {
			got[i], errs[i] = s.ConsumeCeremony(t.Context(), c.Hash, c.Kind)
		})
		if !ExactlyOne(t, errs, users.ErrNotFound, rule) {
			t.FailNow()
		}
		for i, err := range errs {
			if err == nil && !reflect.DeepEqual(normCeremony(got[i]), normCeremony(c)) {
				t.Errorf("%s: the winner got %+v, want %+v", rule, got[i], c)
			}
		}
	})
}

func testCeremonyExpired(t *testing.T, s users.Store, rule string) {
	c := newCeremony("", users.CeremonyPasskeyLogin)
	c.CreatedAt, c.ExpiresAt = base.Add(-time.Hour), base.Add(-time.Minute)
	must(t, s.CreateCeremony(t.Context(), c))
	wantConsumed(t, s, c, rule)
}

func testCeremonyDeleteExpired(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	var cs [3]*users.CeremonyRecord
	for i, exp := range []time.Time{base.Add(-time.Second), base, base.Add(time.Second)} {
		cs[i] = newCeremony([]string{u.ID, "", u.ID}[i], users.CeremonyPasskeyRegistration)
		cs[i].ExpiresAt = exp
		must(t, s.CreateCeremony(t.Context(), cs[i]))
	}
	if n, err := s.DeleteExpired(t.Context(), base); err != nil || n != 2 {
		t.Errorf("%s: DeleteExpired = %d, %v; want 2 (the ceremonies expiring before and at now)", rule, n, err)
	}
	for _, c := range cs[:2] {
		wantNoCeremony(t, s, c, rule)
		c.ExpiresAt = base.Add(time.Hour)
		if err := s.CreateCeremony(t.Context(), c); err != nil {
			t.Errorf("%s: CreateCeremony with an expired ceremony's hash after DeleteExpired: %v", rule, err)
		}
	}
	wantConsumed(t, s, cs[2], rule+" (a later ceremony must be kept)")
}

func testCeremonyAudit(t *testing.T, s users.Store, rule string) {
	ctx := t.Context()
	u := addUser(t, s)
	var want []*users.AuditEntry
	written := func(e *users.AuditEntry) *users.AuditEntry { want = append(want, e); return e }

	c := newCeremony(u.ID, users.CeremonyPasskeyRegistration)
	must(t, s.CreateCeremony(ctx, c, written(entryFor(u, "ceremony.begun"))))
	wantErr(t, s.CreateCeremony(ctx, c, entryFor(u, "ceremony.refused")), users.ErrConflict, rule)
	_, err := s.ConsumeCeremony(ctx, c.Hash, users.CeremonyPasskeyLogin, entryFor(u, "ceremony.refused"))
	wantErr(t, err, users.ErrNotFound, rule)
	_, err = s.ConsumeCeremony(ctx, c.Hash, c.Kind, written(entryFor(u, "ceremony.finished")))
	must(t, err)
	_, err = s.ConsumeCeremony(ctx, c.Hash, c.Kind, entryFor(u, "ceremony.refused"))
	wantErr(t, err, users.ErrNotFound, rule)
	wantEntries(t, s, want, rule)
}

func testCeremonyCopies(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := newCeremony(u.ID, users.CeremonyPasskeyRegistration)
	kept := c.Clone()
	must(t, s.CreateCeremony(t.Context(), c))
	c.UserID, c.Kind = "scribbled", users.CeremonyPasskeyLogin
	c.ExpiresAt = c.ExpiresAt.Add(time.Hour)
	c.Hash[0] ^= 0xff
	wantConsumed(t, s, kept, rule)
}

func testCeremonyCanceled(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := newCeremony(u.ID, users.CeremonyPasskeyRegistration)
	must(t, s.CreateCeremony(t.Context(), c))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	fresh := newCeremony(u.ID, users.CeremonyPasskeyRegistration)
	if err := s.CreateCeremony(ctx, fresh, entryFor(u, "ceremony.test")); !errors.Is(err, context.Canceled) {
		t.Errorf("%s: CreateCeremony = %v, want an error matching context.Canceled", rule, err)
	}
	if _, err := s.ConsumeCeremony(ctx, c.Hash, c.Kind, entryFor(u, "ceremony.test")); !errors.Is(err, context.Canceled) {
		t.Errorf("%s: ConsumeCeremony = %v, want an error matching context.Canceled", rule, err)
	}
	wantNoCeremony(t, s, fresh, rule)
	wantConsumed(t, s, c, rule)
	wantEntries(t, s, nil, rule)
}
