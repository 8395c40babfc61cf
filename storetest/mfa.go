package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
)

// Rules for second factors: GetMFA, UpdateMFA, the challenge methods and
// StepUpSession, and how the other methods void what they keep.

// mfaRules are the rules of this file, each with its explanation.
var mfaRules = []rule[users.Store]{
	{"GetMFANotFound", "GetMFA must return ErrNotFound for a user without an MFA record and for a missing user", testGetMFANotFound},
	{"UpdateMFARoundTrip", "UpdateMFA must call fn with a new record holding only UserID when the user has none, store every field fn set exactly, and return it; GetMFA must then return it", testUpdateMFARoundTrip},
	{"UpdateMFASeesCurrent", "UpdateMFA must call fn with the record as last written", testUpdateMFASeesCurrent},
	{"UpdateMFAFnErrorWritesNothing", "UpdateMFA must write nothing, and return fn's error unchanged, when fn fails", testUpdateMFAFnError},
	{"UpdateMFAUserNotFound", "UpdateMFA must return ErrNotFound, calling nothing and storing nothing, for a missing user", testUpdateMFAUserNotFound},
	{"UpdateMFAEmptyDeletes", "a record that UpdateMFA's fn leaves empty (MFARecord.IsEmpty) must be deleted: GetMFA returns ErrNotFound", testUpdateMFAEmptyDeletes},
	{"UpdateMFARefusesUserIDChange", "UpdateMFA must return ErrKeyChanged and write nothing when fn changes UserID", testUpdateMFARefusesUserIDChange},
	{"UpdateMFACopies", "UpdateMFA must hand fn a copy and return a copy, and GetMFA must return a copy: changing them after the call must not change what is stored", testUpdateMFACopies},
	{"UpdateMFAReplayRefusedUnderConcurrency", "of concurrent UpdateMFA calls that each accept one TOTP step only if it is after LastStep, exactly one must succeed: this is what makes a code single use", testUpdateMFAReplay},
	{"UpdateMFARecoveryCodeSingleUseUnderConcurrency", "of concurrent UpdateMFA calls that each remove one recovery code hash only if it is still there, exactly one must succeed, and the other codes must stay", testUpdateMFARecoveryCode},
	{"UpdateMFADeletesChallenges", "UpdateMFA whose fn returns true must delete the user's challenges (and no other user's) in the same step; false must keep them", testUpdateMFADeletesChallenges},
	{"CreateChallengeRoundTrip", "CreateChallenge must store every field, and GetChallenge return them, whatever the challenge's expiry", testCreateChallengeRoundTrip},
	{"CreateChallengeUserNotFound", "CreateChallenge must return ErrNotFound, storing nothing, for a missing user", testCreateChallengeUserNotFound},
	{"CreateChallengeStaleGeneration", "CreateChallenge must return ErrConflict, storing nothing, when the user's Generation is not c.UserGeneration", testCreateChallengeStale},
	{"CreateChallengeDuplicateHash", "CreateChallenge must return ErrConflict for a hash another challenge has, leaving that one as it was", testCreateChallengeDuplicate},
	{"GetChallengeNotFound", "GetChallenge must return ErrNotFound for an unknown hash", testGetChallengeNotFound},
	{"CountChallengeAttemptStopsAtMax", "CountChallengeAttempt must count 1, 2, … up to max, returning the challenge as written; then ErrNotFound, changing nothing: the challenge stays, with Attempts == max", testCountChallengeAttempt},
	{"CountChallengeAttemptAtMostMaxUnderConcurrency", "of any number of concurrent CountChallengeAttempt calls for one challenge, exactly max must get it, each with a different Attempts from 1 to max", testCountChallengeAttemptConcurrent},
	{"CompleteChallengeAllOrNothing", "CompleteChallenge must write fn's MFA record, delete the challenge and create the session in one step when fn accepts (also for a challenge whose Attempts is max and whose ExpiresAt has passed), and write none of them when fn refuses (returning fn's error), when fn changes UserID (ErrKeyChanged), when the challenge is missing (ErrNotFound), belongs to another user or the user's Generation moved on or the session's token hash is taken (ErrConflict)", testCompleteChallenge},
	{"CompleteChallengeExactlyOnceUnderConcurrency", "of concurrent CompleteChallenge calls for one challenge, each with its own session and an fn that spends its own recovery code, exactly one must succeed: one session, one code spent, the others' codes kept", testCompleteChallengeConcurrent},
	{"ConsumeChallengeExactlyOnce", "of concurrent ConsumeChallenge calls for one challenge exactly one must get it, the others ErrNotFound; then it is gone", testConsumeChallenge},
	{"RevocationDeletesChallenges", "UpdateUser with Revoke.Sessions and DeleteUserSessions must delete the user's challenges in the same step, and keep other users' challenges", testRevocationDeletesChallenges},
	{"DeleteUserDeletesMFA", "DeleteUser must delete the user's MFA record and challenges", testDeleteUserDeletesMFA},
	{"DeleteExpiredDeletesChallenges", "DeleteExpired must delete and count challenges whose ExpiresAt is at or before now, and keep the others", testDeleteExpiredChallenges},
	{"StepUpSession", "StepUpSession must set SecondFactorAt and AuthenticatedAt, append the method once (not again if present), keep the rest of the session, and return it; GetSession must see it", testStepUpSession},
	{"StepUpSessionPasswordOnly", "StepUpSession with an empty method (a password proved again) must set AuthenticatedAt only, keeping Methods and SecondFactorAt, and return the session; GetSession must see it", testStepUpSessionPasswordOnly},
	{"SessionAuthenticatedAtRoundTrip", "CreateSession and CompleteChallenge must store AuthenticatedAt as given (not CreatedAt, not zero), GetSession and ListSessions return it, and TouchSession keep it", testSessionAuthenticatedAt},
	{"CanceledContext", "every MFA method called with a canceled context must return an error matching context.Canceled and change nothing", testMFACanceled},
	{"AuditWithChange", "every MFA method that changes state must write the audit entries it is given in the same step and none when it fails or changes nothing; UpdateMFA writes them as fn left them, leaving out those whose Type fn emptied; ConsumeChallenge fills in the challenge's UserID", testMFAAudit},
	{"StepUpSessionNotFound", "StepUpSession must return ErrNotFound, changing nothing, for an unknown session ID or one of another user", testStepUpSessionNotFound},
}

