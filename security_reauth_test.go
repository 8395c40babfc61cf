package users_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// actingAs returns ctx carrying the session of token as ValidateToken sees it
// now, as Manager.Middleware puts it there for a request.
func actingAs(tb testing.TB, m *users.Manager, token string) context.Context {
	tb.Helper()
	s, err := m.ValidateToken(tb.Context(), token)
	if err != nil {
		tb.Fatalf("ValidateToken: %v", err)
	}
	return users.NewContext(tb.Context(), s)
}

// TestManager_StolenSessionCannotEnrolTOTP is the attack of issue 20, item 9:
// with only a session taken from its owner (no password, no factor), an
// attacker enrols their own authenticator, and the owner's next login then
// needs the attacker's codes. Once the session's proof is older than
// Options.ReauthWindow, BeginTOTP and ConfirmTOTP must refuse with
// ErrReauthRequired and store nothing; a wrong password does not help; the
// owner's password (Reauthenticate) lets the same session enrol.
func TestManager_StolenSessionCannotEnrolTOTP(t *testing.T) {
	f := newMFAFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	stolen := f.MustLogin(t, u.Email, storetest.Password)
	f.Clock.Advance(users.DefaultReauthWindow + time.Second)

	ctx := actingAs(t, f.M, stolen.Token)
	if _, err := f.M.BeginTOTP(ctx, u.ID); !errors.Is(err, users.ErrReauthRequired) {
		t.Fatalf("BeginTOTP with a session whose proof is stale = %v, want ErrReauthRequired", err)
	}
	if _, err := f.M.ConfirmTOTP(ctx, u.ID, "123456"); !errors.Is(err, users.ErrReauthRequired) {
		t.Errorf("ConfirmTOTP with a stale session = %v, want ErrReauthRequired", err)
	}
	st, err := f.M.MFAStatus(t.Context(), u.ID)
	if err != nil || st.Enabled || st.TOTPPending {
		t.Errorf("after the refused enrolment MFAStatus = %+v, %v; want nothing enrolled or pending", st, err)
	}
	if _, err := f.M.Reauthenticate(t.Context(), stolen.Token, "not the password"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("Reauthenticate with a wrong password = %v, want ErrInvalidCredentials", err)
	}
	if _, err := f.M.BeginTOTP(actingAs(t, f.M, stolen.Token), u.ID); !errors.Is(err, users.ErrReauthRequired) {
		t.Errorf("BeginTOTP after a wrong password = %v, want ErrReauthRequired", err)
	}

	s, err := f.M.Reauthenticate(t.Context(), stolen.Token, storetest.Password)
	if err != nil {
		t.Fatalf("Reauthenticate with the password: %v", err)
	}
	if !s.AuthenticatedAt.Equal(f.Clock.Now()) || s.ID != stolen.ID || s.Token != "" {
		t.Errorf("Reauthenticate = session %s AuthenticatedAt %v token %q; want the same session, now, no token", s.ID, s.AuthenticatedAt, s.Token)
	}
	ctx = actingAs(t, f.M, stolen.Token)
	e, err := f.M.BeginTOTP(ctx, u.ID)
	if err != nil {
		t.Fatalf("BeginTOTP right after Reauthenticate: %v", err)
	}
	if _, err := f.M.ConfirmTOTP(ctx, u.ID, storetest.TOTPCode(t, e.Secret, f.Clock.Now())); err != nil {
		t.Errorf("ConfirmTOTP right after Reauthenticate: %v", err)
	}
}

