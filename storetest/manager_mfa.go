package storetest

import (
	"bytes"
	"encoding/base32"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/userkit/users"
)

// The second-factor rules of RunManager: a user who enrolled TOTP gets a
// session only with a valid code or recovery code, on every store.

var mgrMFARules = append([]rule[*mgrSuite]{
	{"NoSessionWithoutSecondFactor", "Login of a user with a confirmed TOTP factor returns a *Challenge (ErrSecondFactorRequired) and stores no session; a wrong code gives ErrInvalidCode and no session; the right code gives a session whose Methods are [password totp] and whose SecondFactorAt is now, as ValidateToken reports", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, WithMFAKey)
		ctx := t.Context()
		u := f.user(t)
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		c := f.MustChallenge(t, u.Email)
		if !slices.Equal(c.Methods, []users.AuthMethod{users.MethodTOTP, users.MethodRecoveryCode}) {
			t.Errorf("Challenge.Methods = %v, want [totp recovery_code]", c.Methods)
		}
		if want := f.Clock.Now().Add(users.ChallengeTTL); !c.ExpiresAt.Equal(want) {
			t.Errorf("Challenge.ExpiresAt = %v, want %v", c.ExpiresAt, want)
		}
		if n := f.storedSessions(t, u.ID); n != 0 {
			t.Fatalf("the store holds %d sessions after the first step, want 0", n)
		}
		right := TOTPCode(t, secret, f.Clock.Now())
		wrong := WrongTOTPCode(t, secret, f.Clock.Now(), 0)
		if _, err := f.M.CompleteLogin(ctx, c.Token, wrong); !errors.Is(err, users.ErrInvalidCode) {
			t.Fatalf("CompleteLogin(wrong code) = %v, want ErrInvalidCode", err)
		}
		if n := f.storedSessions(t, u.ID); n != 0 {
			t.Fatalf("the store holds %d sessions after a wrong code, want 0", n)
		}
		sess, err := f.M.CompleteLogin(ctx, c.Token, right)
		if err != nil {
			t.Fatalf("CompleteLogin(right code): %v", err)
		}
		want := []users.AuthMethod{users.MethodPassword, users.MethodTOTP}
		if !slices.Equal(sess.Methods, want) || !sess.SecondFactorAt.Equal(f.Clock.Now()) {
			t.Errorf("session Methods %v SecondFactorAt %v, want %v and now", sess.Methods, sess.SecondFactorAt, want)
		}
		got, err := f.M.ValidateToken(ctx, sess.Token)
		if err != nil {
			t.Fatalf("ValidateToken: %v", err)
		}
		if !slices.Equal(got.Methods, want) || !got.SecondFactorAt.Equal(sess.SecondFactorAt) {
			t.Errorf("ValidateToken: Methods %v SecondFactorAt %v, want %v and %v", got.Methods, got.SecondFactorAt, want, sess.SecondFactorAt)
		}
		if _, err := f.M.CompleteLogin(ctx, c.Token, TOTPCode(t, secret, f.Clock.Now().Add(30*time.Second))); !errors.Is(err, users.ErrInvalidToken) {
			t.Errorf("CompleteLogin with a used challenge = %v, want ErrInvalidToken", err)
		}
	}},

	{"ValidatedMethodsAreTheCallers", "the Methods of the Session ValidateToken returns are the caller's: changing them changes neither what the store holds nor what the next ValidateToken of this or another session reports", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, WithMFAKey)
		ctx := t.Context()
		plain := f.user(t)
		two := f.user(t)
		secret, _ := f.MustEnrolTOTP(t, two.ID)
		c := f.MustChallenge(t, two.Email)
		second, err := f.M.CompleteLogin(ctx, c.Token, TOTPCode(t, secret, f.Clock.Now()))
		if err != nil {
			t.Fatalf("CompleteLogin: %v", err)
		}
		sessions := []struct {
			token string
			want  []users.AuthMethod
		}{
			{f.MustLogin(t, plain.Email, Password).Token, []users.AuthMethod{users.MethodPassword}},
			{f.MustLogin(t, plain.Email, Password).Token, []users.AuthMethod{users.MethodPassword}},
			{second.Token, []users.AuthMethod{users.MethodPassword, users.MethodTOTP}},
		}
		for _, x := range sessions {
			v, err := f.M.ValidateToken(ctx, x.token)
			if err != nil {
				t.Fatalf("ValidateToken: %v", err)
			}
			for i := range v.Methods {
				v.Methods[i] = "changed"
			}
		}
		for _, x := range sessions {
			v, err := f.M.ValidateToken(ctx, x.token)
			if err != nil {
				t.Fatalf("ValidateToken: %v", err)
			}
			if !slices.Equal(v.Methods, x.want) {
				t.Errorf("ValidateToken after a caller changed an earlier Session's Methods: Methods %v, want %v", v.Methods, x.want)
			}
			rec, err := getSessionInto(ctx, f.Store, mgrTokenHash(x.token), new(users.UserRecord))
			if err != nil {
				t.Fatalf("GetSession: %v", err)
			}
			if !slices.Equal(rec.Methods, x.want) {
				t.Errorf("the store holds Methods %v after a caller changed a Session's, want %v", rec.Methods, x.want)
			}
		}
	}},

	{"MagicLinkNeedsSecondFactor", "LoginWithMagicLink of a user with a second factor returns a *Challenge too, and the session it completes to starts with email_link", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, WithMFAKey)
		u := f.user(t)
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		_, err := f.M.LoginWithMagicLink(t.Context(), f.requestMagicLink(t, u))
		var c *users.Challenge
		if !errors.As(err, &c) {
			t.Fatalf("LoginWithMagicLink = %v, want a *Challenge", err)
		}
		sess, err := f.M.CompleteLogin(t.Context(), c.Token, TOTPCode(t, secret, f.Clock.Now()))
		if err != nil {
			t.Fatalf("CompleteLogin: %v", err)
		}
		if want := []users.AuthMethod{users.MethodEmailLink, users.MethodTOTP}; !slices.Equal(sess.Methods, want) {
			t.Errorf("Methods = %v, want %v", sess.Methods, want)
		}
	}},

	{"CodeNotReplayable", "a TOTP code once accepted is refused for the rest of its window, as is the code of any earlier step; the next step's code works", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, WithMFAKey)
		ctx := t.Context()
		u := f.user(t)
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		code := TOTPCode(t, secret, f.Clock.Now())
		if _, err := f.M.CompleteLogin(ctx, f.MustChallenge(t, u.Email).Token, code); err != nil {
			t.Fatalf("CompleteLogin: %v", err)
		}
		if _, err := f.M.CompleteLogin(ctx, f.MustChallenge(t, u.Email).Token, code); !errors.Is(err, users.ErrInvalidCode) {
			t.Errorf("the same code again = %v, want ErrInvalidCode", err)
		}
		f.Clock.Advance(30 * time.Second) // the used code is still within the skew
		if _, err := f.M.CompleteLogin(ctx, f.MustChallenge(t, u.Email).Token, code); !errors.Is(err, users.ErrInvalidCode) {
			t.Errorf("the same code a step later = %v, want ErrInvalidCode", err)
		}
		earlier := TOTPCode(t, secret, f.Clock.Now().Add(-60*time.Second))
		if _, err := f.M.CompleteLogin(ctx, f.MustChallenge(t, u.Email).Token, earlier); !errors.Is(err, users.ErrInvalidCode) {
			t.Errorf("the code of an earlier step = %v, want ErrInvalidCode", err)
		}
		if _, err := f.M.CompleteLogin(ctx, f.MustChallenge(t, u.Email).Token, TOTPCode(t, secret, f.Clock.Now())); err != nil {
			t.Errorf("the next step's code: %v", err)
		}
	}},

	{"RecoveryCodeOnce", "a recovery code completes a login once (Methods [password recovery_code]) and is refused after, also when many challenges race with it; MFAStatus counts what is left", func(t *testing.T, s *mgrSuite, _ string) {
		// Every login and code counts towards the lock: leave room for them all.
		f := s.fixture(t, func(o *users.Options) { WithMFAKey(o); o.MaxFailedLogins = 50 })
		ctx := t.Context()
		u := f.user(t)
		_, codes := f.MustEnrolTOTP(t, u.ID)
		sess, err := f.M.CompleteLogin(ctx, f.MustChallenge(t, u.Email).Token, codes[0])
		if err != nil {
			t.Fatalf("CompleteLogin(recovery code): %v", err)
		}
		if want := []users.AuthMethod{users.MethodPassword, users.MethodRecoveryCode}; !slices.Equal(sess.Methods, want) {
			t.Errorf("Methods = %v, want %v", sess.Methods, want)
		}
		if _, err := f.M.CompleteLogin(ctx, f.MustChallenge(t, u.Email).Token, codes[0]); !errors.Is(err, users.ErrInvalidCode) {
			t.Errorf("a used recovery code = %v, want ErrInvalidCode", err)
		}
		challenges := make([]string, 6)
		for i := range challenges {
			challenges[i] = f.MustChallenge(t, u.Email).Token
		}
		errs := make([]error, len(challenges))
		start(len(errs), func(i int) { _, errs[i] = f.M.CompleteLogin(ctx, challenges[i], codes[1]) })
		ExactlyOne(t, errs, users.ErrInvalidCode, "one recovery code racing in several challenges")
		st, err := f.M.MFAStatus(ctx, u.ID)
		if err != nil {
			t.Fatalf("MFAStatus: %v", err)
		}
		if st.RecoveryCodesLeft != users.RecoveryCodeCount-2 {
			t.Errorf("RecoveryCodesLeft = %d, want %d", st.RecoveryCodesLeft, users.RecoveryCodeCount-2)
		}
	}},

	{"ChallengeAttemptsAndExpiry", "a challenge dies after MaxChallengeAttempts codes, and after ChallengeTTL: then even the right code gives ErrInvalidToken", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, func(o *users.Options) { WithMFAKey(o); o.MaxFailedLogins = 50 })
		ctx := t.Context()
		u := f.user(t)
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		c := f.MustChallenge(t, u.Email)
		for i := range users.MaxChallengeAttempts {
			if _, err := f.M.CompleteLogin(ctx, c.Token, WrongTOTPCode(t, secret, f.Clock.Now(), i)); !errors.Is(err, users.ErrInvalidCode) {
				t.Fatalf("wrong code %d = %v, want ErrInvalidCode", i, err)
			}
		}
		if _, err := f.M.CompleteLogin(ctx, c.Token, TOTPCode(t, secret, f.Clock.Now())); !errors.Is(err, users.ErrInvalidToken) {
			t.Errorf("the right code after %d attempts = %v, want ErrInvalidToken", users.MaxChallengeAttempts, err)
		}
		c = f.MustChallenge(t, u.Email)
		f.Clock.Advance(users.ChallengeTTL)
		if _, err := f.M.CompleteLogin(ctx, c.Token, TOTPCode(t, secret, f.Clock.Now())); !errors.Is(err, users.ErrInvalidToken) {
			t.Errorf("the right code after ChallengeTTL = %v, want ErrInvalidToken", err)
		}
	}},

	{"LastAttemptRedeems", "a challenge allows exactly MaxChallengeAttempts codes: after MaxChallengeAttempts-1 wrong ones, the right TOTP code and (on another challenge) a right recovery code each get a session, the recovery code spent with it", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, func(o *users.Options) { WithMFAKey(o); o.MaxFailedLogins = 50 })
		ctx := t.Context()
		u := f.user(t)
		secret, codes := f.MustEnrolTOTP(t, u.ID)
		for _, right := range []struct{ name, code string }{
			{"TOTP code", TOTPCode(t, secret, f.Clock.Now())},
			{"recovery code", codes[0]},
		} {
			c := f.MustChallenge(t, u.Email)
			for i := range users.MaxChallengeAttempts - 1 {
				if _, err := f.M.CompleteLogin(ctx, c.Token, WrongTOTPCode(t, secret, f.Clock.Now(), i)); !errors.Is(err, users.ErrInvalidCode) {
					t.Fatalf("wrong code %d = %v, want ErrInvalidCode", i, err)
				}
			}
			if _, err := f.M.CompleteLogin(ctx, c.Token, right.code); err != nil {
				t.Errorf("the right %s on attempt %d of %d: %v", right.name, users.MaxChallengeAttempts, users.MaxChallengeAttempts, err)
			}
		}
		if st, err := f.M.MFAStatus(ctx, u.ID); err != nil || st.RecoveryCodesLeft != users.RecoveryCodeCount-1 {
			t.Errorf("MFAStatus = %+v, %v; want %d recovery codes left", st, err, users.RecoveryCodeCount-1)
		}
	}},

	{"RecoveryCodeKeptWithoutSession", "a right recovery code that gets no session (its challenge out of attempts, or won by a concurrent completion) is not spent: MFAStatus counts it still", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, func(o *users.Options) { WithMFAKey(o); o.MaxFailedLogins = 50 })
		ctx := t.Context()
		u := f.user(t)
		secret, codes := f.MustEnrolTOTP(t, u.ID)
		left := func() int {
			t.Helper()
			st, err := f.M.MFAStatus(ctx, u.ID)
			if err != nil {
				t.Fatalf("MFAStatus: %v", err)
			}
			return st.RecoveryCodesLeft
		}
		c := f.MustChallenge(t, u.Email)
		for i := range users.MaxChallengeAttempts {
			if _, err := f.M.CompleteLogin(ctx, c.Token, WrongTOTPCode(t, secret, f.Clock.Now(), i)); !errors.Is(err, users.ErrInvalidCode) {
				t.Fatalf("wrong code %d = %v, want ErrInvalidCode", i, err)
			}
		}
		if _, err := f.M.CompleteLogin(ctx, c.Token, codes[0]); !errors.Is(err, users.ErrInvalidToken) {
			t.Errorf("a right recovery code after %d wrong codes = %v, want ErrInvalidToken", users.MaxChallengeAttempts, err)
		}
		if n := left(); n != users.RecoveryCodeCount {
			t.Errorf("after a refused completion: %d recovery codes left, want %d", n, users.RecoveryCodeCount)
		}
		// 20 rounds, as the other Manager races: each costs a password login.
		rounds(20, 2*time.Second, func() {
			codes, err := f.M.RegenerateRecoveryCodes(ctx, u.ID)
			if err != nil {
				t.Fatalf("RegenerateRecoveryCodes: %v", err)
			}
			c := f.MustChallenge(t, u.Email)
			errs := make([]error, 4)
			start(len(errs), func(i int) { _, errs[i] = f.M.CompleteLogin(ctx, c.Token, codes[i]) })
			ExactlyOne(t, errs, users.ErrInvalidToken, "different recovery codes racing in one challenge")
			if n := left(); n != users.RecoveryCodeCount-1 {
				t.Errorf("after %d recovery codes raced in one challenge: %d left, want %d (only the winner's spent)", len(errs), n, users.RecoveryCodeCount-1)
			}
		})
	}},

	{"ConcurrentRightCompletionsOneSession", "of 8 concurrent completions of one challenge with the right code, exactly one gets a session; the others get ErrInvalidToken or ErrInvalidCode", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, func(o *users.Options) { WithMFAKey(o); o.MaxFailedLogins = 50 })
		ctx := t.Context()
		u := f.user(t)
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		n := 0
		rounds(20, 2*time.Second, func() { // as RecoveryCodeKeptWithoutSession
			round := n
			n++
			c := f.MustChallenge(t, u.Email)
			code := TOTPCode(t, secret, f.Clock.Now())
			errs := make([]error, 8)
			start(len(errs), func(i int) { _, errs[i] = f.M.CompleteLogin(ctx, c.Token, code) })
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, users.ErrInvalidToken) && !errors.Is(err, users.ErrInvalidCode):
					t.Errorf("round %d, call %d: %v, want a session, ErrInvalidToken or ErrInvalidCode", round, i, err)
				}
			}
			if won != 1 {
				t.Errorf("round %d: %d of %d concurrent right completions got a session, want exactly 1", round, won, len(errs))
			}
			f.Clock.Advance(30 * time.Second) // the next round's code is a new step
		})
		if got := f.storedSessions(t, u.ID); got != n {
			t.Errorf("the store holds %d sessions after %d rounds, want %d", got, n, n)
		}
	}},

	{"StepUp", "StepUp with a right code sets an existing session's SecondFactorAt and adds the factor to its Methods, as ValidateToken then reports; a wrong code changes nothing", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, WithMFAKey)
		ctx := t.Context()
		u := f.user(t)
		sess := f.MustLogin(t, u.Email, Password) // before enrolling: one factor
		if !slices.Equal(sess.Methods, []users.AuthMethod{users.MethodPassword}) || !sess.SecondFactorAt.IsZero() {
			t.Errorf("one-factor session: Methods %v SecondFactorAt %v, want [password] and zero", sess.Methods, sess.SecondFactorAt)
		}
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		if _, err := f.M.StepUp(ctx, sess.Token, "12345"); !errors.Is(err, users.ErrInvalidCode) {
			t.Errorf("StepUp(malformed code) = %v, want ErrInvalidCode", err)
		}
		got, err := f.M.StepUp(ctx, sess.Token, TOTPCode(t, secret, f.Clock.Now()))
		if err != nil {
			t.Fatalf("StepUp: %v", err)
		}
		want := []users.AuthMethod{users.MethodPassword, users.MethodTOTP}
		if !slices.Equal(got.Methods, want) || !got.SecondFactorAt.Equal(f.Clock.Now()) {
			t.Errorf("StepUp: Methods %v SecondFactorAt %v, want %v and now", got.Methods, got.SecondFactorAt, want)
		}
		v, err := f.M.ValidateToken(ctx, sess.Token)
		if err != nil {
			t.Fatalf("ValidateToken: %v", err)
		}
		if !slices.Equal(v.Methods, want) || !v.SecondFactorAt.Equal(got.SecondFactorAt) {
			t.Errorf("ValidateToken after StepUp: Methods %v SecondFactorAt %v", v.Methods, v.SecondFactorAt)
		}
	}},

	{"SecretSealed", "the store never holds the TOTP secret in the clear: the record's Secret is sealed and does not contain the secret's bytes", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, WithMFAKey)
		u := f.user(t)
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
		if err != nil {
			t.Fatalf("decoding the secret: %v", err)
		}
		rec, err := f.Store.GetMFA(t.Context(), u.ID)
		if err != nil {
			t.Fatalf("GetMFA: %v", err)
		}
		if rec.TOTP == nil || rec.TOTP.KeyID != MFAKey.ID {
			t.Fatalf("TOTP = %+v, want a factor sealed under %q", rec.TOTP, MFAKey.ID)
		}
		for _, b := range [][]byte{raw, raw[:8], raw[12:], []byte(secret)} {
			if bytes.Contains(rec.TOTP.Secret, b) {
				t.Errorf("the stored secret contains the secret's bytes %x", b)
			}
		}
	}},
}, mgrChallengeVoidRules()...)