// newMFARecord returns a confirmed TOTP record with three recovery codes for
// the user, not yet stored. Secret is opaque bytes, as the Manager's sealed
// secrets are to a store.
func newMFARecord(userID string) *users.MFARecord {
	return &users.MFARecord{
		UserID: userID,
		TOTP: &users.TOTPFactor{
			Secret:      append([]byte{0, 0xff, 0x80}, randomHash()...),
			KeyID:       "key-2026",
			Confirmed:   true,
			CreatedAt:   base,
			ConfirmedAt: base.Add(time.Minute),
			LastStep:    base.Unix() / 30,
		},
		RecoveryCodes:   [][]byte{randomHash(), randomHash(), randomHash()},
		RecoveryCodesAt: base.Add(time.Minute),
	}
}

// putMFA stores rec as the user's MFA record.
func putMFA(t testing.TB, s users.Store, rec *users.MFARecord) {
	t.Helper()
	_, err := s.UpdateMFA(t.Context(), rec.UserID, func(w *users.MFARecord) (bool, error) {
		*w = *rec.Clone()
		return false, nil
	})
	if err != nil {
		t.Fatalf("setup: UpdateMFA: %v", err)
	}
}

func normMFA(r *users.MFARecord) users.MFARecord {
	c := *r.Clone()
	c.RecoveryCodesAt = c.RecoveryCodesAt.UTC()
	if len(c.RecoveryCodes) == 0 {
		c.RecoveryCodes = nil
	}
	if c.TOTP != nil {
		c.TOTP.CreatedAt = c.TOTP.CreatedAt.UTC()
		c.TOTP.ConfirmedAt = c.TOTP.ConfirmedAt.UTC()
	}
	return c
}

func sameMFA(a, b *users.MFARecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(normMFA(a), normMFA(b))
}

func wantMFA(t testing.TB, s users.Store, want *users.MFARecord, rule string) {
	t.Helper()
	got, err := s.GetMFA(t.Context(), want.UserID)
	if err != nil {
		t.Errorf("%s: GetMFA: %v", rule, err)
		return
	}
	if !sameMFA(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", rule, normMFA(got), normMFA(want))
	}
}

func wantNoMFA(t testing.TB, s users.Store, userID, rule string) {
	t.Helper()
	if _, err := s.GetMFA(t.Context(), userID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: GetMFA = %v, want ErrNotFound", rule, err)
	}
}

// newChallenge returns a challenge for u under u's Generation, not yet stored.
func newChallenge(u *users.UserRecord) *users.ChallengeRecord {
	return &users.ChallengeRecord{
		Hash:           randomHash(),
		UserID:         u.ID,
		UserGeneration: u.Generation,
		Methods:        []users.AuthMethod{users.MethodPassword},
		CreatedAt:      base,
		ExpiresAt:      base.Add(5 * time.Minute),
	}
}

func addChallenge(t testing.TB, s users.Store, u *users.UserRecord) *users.ChallengeRecord {
	t.Helper()
	c := newChallenge(u)
	if err := s.CreateChallenge(t.Context(), c); err != nil {
		t.Fatalf("setup: CreateChallenge: %v", err)
	}
	return c
}

func normChallenge(c *users.ChallengeRecord) users.ChallengeRecord {
	d := *c.Clone()
	d.CreatedAt, d.ExpiresAt = d.CreatedAt.UTC(), d.ExpiresAt.UTC()
	return d
}

func wantChallenge(t testing.TB, s users.Store, want *users.ChallengeRecord, rule string) {
	t.Helper()
	got, err := s.GetChallenge(t.Context(), want.Hash)
	if err != nil {
		t.Errorf("%s: GetChallenge: %v", rule, err)
		return
	}
	if !reflect.DeepEqual(normChallenge(got), normChallenge(want)) {
		t.Errorf("%s:\n got %+v\nwant %+v", rule, normChallenge(got), normChallenge(want))
	}
}

func wantNoChallenge(t testing.TB, s users.Store, hash []byte, rule string) {
	t.Helper()
	if _, err := s.GetChallenge(t.Context(), hash); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: GetChallenge = %v, want ErrNotFound", rule, err)
	}
}

func testGetMFANotFound(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	wantNoMFA(t, s, u.ID, rule)
	wantNoMFA(t, s, newUser().ID, rule)
}

