package users_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// The limits on second-factor guesses hold whatever else the user (or an
// attacker with the password, the mailbox or a session) does meanwhile.

// TestMFA_ResetDoesNotLiftCodeLimit plays an attacker who has the password and
// the mailbox: between rounds of code guesses they reset the password, which
// used to forget the code failures with the password's. The clock stands
// still, so the documented limit is MaxFailedLogins attempts (logins
// included) before the account locks, however many resets come between.
func TestMFA_ResetDoesNotLiftCodeLimit(t *testing.T) {
	const resets = 50
	f := newMFAFixture(t, nil)
	ctx := t.Context()
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	secret, _ := f.MustEnrolTOTP(t, u.ID)
	guesses, logins := 0, 0
	for i := range resets {
		d, err := f.M.RequestPasswordReset(ctx, u.Email)
		if err != nil || d == nil {
			t.Fatalf("RequestPasswordReset: %v, %v", d, err)
		}
		pw := fmt.Sprintf("reset number %d of the attacker", i)
		if err := f.M.ResetPassword(ctx, d.Token, pw); err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
		_, err = f.M.Login(ctx, u.Email, pw)
		var c *users.Challenge
		switch {
		case errors.As(err, &c):
			logins++
		case errors.Is(err, users.ErrAccountLocked):
			continue
		default:
			t.Fatalf("Login: %v", err)
		}
		for j := 0; ; j++ {
			_, err := f.M.CompleteLogin(ctx, c.Token, storetest.WrongTOTPCode(t, secret, f.Clock.Now(), j%10))
			if !errors.Is(err, users.ErrInvalidCode) {
				break
			}
			guesses++
		}
	}
	t.Logf("%d codes checked over %d logins and %d resets", guesses, logins, resets)
	if max := 10; guesses+logins > max { // the default MaxFailedLogins
		t.Errorf("%d codes and %d logins counted over %d resets, want at most MaxFailedLogins = %d together", guesses, logins, resets, max)
	}
	// An administrator's Unlock forgets them; then a right code works.
	if err := f.M.Unlock(ctx, u.ID); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	d, err := f.M.RequestPasswordReset(ctx, u.Email)
	if err != nil {
		t.Fatalf("RequestPasswordReset: %v", err)
	}
	if err := f.M.ResetPassword(ctx, d.Token, storetest.Password); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	c := f.MustChallenge(t, u.Email)
	if _, err := f.M.CompleteLogin(ctx, c.Token, storetest.TOTPCode(t, secret, f.Clock.Now())); err != nil {
		t.Errorf("CompleteLogin with the right code after Unlock: %v", err)
	}
}

// TestMFA_ConfirmTOTPThrottled: the code that confirms an enrolment is
// counted like any other code, so a caller with the user's session cannot
// have 2,000 codes checked; a right one does not forget earlier failures.
func TestMFA_ConfirmTOTPThrottled(t *testing.T) {
	const tries, max = 2000, 10
	f := newMFAFixture(t, nil)
	ctx := t.Context()
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	e, err := f.M.BeginTOTP(ctx, u.ID)
	if err != nil {
		t.Fatalf("BeginTOTP: %v", err)
	}

	t.Run("RightCodeKeepsFailures", func(t *testing.T) {
		for i := range 3 {
			if _, err := f.M.ConfirmTOTP(ctx, u.ID, storetest.WrongTOTPCode(t, e.Secret, f.Clock.Now(), i)); !errors.Is(err, users.ErrInvalidCode) {
				t.Fatalf("ConfirmTOTP(wrong) = %v, want ErrInvalidCode", err)
			}
		}
		if ls, err := f.M.LockState(ctx, u.ID); err != nil || ls.ConsecutiveFailures != 3 {
			t.Errorf("after 3 wrong confirmations: %+v, %v; want 3 consecutive failures", ls, err)
		}
		p, err := f.M.Audit(ctx, users.AuditFilter{UserID: u.ID, Types: []users.EventType{users.EventMFAFailed}})
		if err != nil || len(p.Entries) != 3 || p.Entries[0].Reason != "invalid_code" {
			t.Errorf("mfa.failed entries after 3 wrong confirmations: %v, %v; want 3 with Reason invalid_code", p, err)
		}
		if _, err := f.M.ConfirmTOTP(ctx, u.ID, storetest.TOTPCode(t, e.Secret, f.Clock.Now())); err != nil {
			t.Fatalf("ConfirmTOTP(right): %v", err)
		}
		if ls, err := f.M.LockState(ctx, u.ID); err != nil || ls.ConsecutiveFailures != 3 {
			t.Errorf("after a right confirmation: %+v, %v; want 3 consecutive failures still", ls, err)
		}
		if err := f.M.ResetMFA(ctx, u.ID); err != nil {
			t.Fatalf("ResetMFA: %v", err)
		}
		if err := f.M.Unlock(ctx, u.ID); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		if e, err = f.M.BeginTOTP(ctx, u.ID); err != nil {
			t.Fatalf("BeginTOTP: %v", err)
		}
	})

	t.Run("Bounded", func(t *testing.T) {
		checked, locked := 0, 0
		for i := range tries {
			_, err := f.M.ConfirmTOTP(ctx, u.ID, storetest.WrongTOTPCode(t, e.Secret, f.Clock.Now(), i%10))
			switch {
			case errors.Is(err, users.ErrInvalidCode):
				checked++
			case errors.Is(err, users.ErrAccountLocked):
				locked++
			default:
				t.Fatalf("ConfirmTOTP: %v", err)
			}
		}
		if checked > max || checked+locked != tries {
			t.Errorf("%d of %d wrong confirmations checked, %d refused as locked; want at most MaxFailedLogins = %d checked", checked, tries, locked, max)
		}
		if _, err := f.M.ConfirmTOTP(ctx, u.ID, storetest.TOTPCode(t, e.Secret, f.Clock.Now())); !errors.Is(err, users.ErrAccountLocked) {
			t.Errorf("ConfirmTOTP(right) while locked = %v, want ErrAccountLocked", err)
		}
	})
}