// TestManager_RecentAuthentication checks every change that needs a recent
// proof: with a session in ctx whose proof is older than the window it
// returns ErrReauthRequired and changes nothing; with a session proved exactly
// the window ago, or without a session in ctx (the application's own call),
// it is not refused.
func TestManager_RecentAuthentication(t *testing.T) {
	t.Parallel()
	type setup struct {
		t      testing.TB
		f      *Fixture
		u      *users.User
		codes  []string // recovery codes, for a user with a second factor
		secret string   // a TOTP enrolment begun by prepare
	}
	changes := []struct {
		name    string
		mfa     bool           // the user has a second factor
		prepare func(s *setup) // the application's own calls before the change
		call    func(ctx context.Context, s *setup) error
	}{
		{"BeginTOTP", false, nil, func(ctx context.Context, s *setup) error {
			_, err := s.f.M.BeginTOTP(ctx, s.u.ID)
			return err
		}},
		{"ConfirmTOTP", false, func(s *setup) {
			e, err := s.f.M.BeginTOTP(context.Background(), s.u.ID)
			must(s.t, err)
			s.secret = e.Secret
		}, func(ctx context.Context, s *setup) error {
			_, err := s.f.M.ConfirmTOTP(ctx, s.u.ID, storetest.TOTPCode(s.t, s.secret, s.f.Clock.Now()))
			return err
		}},
		{"DisableMFA", true, nil, func(ctx context.Context, s *setup) error {
			return s.f.M.DisableMFA(ctx, s.u.ID, storetest.Password, "")
		}},
		{"RegenerateRecoveryCodes", true, nil, func(ctx context.Context, s *setup) error {
			_, err := s.f.M.RegenerateRecoveryCodes(ctx, s.u.ID)
			return err
		}},
		{"ResetMFA", true, nil, func(ctx context.Context, s *setup) error {
			return s.f.M.ResetMFA(ctx, s.u.ID)
		}},
		{"UpdatePassword", false, nil, func(ctx context.Context, s *setup) error {
			return s.f.M.UpdatePassword(ctx, s.u.ID, storetest.Password, storetest.NewPassword)
		}},
		{"SetPassword", false, nil, func(ctx context.Context, s *setup) error {
			return s.f.M.SetPassword(ctx, s.u.ID, storetest.NewPassword)
		}},
		{"RequestEmailChange", false, nil, func(ctx context.Context, s *setup) error {
			_, err := s.f.M.RequestEmailChange(ctx, s.u.ID, storetest.Password, "elsewhere@example.com")
			return err
		}},
		{"UpdateEmail", false, nil, func(ctx context.Context, s *setup) error {
			e := "elsewhere@example.com"
			_, err := s.f.M.Update(ctx, s.u.ID, users.UserUpdate{Email: &e})
			return err
		}},
	}
	// state is what the changes change, and the audit log and throttle
	// state, to show that a refused change did nothing at all.
	state := func(t *testing.T, s *setup) string {
		ctx := t.Context()
		u, err := s.f.M.Get(ctx, s.u.ID)
		must(t, err)
		st, err := s.f.M.MFAStatus(ctx, s.u.ID)
		must(t, err)
		audit, err := s.f.M.Audit(ctx, users.AuditFilter{UserID: s.u.ID, Limit: 500})
		must(t, err)
		sessions, err := s.f.M.Sessions(ctx, s.u.ID)
		must(t, err)
		lock, err := s.f.M.LockState(ctx, s.u.ID)
		must(t, err)
		return fmt.Sprintf("%+v %+v %d entries %d sessions %+v", u, st, len(audit.Entries), len(sessions), lock)
	}
	// login logs the user in, completing the second factor if it has one,
	// and returns the session's token.
	login := func(t *testing.T, s *setup) string {
		if s.codes == nil {
			return s.f.MustLogin(t, s.u.Email, storetest.Password).Token
		}
		sess, err := s.f.M.CompleteLogin(t.Context(), s.f.MustChallenge(t, s.u.Email).Token, s.codes[0])
		must(t, err)
		return sess.Token
	}
	for _, c := range changes {
		newSetup := func(t *testing.T) *setup {
			f := newMFAFixture(t, nil)
			s := &setup{t: t, f: f, u: f.mustCreate(t, users.NewUser{Email: f.Email()})}
			if c.mfa {
				_, s.codes = f.MustEnrolTOTP(t, s.u.ID)
			}
			if c.prepare != nil {
				c.prepare(s)
			}
			return s
		}
		t.Run(c.name, func(t *testing.T) {
			t.Run("StaleSessionRefused", func(t *testing.T) {
				s := newSetup(t)
				token := login(t, s)
				age := users.DefaultReauthWindow + time.Nanosecond
				s.f.Clock.Advance(age)
				ctx := actingAs(t, s.f.M, token)
				before := state(t, s)
				if err := c.call(ctx, s); !errors.Is(err, users.ErrReauthRequired) {
					t.Fatalf("%s with a session whose proof is %v old = %v, want ErrReauthRequired", c.name, age, err)
				}
				if after := state(t, s); after != before {
					t.Errorf("%s refused with ErrReauthRequired changed something:\nbefore %s\n after %s", c.name, before, after)
				}
			})
			t.Run("FreshSessionAllowed", func(t *testing.T) {
				s := newSetup(t)
				token := login(t, s)
				s.f.Clock.Advance(users.DefaultReauthWindow) // exactly the window: still recent
				if err := c.call(actingAs(t, s.f.M, token), s); err != nil {
					t.Errorf("%s with a session proved %v ago = %v, want success", c.name, users.DefaultReauthWindow, err)
				}
			})
			t.Run("NoSessionNotChecked", func(t *testing.T) {
				s := newSetup(t)
				login(t, s)
				s.f.Clock.Advance(time.Hour)
				if err := c.call(t.Context(), s); err != nil {
					t.Errorf("%s without a session in ctx = %v, want success", c.name, err)
				}
			})
		})
	}
}