func testUpdateMFARoundTrip(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	want := newMFARecord(u.ID)
	got, err := s.UpdateMFA(t.Context(), u.ID, func(w *users.MFARecord) (bool, error) {
		if !sameMFA(w, &users.MFARecord{UserID: u.ID}) {
			t.Errorf("%s: fn got %+v for a user without a record", rule, normMFA(w))
		}
		*w = *want.Clone()
		return false, nil
	})
	if err != nil {
		t.Fatalf("%s: UpdateMFA: %v", rule, err)
	}
	if !sameMFA(got, want) {
		t.Errorf("%s: UpdateMFA returned %+v, want %+v", rule, normMFA(got), normMFA(want))
	}
	wantMFA(t, s, want, rule)
	// A pending enrolment alone (no codes, LastStep 0) is a record too.
	pending := &users.MFARecord{UserID: u.ID, TOTP: &users.TOTPFactor{Secret: []byte{1, 2, 3}, KeyID: "k", CreatedAt: base}}
	putMFA(t, s, pending)
	wantMFA(t, s, pending, rule)
}

func testUpdateMFASeesCurrent(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	rec := newMFARecord(u.ID)
	putMFA(t, s, rec)
	_, err := s.UpdateMFA(t.Context(), u.ID, func(w *users.MFARecord) (bool, error) {
		if !sameMFA(w, rec) {
			t.Errorf("%s: fn got %+v, want %+v", rule, normMFA(w), normMFA(rec))
		}
		return false, nil
	})
	must(t, err)
}

func testUpdateMFAFnError(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	rec := newMFARecord(u.ID)
	putMFA(t, s, rec)
	c := addChallenge(t, s, u)
	_, err := s.UpdateMFA(t.Context(), u.ID, func(w *users.MFARecord) (bool, error) {
		w.TOTP.LastStep++
		w.RecoveryCodes = nil
		return true, errSentinel
	})
	if err != errSentinel {
		t.Errorf("%s: UpdateMFA = %v, want fn's error unchanged", rule, err)
	}
	wantMFA(t, s, rec, rule)
	wantChallenge(t, s, c, rule)
	other := addUser(t, s)
	_, err = s.UpdateMFA(t.Context(), other.ID, func(w *users.MFARecord) (bool, error) {
		*w = *newMFARecord(other.ID)
		return false, errSentinel
	})
	if err != errSentinel {
		t.Errorf("%s: UpdateMFA = %v, want fn's error unchanged", rule, err)
	}
	wantNoMFA(t, s, other.ID, rule)
}

func testUpdateMFAUserNotFound(t *testing.T, s users.Store, rule string) {
	id := newUser().ID
	_, err := s.UpdateMFA(t.Context(), id, func(w *users.MFARecord) (bool, error) {
		*w = *newMFARecord(id)
		return false, nil
	})
	wantErr(t, err, users.ErrNotFound, rule)
	wantNoMFA(t, s, id, rule)
}

func testUpdateMFAEmptyDeletes(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	putMFA(t, s, newMFARecord(u.ID))
	got, err := s.UpdateMFA(t.Context(), u.ID, func(w *users.MFARecord) (bool, error) {
		*w = users.MFARecord{UserID: w.UserID}
		return false, nil
	})
	must(t, err)
	if got == nil || !got.IsEmpty() {
		t.Errorf("%s: UpdateMFA returned %+v, want the empty record", rule, got)
	}
	wantNoMFA(t, s, u.ID, rule)
}

func testUpdateMFARefusesUserIDChange(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	rec := newMFARecord(u.ID)
	putMFA(t, s, rec)
	_, err := s.UpdateMFA(t.Context(), u.ID, func(w *users.MFARecord) (bool, error) {
		w.UserID = other.ID
		w.TOTP.LastStep++
		return false, nil
	})
	wantErr(t, err, users.ErrKeyChanged, rule)
	wantMFA(t, s, rec, rule)
	wantNoMFA(t, s, other.ID, rule)
}

func testUpdateMFACopies(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	rec := newMFARecord(u.ID)
	var inFn *users.MFARecord
	got, err := s.UpdateMFA(t.Context(), u.ID, func(w *users.MFARecord) (bool, error) {
		*w = *rec.Clone()
		inFn = w
		return false, nil
	})
	must(t, err)
	scribble := func(r *users.MFARecord) {
		r.TOTP.Secret[0] ^= 0xff
		r.TOTP.LastStep = 0
		r.RecoveryCodes[0][0] ^= 0xff
		r.RecoveryCodes = r.RecoveryCodes[:1]
	}
	scribble(inFn)
	scribble(got)
	wantMFA(t, s, rec, rule+" (after changing fn's record and UpdateMFA's result)")
	read, err := s.GetMFA(t.Context(), u.ID)
	must(t, err)
	scribble(read)
	wantMFA(t, s, rec, rule+" (after changing GetMFA's result)")
}

func testUpdateMFAReplay(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	rec := newMFARecord(u.ID)
	putMFA(t, s, rec)
	step := rec.TOTP.LastStep
	rounds(20, 2*time.Second, func() {
		step++
		errs := make([]error, 16)
		start(len(errs), func(i int) {
			_, errs[i] = s.UpdateMFA(t.Context(), u.ID, func(w *users.MFARecord) (bool, error) {
				if step <= w.TOTP.LastStep {
					return false, errSentinel
				}
				w.TOTP.LastStep = step
				return false, nil
			})
		})
		ExactlyOne(t, errs, errSentinel, rule)
	})
	want := rec.Clone()
	want.TOTP.LastStep = step
	wantMFA(t, s, want, rule)
}