// TestMFA_RightPasswordOutsideLoginNotAFailure: for a user with a second
// factor, a right password given to an operation that is not a login
// (UpdatePassword, RequestEmailChange, DisableMFA) never counts as a failure,
// and does not forget the failures counted before it either.
func TestMFA_RightPasswordOutsideLoginNotAFailure(t *testing.T) {
	const calls = 10
	f := newMFAFixture(t, nil)
	ctx := t.Context()
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	secret, _ := f.MustEnrolTOTP(t, u.ID)
	c := f.MustChallenge(t, u.Email) // counted until a second factor succeeds
	for i := range 2 {
		if _, err := f.M.CompleteLogin(ctx, c.Token, storetest.WrongTOTPCode(t, secret, f.Clock.Now(), i)); !errors.Is(err, users.ErrInvalidCode) {
			t.Fatalf("CompleteLogin(wrong code) = %v, want ErrInvalidCode", err)
		}
	}
	const before = 3 // the login and two codes
	want := func(t *testing.T, op string) {
		t.Helper()
		ls, err := f.M.LockState(ctx, u.ID)
		if err != nil || ls.Locked || ls.ConsecutiveFailures != before {
			t.Errorf("after %s with the right password: %+v, %v; want not locked, %d consecutive failures as before", op, ls, err, before)
		}
	}

	pw := []string{storetest.Password, "another passphrase of the user"}
	for i := range calls {
		if err := f.M.UpdatePassword(ctx, u.ID, pw[i%2], pw[(i+1)%2]); err != nil {
			t.Fatalf("UpdatePassword %d: %v", i, err)
		}
	}
	want(t, fmt.Sprintf("%d UpdatePassword calls", calls))
	for i := range calls {
		if _, err := f.M.RequestEmailChange(ctx, u.ID, pw[calls%2], fmt.Sprintf("new%d@example.com", i)); err != nil {
			t.Fatalf("RequestEmailChange %d: %v", i, err)
		}
	}
	want(t, fmt.Sprintf("%d RequestEmailChange calls", calls))
	// Up to one failure short of the lock, then the right password: its
	// check must not be the failure that locks.
	c = f.MustChallenge(t, u.Email)
	for i := range users.MaxChallengeAttempts {
		if _, err := f.M.CompleteLogin(ctx, c.Token, storetest.WrongTOTPCode(t, secret, f.Clock.Now(), i)); !errors.Is(err, users.ErrInvalidCode) {
			t.Fatalf("CompleteLogin(wrong code) = %v, want ErrInvalidCode", err)
		}
	}
	if ls, err := f.M.LockState(ctx, u.ID); err != nil || ls.ConsecutiveFailures != 9 { // the default MaxFailedLogins is 10
		t.Fatalf("LockState = %+v, %v; want 9 consecutive failures", ls, err)
	}
	if _, err := f.M.RequestEmailChange(ctx, u.ID, pw[calls%2], "last@example.com"); err != nil {
		t.Fatalf("RequestEmailChange with the right password after 9 failures: %v", err)
	}
	if ls, err := f.M.LockState(ctx, u.ID); err != nil || ls.Locked || ls.ConsecutiveFailures != 9 {
		t.Errorf("after RequestEmailChange with the right password: %+v, %v; want not locked, 9 failures", ls, err)
	}
	if err := f.M.DisableMFA(ctx, u.ID, pw[calls%2], ""); err != nil {
		t.Fatalf("DisableMFA with the right password after 9 failures: %v", err)
	}
	if ls, err := f.M.LockState(ctx, u.ID); err != nil || ls.Locked {
		t.Errorf("after DisableMFA with the right password: %+v, %v; want not locked", ls, err)
	}
}