// mgrChallengeVoiders are the changes that void a user's outstanding challenges.
var mgrChallengeVoiders = []struct {
	name string
	void func(t *testing.T, f *Fixture, u *users.User, secret string)
}{
	{"SetPassword", func(t *testing.T, f *Fixture, u *users.User, _ string) {
		must(t, f.M.SetPassword(t.Context(), u.ID, NewPassword))
	}},
	{"UpdatePassword", func(t *testing.T, f *Fixture, u *users.User, _ string) {
		must(t, f.M.UpdatePassword(t.Context(), u.ID, Password, NewPassword))
	}},
	{"ResetPassword", func(t *testing.T, f *Fixture, u *users.User, _ string) {
		must(t, f.M.ResetPassword(t.Context(), f.requestReset(t, u), NewPassword))
	}},
	{"Suspension", func(t *testing.T, f *Fixture, u *users.User, _ string) {
		st := users.StatusSuspended
		_, err := f.M.Update(t.Context(), u.ID, users.UserUpdate{Status: &st})
		must(t, err)
		st = users.StatusActive
		_, err = f.M.Update(t.Context(), u.ID, users.UserUpdate{Status: &st})
		must(t, err)
	}},
	{"LogoutAll", func(t *testing.T, f *Fixture, u *users.User, _ string) {
		must(t, f.M.LogoutAll(t.Context(), u.ID))
	}},
	{"DisableMFA", func(t *testing.T, f *Fixture, u *users.User, _ string) {
		must(t, f.M.DisableMFA(t.Context(), u.ID, Password, ""))
	}},
	{"ResetMFA", func(t *testing.T, f *Fixture, u *users.User, _ string) {
		must(t, f.M.ResetMFA(t.Context(), u.ID))
	}},
}

// mgrChallengeVoidRules has one rule per change that voids challenges.
func mgrChallengeVoidRules() []rule[*mgrSuite] {
	var rules []rule[*mgrSuite]
	for _, v := range mgrChallengeVoiders {
		rules = append(rules, rule[*mgrSuite]{"ChallengeVoidedBy" + v.name, v.name + " voids the user's outstanding challenges: the right code then gives ErrInvalidToken", func(t *testing.T, s *mgrSuite, _ string) {
			f := s.fixture(t, WithMFAKey)
			u := f.user(t)
			secret, _ := f.MustEnrolTOTP(t, u.ID)
			c := f.MustChallenge(t, u.Email)
			v.void(t, f, u, secret)
			if _, err := f.M.CompleteLogin(t.Context(), c.Token, TOTPCode(t, secret, f.Clock.Now())); !errors.Is(err, users.ErrInvalidToken) {
				t.Errorf("CompleteLogin after %s = %v, want ErrInvalidToken", v.name, err)
			}
		}})
	}
	return rules
}