func testUpdateMFARecoveryCode(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	rec := newMFARecord(u.ID)
	putMFA(t, s, rec)
	want := rec.Clone()
	for len(want.RecoveryCodes) > 0 {
		code := want.RecoveryCodes[0]
		errs := make([]error, 16)
		start(len(errs), func(i int) {
			_, errs[i] = s.UpdateMFA(t.Context(), u.ID, func(w *users.MFARecord) (bool, error) {
				i := slices.IndexFunc(w.RecoveryCodes, func(h []byte) bool { return bytes.Equal(h, code) })
				if i < 0 {
					return false, errSentinel
				}
				w.RecoveryCodes = slices.Delete(w.RecoveryCodes, i, i+1)
				return false, nil
			})
		})
		if !ExactlyOne(t, errs, errSentinel, rule) {
			t.FailNow()
		}
		want.RecoveryCodes = want.RecoveryCodes[1:]
		wantMFA(t, s, want, rule)
	}
}

func testUpdateMFADeletesChallenges(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	putMFA(t, s, newMFARecord(u.ID))
	c1, c2, keep := addChallenge(t, s, u), addChallenge(t, s, u), addChallenge(t, s, other)
	_, err := s.UpdateMFA(t.Context(), u.ID, func(w *users.MFARecord) (bool, error) { return false, nil })
	must(t, err)
	wantChallenge(t, s, c1, rule)
	_, err = s.UpdateMFA(t.Context(), u.ID, func(w *users.MFARecord) (bool, error) {
		*w = users.MFARecord{UserID: w.UserID}
		return true, nil
	})
	must(t, err)
	wantNoChallenge(t, s, c1.Hash, rule)
	wantNoChallenge(t, s, c2.Hash, rule)
	wantChallenge(t, s, keep, rule)
	wantNoMFA(t, s, u.ID, rule)
}

func testCreateChallengeRoundTrip(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := newChallenge(u)
	c.Methods = []users.AuthMethod{users.MethodEmailLink}
	c.Attempts = 2
	c.ExpiresAt = base.Add(-time.Hour) // expired: the Manager's to refuse
	want := c.Clone()
	if err := s.CreateChallenge(t.Context(), c); err != nil {
		t.Fatalf("%s: CreateChallenge: %v", rule, err)
	}
	c.Hash[0] ^= 0xff
	c.Methods[0] = "changed"
	wantChallenge(t, s, want, rule)
	got, err := s.GetChallenge(t.Context(), want.Hash)
	must(t, err)
	got.Methods[0] = "changed"
	wantChallenge(t, s, want, rule+" (GetChallenge must return a copy)")
}

func testCreateChallengeUserNotFound(t *testing.T, s users.Store, rule string) {
	c := newChallenge(newUser())
	wantErr(t, s.CreateChallenge(t.Context(), c), users.ErrNotFound, rule)
	wantNoChallenge(t, s, c.Hash, rule)
}

func testCreateChallengeStale(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := newChallenge(u)
	must(t, s.DeleteUserSessions(t.Context(), u.ID)) // Generation moves on
	wantErr(t, s.CreateChallenge(t.Context(), c), users.ErrConflict, rule)
	wantNoChallenge(t, s, c.Hash, rule)
}

func testCreateChallengeDuplicate(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	first := addChallenge(t, s, u)
	dup := newChallenge(other)
	dup.Hash = slices.Clone(first.Hash)
	wantErr(t, s.CreateChallenge(t.Context(), dup), users.ErrConflict, rule)
	wantChallenge(t, s, first, rule)
}

func testGetChallengeNotFound(t *testing.T, s users.Store, rule string) {
	addChallenge(t, s, addUser(t, s))
	wantNoChallenge(t, s, randomHash(), rule)
}

func testCountChallengeAttempt(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	c := addChallenge(t, s, u)
	const max = 3
	for i := 1; i <= max; i++ {
		got, err := s.CountChallengeAttempt(t.Context(), c.Hash, max)
		if err != nil {
			t.Fatalf("%s: attempt %d: %v", rule, i, err)
		}
		want := c.Clone()
		want.Attempts = i
		if !reflect.DeepEqual(normChallenge(got), normChallenge(want)) {
			t.Errorf("%s: attempt %d returned %+v, want %+v", rule, i, normChallenge(got), normChallenge(want))
		}
		wantChallenge(t, s, want, rule)
	}
	_, err := s.CountChallengeAttempt(t.Context(), c.Hash, max)
	wantErr(t, err, users.ErrNotFound, rule)
	want := c.Clone()
	want.Attempts = max
	wantChallenge(t, s, want, rule+" (a challenge out of attempts stays as it is)")
	_, err = s.CountChallengeAttempt(t.Context(), randomHash(), max)
	wantErr(t, err, users.ErrNotFound, rule)
}

// spendCode returns an fn for CompleteChallenge that removes the recovery
// code hash h, refusing with users.ErrInvalidCode if it is not there.
func spendCode(h []byte) func(r *users.MFARecord) error {
	return func(r *users.MFARecord) error {
		i := slices.IndexFunc(r.RecoveryCodes, func(c []byte) bool { return bytes.Equal(c, h) })
		if i < 0 {
			return users.ErrInvalidCode
		}
		r.RecoveryCodes = slices.Delete(r.RecoveryCodes, i, i+1)
		return nil
	}
}