// TestManager_AuthenticatedAt checks that every login sets the session's
// AuthenticatedAt to now (a password, a magic link, an accepted invitation, a
// completed second factor), that ValidateToken and Sessions report it, and
// that StepUp and Reauthenticate move it and nothing else does (a touch).
func TestManager_AuthenticatedAt(t *testing.T) {
	f := newMFAFixture(t, nil)
	ctx := t.Context()
	// want checks the session of token, and returned (what the call that
	// moved it returned) when not nil.
	want := func(name, token string, returned *users.Session, at time.Time) {
		t.Helper()
		if returned != nil && !returned.AuthenticatedAt.Equal(at) {
			t.Errorf("%s: AuthenticatedAt = %v, want %v", name, returned.AuthenticatedAt, at)
		}
		v, err := f.M.ValidateToken(ctx, token)
		if err != nil || !v.AuthenticatedAt.Equal(at) {
			t.Errorf("%s: ValidateToken says AuthenticatedAt %v, %v; want %v", name, v.AuthenticatedAt, err, at)
		}
	}
	u := f.mustCreate(t, users.NewUser{Email: f.Email()})
	pw := f.MustLogin(t, u.Email, storetest.Password)
	want("Login", pw.Token, pw, f.Clock.Now())

	f.Clock.Advance(time.Minute)
	d, err := f.M.RequestMagicLink(ctx, u.Email)
	must(t, err)
	link, err := f.M.LoginWithMagicLink(ctx, d.Token)
	must(t, err)
	want("LoginWithMagicLink", link.Token, link, f.Clock.Now())

	f.Clock.Advance(time.Minute)
	invited, token, err := f.M.Invite(ctx, users.NewUser{Email: f.Email()})
	must(t, err)
	inv, err := f.M.AcceptInvitation(ctx, token, storetest.NewPassword)
	must(t, err)
	want("AcceptInvitation", inv.Token, inv, f.Clock.Now())

	f.Clock.Advance(time.Minute)
	_, codes := f.MustEnrolTOTP(t, invited.ID)
	ch, err := f.M.Login(ctx, invited.Email, storetest.NewPassword)
	var c *users.Challenge
	if !errors.As(err, &c) {
		t.Fatalf("Login of a user with TOTP = %v, %v; want a challenge", ch, err)
	}
	f.Clock.Advance(time.Minute) // the proof is the second factor's, not the password's
	done, err := f.M.CompleteLogin(ctx, c.Token, codes[0])
	must(t, err)
	want("CompleteLogin", done.Token, done, f.Clock.Now())

	loggedIn := f.Clock.Now()
	f.Clock.Advance(5 * time.Minute) // ValidateToken touches the session: AuthenticatedAt stays
	want("a touch", done.Token, nil, loggedIn)
	up, err := f.M.StepUp(ctx, done.Token, codes[1])
	must(t, err)
	if !up.AuthenticatedAt.Equal(f.Clock.Now()) || !up.SecondFactorAt.Equal(f.Clock.Now()) {
		t.Errorf("StepUp: AuthenticatedAt %v SecondFactorAt %v, want both now", up.AuthenticatedAt, up.SecondFactorAt)
	}
	want("StepUp", done.Token, up, f.Clock.Now())

	f.Clock.Advance(time.Minute)
	re, err := f.M.Reauthenticate(ctx, done.Token, storetest.NewPassword)
	must(t, err)
	if !re.AuthenticatedAt.Equal(f.Clock.Now()) || !re.SecondFactorAt.Equal(up.SecondFactorAt) {
		t.Errorf("Reauthenticate: AuthenticatedAt %v SecondFactorAt %v; want now and the step-up's %v", re.AuthenticatedAt, re.SecondFactorAt, up.SecondFactorAt)
	}
	want("Reauthenticate", done.Token, re, f.Clock.Now())
	ss, err := f.M.Sessions(ctx, invited.ID)
	must(t, err)
	for _, s := range ss {
		if s.ID == done.ID && !s.AuthenticatedAt.Equal(f.Clock.Now()) {
			t.Errorf("Sessions: AuthenticatedAt %v, want %v", s.AuthenticatedAt, f.Clock.Now())
		}
	}
}