func testCompleteChallenge(t *testing.T, s users.Store, rule string) {
	ctx := t.Context()
	u, other := addUser(t, s), addUser(t, s)
	rec := newMFARecord(u.ID)
	putMFA(t, s, rec)
	c := newChallenge(u) // expired: expiry is the Manager's to decide
	c.CreatedAt, c.ExpiresAt = base.Add(-time.Hour), base.Add(-time.Minute)
	must(t, s.CreateChallenge(ctx, c))
	nothing := func(what string, sess *users.SessionRecord) {
		t.Helper()
		wantMFA(t, s, rec, rule+" ("+what+": the MFA record)")
		wantChallenge(t, s, c, rule+" ("+what+": the challenge)")
		wantNoSession(t, s, sess.TokenHash, rule+" ("+what+": the session)")
	}

	sess := newSession(u)
	refused := errors.New("refused")
	wantErr(t, s.CompleteChallenge(ctx, c.Hash, func(r *users.MFARecord) error {
		r.RecoveryCodes = nil
		return refused
	}, sess), refused, rule+" (fn refuses)")
	nothing("fn refuses", sess)
	wantErr(t, s.CompleteChallenge(ctx, c.Hash, func(r *users.MFARecord) error {
		r.UserID = other.ID
		return nil
	}, sess), users.ErrKeyChanged, rule+" (fn changes UserID)")
	nothing("fn changes UserID", sess)
	wantErr(t, s.CompleteChallenge(ctx, randomHash(), spendCode(rec.RecoveryCodes[0]), sess), users.ErrNotFound, rule+" (no such challenge)")
	nothing("no such challenge", sess)
	theirs := newSession(other)
	wantErr(t, s.CompleteChallenge(ctx, c.Hash, spendCode(rec.RecoveryCodes[0]), theirs), users.ErrConflict, rule+" (another user's session)")
	nothing("another user's session", theirs)
	taken := addSession(t, s, u.ID)
	dup := newSession(u)
	dup.TokenHash = slices.Clone(taken.TokenHash)
	wantErr(t, s.CompleteChallenge(ctx, c.Hash, spendCode(rec.RecoveryCodes[0]), dup), users.ErrConflict, rule+" (a taken token hash)")
	wantMFA(t, s, rec, rule+" (a taken token hash)")
	wantChallenge(t, s, c, rule+" (a taken token hash)")
	wantSession(t, s, taken, rule+" (a taken token hash)")

	// Expired and out of attempts: the last attempt's code still redeems it.
	for range 3 {
		_, err := s.CountChallengeAttempt(ctx, c.Hash, 3)
		must(t, err)
	}
	c.Attempts = 3
	must(t, s.CompleteChallenge(ctx, c.Hash, spendCode(rec.RecoveryCodes[1]), sess))
	want := rec.Clone()
	want.RecoveryCodes = slices.Delete(want.RecoveryCodes, 1, 2)
	wantMFA(t, s, want, rule+" (after success)")
	wantNoChallenge(t, s, c.Hash, rule+" (after success)")
	wantSession(t, s, sess, rule+" (after success)")
	wantErr(t, s.CompleteChallenge(ctx, c.Hash, spendCode(rec.RecoveryCodes[0]), newSession(u)), users.ErrNotFound, rule+" (used already)")
	wantMFA(t, s, want, rule+" (used already)")

	// A session made under a Generation that a revocation moved on from.
	staleSess := newSession(u)
	must(t, s.DeleteUserSessions(ctx, u.ID))
	fresh := addChallenge(t, s, mustGetUser(t, s, u.ID))
	wantErr(t, s.CompleteChallenge(ctx, fresh.Hash, spendCode(rec.RecoveryCodes[0]), staleSess), users.ErrConflict, rule+" (stale generation)")
	wantMFA(t, s, want, rule+" (stale generation)")
	wantChallenge(t, s, fresh, rule+" (stale generation)")
	wantNoSession(t, s, staleSess.TokenHash, rule+" (stale generation)")
}

func testCompleteChallengeConcurrent(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	rounds(20, 2*time.Second, func() {
		rec := newMFARecord(u.ID)
		rec.RecoveryCodes = nil
		for range 8 {
			rec.RecoveryCodes = append(rec.RecoveryCodes, randomHash())
		}
		putMFA(t, s, rec)
		c := addChallenge(t, s, u)
		sessions := make([]*users.SessionRecord, len(rec.RecoveryCodes))
		for i := range sessions {
			sessions[i] = newSession(u)
		}
		errs := make([]error, len(sessions))
		start(len(errs), func(i int) {
			errs[i] = s.CompleteChallenge(t.Context(), c.Hash, spendCode(rec.RecoveryCodes[i]), sessions[i])
		})
		if !ExactlyOne(t, errs, users.ErrNotFound, rule) {
			return
		}
		won := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		want := rec.Clone()
		want.RecoveryCodes = slices.Delete(want.RecoveryCodes, won, won+1)
		wantMFA(t, s, want, rule)
		wantNoChallenge(t, s, c.Hash, rule)
		for i, sess := range sessions {
			if i == won {
				wantSession(t, s, sess, rule)
			} else {
				wantNoSession(t, s, sess.TokenHash, rule)
			}
		}
	})
}

func testCountChallengeAttemptConcurrent(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	const max = 5
	rounds(20, 2*time.Second, func() {
		c := addChallenge(t, s, u)
		var seen [max + 1]atomic.Int32
		var won atomic.Int32
		errs := make([]error, 24)
		start(len(errs), func(i int) {
			got, err := s.CountChallengeAttempt(t.Context(), c.Hash, max)
			errs[i] = err
			if err == nil {
				won.Add(1)
				if got.Attempts >= 1 && got.Attempts <= max {
					seen[got.Attempts].Add(1)
				}
			}
		})
		for i, err := range errs {
			if err != nil && !errors.Is(err, users.ErrNotFound) {
				t.Errorf("%s: call %d: %v, want nil or ErrNotFound", rule, i, err)
			}
		}
		if n := won.Load(); n != max {
			t.Errorf("%s: %d calls got the challenge, want %d", rule, n, max)
		}
		for a := 1; a <= max; a++ {
			if n := seen[a].Load(); n != 1 {
				t.Errorf("%s: %d calls got Attempts %d, want 1", rule, n, a)
			}
		}
		want := c.Clone()
		want.Attempts = max
		wantChallenge(t, s, want, rule)
	})
}

func testConsumeChallenge(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	rounds(20, 2*time.Second, func() {
		c := addChallenge(t, s, u)
		errs := make([]error, 16)
		start(len(errs), func(i int) {
			got, err := s.ConsumeChallenge(t.Context(), c.Hash)
			errs[i] = err
			if err == nil && !reflect.DeepEqual(normChallenge(got), normChallenge(c)) {
				t.Errorf("%s: ConsumeChallenge returned %+v, want %+v", rule, normChallenge(got), normChallenge(c))
			}
		})
		ExactlyOne(t, errs, users.ErrNotFound, rule)
		wantNoChallenge(t, s, c.Hash, rule)
	})
	_, err := s.ConsumeChallenge(t.Context(), randomHash())
	wantErr(t, err, users.ErrNotFound, rule)
}

func testRevocationDeletesChallenges(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	keep := addChallenge(t, s, other)
	c := addChallenge(t, s, u)
	_, err := s.UpdateUser(t.Context(), u.ID, func(r *users.UserRecord) (users.Revoke, error) {
		return users.Revoke{Sessions: true}, nil
	})
	must(t, err)
	wantNoChallenge(t, s, c.Hash, rule+" (UpdateUser with Revoke.Sessions)")
	c = addChallenge(t, s, mustGetUser(t, s, u.ID))
	must(t, s.DeleteUserSessions(t.Context(), u.ID))
	wantNoChallenge(t, s, c.Hash, rule+" (DeleteUserSessions)")
	c = addChallenge(t, s, mustGetUser(t, s, u.ID))
	_, err = s.UpdateUser(t.Context(), u.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.FirstName = "Grace"
		return users.Revoke{Tokens: users.Purposes()}, nil
	})
	must(t, err)
	wantChallenge(t, s, c, rule+" (UpdateUser without Revoke.Sessions must keep them)")
	wantChallenge(t, s, keep, rule)
}

func testDeleteUserDeletesMFA(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	putMFA(t, s, newMFARecord(u.ID))
	otherRec := newMFARecord(other.ID)
	putMFA(t, s, otherRec)
	c, keep := addChallenge(t, s, u), addChallenge(t, s, other)
	must(t, s.DeleteUser(t.Context(), u.ID))
	wantNoMFA(t, s, u.ID, rule)
	wantNoChallenge(t, s, c.Hash, rule)
	wantMFA(t, s, otherRec, rule)
	wantChallenge(t, s, keep, rule)
	// A new user with the same ID starts without a second factor.
	again := newUser()
	again.ID = u.ID
	mustCreateUser(t, s, again)
	wantNoMFA(t, s, u.ID, rule+" (a user created again with the ID)")
}

func testDeleteExpiredChallenges(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	old := newChallenge(u)
	old.ExpiresAt = base.Add(time.Minute)
	must(t, s.CreateChallenge(t.Context(), old))
	live := newChallenge(u)
	live.ExpiresAt = base.Add(time.Hour)
	must(t, s.CreateChallenge(t.Context(), live))
	n, err := s.DeleteExpired(t.Context(), base.Add(time.Minute))
	must(t, err)
	if n != 1 {
		t.Errorf("%s: DeleteExpired = %d, want 1", rule, n)
	}
	wantNoChallenge(t, s, old.Hash, rule)
	wantChallenge(t, s, live, rule)
}

func testStepUpSession(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	sess := newSession(u)
	sess.Methods = []users.AuthMethod{users.MethodPassword}
	must(t, s.CreateSession(t.Context(), sess))
	at := base.Add(10 * time.Minute)
	got, err := s.StepUpSession(t.Context(), u.ID, sess.ID, users.MethodTOTP, at)
	if err != nil {
		t.Fatalf("%s: StepUpSession: %v", rule, err)
	}
	want := sess.Clone()
	want.Methods = append(want.Methods, users.MethodTOTP)
	want.SecondFactorAt, want.AuthenticatedAt = at, at
	if !sameSession(got, want) {
		t.Errorf("%s: returned %s, want %s", rule, showSession(got), showSession(want))
	}
	wantSession(t, s, want, rule)
	later := at.Add(time.Minute)
	_, err = s.StepUpSession(t.Context(), u.ID, sess.ID, users.MethodTOTP, later)
	must(t, err)
	want.SecondFactorAt, want.AuthenticatedAt = later, later
	wantSession(t, s, want, rule+" (a method present already is not added again)")
	_, err = s.StepUpSession(t.Context(), u.ID, sess.ID, users.MethodRecoveryCode, later)
	must(t, err)
	want.Methods = append(want.Methods, users.MethodRecoveryCode)
	wantSession(t, s, want, rule)
	for _, n := range []int{1, 2, 3} { // stores may keep short lists apart
		one := newSession(u)
		one.Methods = []users.AuthMethod{users.MethodPassword, users.MethodTOTP, users.MethodRecoveryCode}[:n]
		must(t, s.CreateSession(t.Context(), one))
		wantSession(t, s, one, rule+" (GetSession must return short lists of methods as stored)")
	}
	got.Methods[0] = "changed"
	wantSession(t, s, want, rule+" (StepUpSession must return a copy)")
}