// TestManager_Reauthenticate checks Reauthenticate's refusals: a token that
// names no live session, a wrong password (counted: the account locks and
// then even the right password is refused), and a session revoked by a
// password change.
func TestManager_Reauthenticate(t *testing.T) {
	t.Run("ErrInvalidToken", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: f.Email()})
		s := f.MustLogin(t, u.Email, storetest.Password)
		must(t, f.M.Logout(t.Context(), s.Token))
		for _, token := range []string{"", "garbage", s.Token} {
			if _, err := f.M.Reauthenticate(t.Context(), token, storetest.Password); !errors.Is(err, users.ErrInvalidToken) {
				t.Errorf("Reauthenticate(%q) = %v, want ErrInvalidToken", token, err)
			}
		}
	})
	t.Run("Throttled", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.MaxFailedLogins = 3 })
		u := f.mustCreate(t, users.NewUser{Email: f.Email()})
		s := f.MustLogin(t, u.Email, storetest.Password)
		for range 3 {
			if _, err := f.M.Reauthenticate(t.Context(), s.Token, "wrong password"); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Fatalf("Reauthenticate with a wrong password = %v, want ErrInvalidCredentials", err)
			}
		}
		before := f.Compares.Load()
		if _, err := f.M.Reauthenticate(t.Context(), s.Token, storetest.Password); !errors.Is(err, users.ErrAccountLocked) {
			t.Errorf("Reauthenticate after 3 wrong passwords = %v, want ErrAccountLocked", err)
		}
		if n := f.Compares.Load() - before; n != 0 {
			t.Errorf("a locked Reauthenticate compared %d passwords, want 0", n)
		}
	})
	t.Run("SecondFactorUserNotLocked", func(t *testing.T) {
		f := newMFAFixture(t, func(o *users.Options) { o.MaxFailedLogins = 3 })
		u := f.mustCreate(t, users.NewUser{Email: f.Email()})
		_, codes := f.MustEnrolTOTP(t, u.ID)
		s, err := f.M.CompleteLogin(t.Context(), f.MustChallenge(t, u.Email).Token, codes[0])
		must(t, err)
		for i := range 10 {
			if _, err := f.M.Reauthenticate(t.Context(), s.Token, storetest.Password); err != nil {
				t.Fatalf("Reauthenticate %d of a user with a second factor: %v (a right password counted as a failure?)", i+1, err)
			}
		}
	})
	t.Run("RevokedMeanwhile", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: f.Email()})
		s := f.MustLogin(t, u.Email, storetest.Password)
		must(t, f.M.UpdatePassword(t.Context(), u.ID, storetest.Password, storetest.NewPassword))
		if _, err := f.M.Reauthenticate(t.Context(), s.Token, storetest.NewPassword); !errors.Is(err, users.ErrInvalidToken) {
			t.Errorf("Reauthenticate of a session the password change ended = %v, want ErrInvalidToken", err)
		}
	})
	t.Run("Audited", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: f.Email()})
		s := f.MustLogin(t, u.Email, storetest.Password)
		_, err := f.M.Reauthenticate(t.Context(), s.Token, storetest.Password)
		must(t, err)
		p, err := f.M.Audit(t.Context(), users.AuditFilter{UserID: u.ID, Types: []users.EventType{users.EventReauthenticated}})
		must(t, err)
		if len(p.Entries) != 1 || p.Entries[0].SessionID != s.ID {
			t.Errorf("session.reauthenticated entries = %+v, want one naming session %s", p.Entries, s.ID)
		}
	})
}

// TestOptions_ReauthWindow checks the window's configuration: a set window
// replaces the default, and a negative one turns the check off.
func TestOptions_ReauthWindow(t *testing.T) {
	for _, c := range []struct {
		window, age time.Duration
		refused     bool
	}{
		{0, users.DefaultReauthWindow, false},
		{0, users.DefaultReauthWindow + time.Second, true},
		{time.Minute, time.Minute, false},
		{time.Minute, time.Minute + time.Second, true},
		{-1, 23 * time.Hour, false},
	} {
		f := newMFAFixture(t, func(o *users.Options) { o.ReauthWindow = c.window })
		u := f.mustCreate(t, users.NewUser{Email: f.Email()})
		s := f.MustLogin(t, u.Email, storetest.Password)
		f.Clock.Advance(c.age)
		_, err := f.M.BeginTOTP(actingAs(t, f.M, s.Token), u.ID)
		if got := errors.Is(err, users.ErrReauthRequired); got != c.refused || (!got && err != nil) {
			t.Errorf("ReauthWindow %v, proof %v old: BeginTOTP = %v, want refused %v", c.window, c.age, err, c.refused)
		}
	}
}