func testStepUpSessionPasswordOnly(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	sess := newSession(u)
	sess.Methods = []users.AuthMethod{users.MethodEmailLink, users.MethodTOTP}
	sess.SecondFactorAt = base.Add(time.Minute)
	sess.AuthenticatedAt = base.Add(time.Minute)
	must(t, s.CreateSession(t.Context(), sess))
	at := base.Add(20 * time.Minute)
	got, err := s.StepUpSession(t.Context(), u.ID, sess.ID, "", at)
	if err != nil {
		t.Fatalf("%s: StepUpSession: %v", rule, err)
	}
	want := sess.Clone()
	want.AuthenticatedAt = at
	if !sameSession(got, want) {
		t.Errorf("%s: returned %s, want %s", rule, showSession(got), showSession(want))
	}
	wantSession(t, s, want, rule)
	plain := newSession(u) // no second factor at all: SecondFactorAt stays zero
	plain.Methods = []users.AuthMethod{users.MethodPassword}
	must(t, s.CreateSession(t.Context(), plain))
	_, err = s.StepUpSession(t.Context(), u.ID, plain.ID, "", at)
	must(t, err)
	want = plain.Clone()
	want.AuthenticatedAt = at
	wantSession(t, s, want, rule+" (a one-factor session)")
}

// roundTripSession stores sess and checks that GetSession and ListSessions
// return it as given, and that TouchSession changes only its LastSeenAt. It
// returns the session as it then is.
func roundTripSession(t *testing.T, s users.Store, sess *users.SessionRecord, rule string) *users.SessionRecord {
	t.Helper()
	must(t, s.CreateSession(t.Context(), sess))
	wantSession(t, s, sess, rule)
	wantSessions(t, s, sess.UserID, []*users.SessionRecord{sess}, rule+" (ListSessions)")
	must(t, s.TouchSession(t.Context(), sess.TokenHash, base.Add(5*time.Minute)))
	want := sess.Clone()
	want.LastSeenAt = base.Add(5 * time.Minute)
	wantSession(t, s, want, rule+" (after TouchSession)")
	return want
}

func testSessionAuthenticatedAt(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	sess := newSession(u)
	sess.SecondFactorAt = base.Add(time.Minute)
	sess.AuthenticatedAt = base.Add(3 * time.Minute) // neither CreatedAt nor SecondFactorAt
	roundTripSession(t, s, sess, rule)

	putMFA(t, s, newMFARecord(u.ID))
	c := newChallenge(u)
	must(t, s.CreateChallenge(t.Context(), c))
	second := newSession(u)
	second.Methods = []users.AuthMethod{users.MethodPassword, users.MethodTOTP}
	second.SecondFactorAt, second.AuthenticatedAt = base.Add(time.Minute), base.Add(time.Minute)
	must(t, s.CompleteChallenge(t.Context(), c.Hash, func(*users.MFARecord) error { return nil }, second))
	wantSession(t, s, second, rule+" (a session stored by CompleteChallenge)")
}

func testStepUpSessionNotFound(t *testing.T, s users.Store, rule string) {
	u, other := addUser(t, s), addUser(t, s)
	sess := addSession(t, s, u.ID)
	_, err := s.StepUpSession(t.Context(), other.ID, sess.ID, users.MethodTOTP, base)
	wantErr(t, err, users.ErrNotFound, rule+" (another user's session)")
	_, err = s.StepUpSession(t.Context(), u.ID, "01ARZ3NDEKTSV4RRFFQ69G5FAV", users.MethodTOTP, base)
	wantErr(t, err, users.ErrNotFound, rule+" (an unknown ID)")
	wantSession(t, s, sess, rule)
}

func testMFACanceled(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	rec := newMFARecord(u.ID)
	putMFA(t, s, rec)
	c := addChallenge(t, s, u)
	sess := addSession(t, s, u.ID)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]func() error{
		"GetMFA": func() error { _, err := s.GetMFA(ctx, u.ID); return err },
		"UpdateMFA": func() error {
			_, err := s.UpdateMFA(ctx, u.ID, func(w *users.MFARecord) (bool, error) {
				w.TOTP.LastStep++
				return true, nil
			})
			return err
		},
		"CreateChallenge":       func() error { return s.CreateChallenge(ctx, newChallenge(u)) },
		"GetChallenge":          func() error { _, err := s.GetChallenge(ctx, c.Hash); return err },
		"CountChallengeAttempt": func() error { _, err := s.CountChallengeAttempt(ctx, c.Hash, 1); return err },
		"ConsumeChallenge":      func() error { _, err := s.ConsumeChallenge(ctx, c.Hash); return err },
		"CompleteChallenge": func() error {
			return s.CompleteChallenge(ctx, c.Hash, func(*users.MFARecord) error { return nil }, newSession(u))
		},
		"StepUpSession": func() error {
			_, err := s.StepUpSession(ctx, u.ID, sess.ID, users.MethodTOTP, base)
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %s = %v, want an error matching context.Canceled", rule, name, err)
		}
	}
	wantMFA(t, s, rec, rule)
	wantChallenge(t, s, c, rule)
	wantSession(t, s, sess, rule)
}

func testMFAAudit(t *testing.T, s users.Store, rule string) {
	ctx := t.Context()
	u := addUser(t, s)
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", rule, err)
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	n := 0
	entry := func(userID string) *users.AuditEntry {
		n++
		at := now.Add(time.Duration(n) * time.Millisecond)
		return &users.AuditEntry{ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), Time: at,
			Type: users.EventType(fmt.Sprintf("mfa.test%d", n)), UserID: userID}
	}
	written := func(e *users.AuditEntry) bool {
		t.Helper()
		es, err := s.ListAudit(ctx, users.AuditQuery{Limit: 100})
		must(t, err)
		for _, got := range es {
			if got.ID == e.ID {
				return got.UserID == e.UserID && got.Type == e.Type
			}
		}
		return false
	}
	hash := bytes.Repeat([]byte{'h'}, 32)
	sess := &users.SessionRecord{ID: "S1", TokenHash: bytes.Repeat([]byte{'s'}, 32), UserID: u.ID,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeenAt: now}
	must(t, s.CreateSession(ctx, sess))

	e := entry("")
	_, err := s.UpdateMFA(ctx, u.ID, func(r *users.MFARecord) (bool, error) {
		r.RecoveryCodes = [][]byte{bytes.Repeat([]byte{1}, 32)}
		e.UserID = u.ID // fn fills the entry in
		return false, nil
	}, e)
	must(t, err)
	if !written(e) {
		t.Error(rule + ": UpdateMFA did not write its entry as fn filled it in")
	}
	e = entry(u.ID)
	_, err = s.UpdateMFA(ctx, u.ID, func(r *users.MFARecord) (bool, error) { return false, errors.New("refused") }, e)
	if err == nil || written(e) {
		t.Errorf(rule+": UpdateMFA whose fn failed: %v, entry written %v; want fn's error and no entry", err, written(e))
	}
	e = entry(u.ID)
	_, err = s.UpdateMFA(ctx, u.ID, func(r *users.MFARecord) (bool, error) {
		r.RecoveryCodes = append(r.RecoveryCodes, bytes.Repeat([]byte{2}, 32))
		e.Type = "" // fn drops the entry
		return false, nil
	}, e)
	must(t, err)
	if written(e) {
		t.Error(rule + ": UpdateMFA wrote an entry whose Type fn left empty")
	}

	e = entry(u.ID)
	must(t, s.CreateChallenge(ctx, &users.ChallengeRecord{Hash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}, e))
	if !written(e) {
		t.Error(rule + ": CreateChallenge did not write its entry")
	}
	e = entry(u.ID)
	if err := s.CreateChallenge(ctx, &users.ChallengeRecord{Hash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now}, e); !errors.Is(err, users.ErrConflict) || written(e) {
		t.Errorf(rule+": CreateChallenge of a taken hash: %v, entry written %v; want ErrConflict and no entry", err, written(e))
	}
	e = entry(u.ID)
	if _, err := s.CountChallengeAttempt(ctx, hash, 5, e); err != nil || !written(e) {
		t.Errorf(rule+": CountChallengeAttempt: %v, entry written %v; want both", err, written(e))
	}
	e = entry(u.ID)
	if _, err := s.CountChallengeAttempt(ctx, []byte("nope"), 5, e); !errors.Is(err, users.ErrNotFound) || written(e) {
		t.Errorf(rule+": CountChallengeAttempt of no challenge: %v, entry written %v; want ErrNotFound and no entry", err, written(e))
	}
	e = entry(u.ID)
	if err := s.CompleteChallenge(ctx, hash, func(*users.MFARecord) error { return errors.New("refused") }, newSession(u), e); err == nil || written(e) {
		t.Errorf(rule+": CompleteChallenge whose fn failed: %v, entry written %v; want fn's error and no entry", err, written(e))
	}
	e = entry("")
	if _, err := s.ConsumeChallenge(ctx, hash, e); err != nil || e.UserID != u.ID || !written(e) {
		t.Errorf(rule+": ConsumeChallenge: %v, entry's UserID %q, written %v; want the challenge's user and the entry written", err, e.UserID, written(e))
	}
	e = entry(u.ID)
	if _, err := s.ConsumeChallenge(ctx, hash, e); !errors.Is(err, users.ErrNotFound) || written(e) {
		t.Errorf(rule+": ConsumeChallenge again: %v, entry written %v; want ErrNotFound and no entry", err, written(e))
	}
	e = entry(u.ID)
	must(t, s.CreateChallenge(ctx, &users.ChallengeRecord{Hash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}))
	if err := s.CompleteChallenge(ctx, hash, func(*users.MFARecord) error { return nil }, newSession(u), e); err != nil || !written(e) {
		t.Errorf(rule+": CompleteChallenge: %v, entry written %v; want both", err, written(e))
	}
	e = entry(u.ID)
	if _, err := s.StepUpSession(ctx, u.ID, sess.ID, users.MethodTOTP, now, e); err != nil || !written(e) {
		t.Errorf(rule+": StepUpSession: %v, entry written %v; want both", err, written(e))
	}
	e = entry(u.ID)
	if _, err := s.StepUpSession(ctx, "someone else", sess.ID, users.MethodTOTP, now, e); !errors.Is(err, users.ErrNotFound) || written(e) {
		t.Errorf(rule+": StepUpSession of another user's session: %v, entry written %v; want ErrNotFound and no entry", err, written(e))
	}
}
