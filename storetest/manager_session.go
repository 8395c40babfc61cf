package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/userkit/users"
)

// The session-lifetime and trusted-device rules of RunManager: what a sign-in
// asks of its session (SessionOptions) holds to the nanosecond on the fake
// clock, and a trusted device skips the second step only for its own user,
// until it is revoked, on every store.

// mgrWantLive checks that token validates (ValidateToken moves its LastSeenAt).
func (f *Fixture) mgrWantLive(t *testing.T, token, when string) {
	t.Helper()
	if _, err := f.M.ValidateToken(t.Context(), token); err != nil {
		t.Fatalf("ValidateToken %s = %v, want the session live", when, err)
	}
}

// mgrWantDead checks that token no longer validates.
func (f *Fixture) mgrWantDead(t *testing.T, token, when string) {
	t.Helper()
	if _, err := f.M.ValidateToken(t.Context(), token); !errors.Is(err, users.ErrInvalidToken) {
		t.Fatalf("ValidateToken %s = %v, want ErrInvalidToken", when, err)
	}
}

// login logs u in with Password and the SessionOptions o.
func (f *Fixture) login(t *testing.T, u *users.User, o users.SessionOptions) *users.Session {
	t.Helper()
	s, err := f.M.Login(users.WithSessionOptions(t.Context(), o), u.Email, Password)
	if err != nil {
		t.Fatalf("Login(%+v): %v", o, err)
	}
	return s
}

var mgrSessionLifetimeRules = []rule[*mgrSuite]{
	{"OrdinaryByDefault", "A login without SessionOptions makes a session that ends Options.SessionTTL after login and, with Options.SessionIdleTimeout, that long after it was last validated, to the nanosecond", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, func(o *users.Options) { o.SessionTTL, o.SessionIdleTimeout = 3*time.Hour, time.Hour })
		u := f.user(t)
		sess := f.MustLogin(t, u.Email, Password)
		if want := f.Clock.Now().Add(3 * time.Hour); !sess.ExpiresAt.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v", sess.ExpiresAt, want)
		}
		f.Clock.Advance(time.Hour - time.Nanosecond)
		f.mgrWantLive(t, sess.Token, "a nanosecond before the idle timeout")
		f.Clock.Advance(time.Hour)
		f.mgrWantDead(t, sess.Token, "an idle hour after it was last validated")
	}},
	{"RememberedSlidesToTheAbsoluteCap", "A remembered session (SessionOptions.Remember) ends Options.RememberSessionTTL (default 30 days) after login however often it is used: validating it moves its idle timeout, never its ExpiresAt", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		u := f.user(t)
		start := f.Clock.Now()
		sess := f.login(t, u, users.SessionOptions{Remember: true})
		if want := start.Add(users.DefaultRememberSessionTTL); !sess.ExpiresAt.Equal(want) {
			t.Fatalf("ExpiresAt = %v, want login + %v = %v", sess.ExpiresAt, users.DefaultRememberSessionTTL, want)
		}
		for f.Clock.Now().Add(6 * 24 * time.Hour).Before(sess.ExpiresAt) {
			f.Clock.Advance(6 * 24 * time.Hour) // within the 7-day idle timeout
			f.mgrWantLive(t, sess.Token, "six days after it was last used")
		}
		f.Clock.Advance(sess.ExpiresAt.Sub(f.Clock.Now()) - time.Nanosecond)
		f.mgrWantLive(t, sess.Token, "a nanosecond before ExpiresAt")
		if got, err := f.M.ValidateToken(t.Context(), sess.Token); err != nil || !got.ExpiresAt.Equal(sess.ExpiresAt) {
			t.Fatalf("ValidateToken = %v, %v; want ExpiresAt still %v", got, err, sess.ExpiresAt)
		}
		f.Clock.Advance(time.Nanosecond)
		f.mgrWantDead(t, sess.Token, "at ExpiresAt, though used a nanosecond before")
	}},
	{"RememberedIdleTimeout", "A remembered session ends Options.RememberIdleTimeout (default 7 days) after it was last validated, to the nanosecond, while an ordinary session of the same Manager has no idle timeout", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, func(o *users.Options) { o.SessionTTL = 60 * 24 * time.Hour })
		u := f.user(t)
		remembered := f.login(t, u, users.SessionOptions{Remember: true})
		ordinary := f.login(t, u, users.SessionOptions{})
		f.Clock.Advance(users.DefaultRememberIdleTimeout - time.Nanosecond)
		f.mgrWantLive(t, remembered.Token, "a nanosecond before the remembered idle timeout")
		f.Clock.Advance(users.DefaultRememberIdleTimeout)
		f.mgrWantDead(t, remembered.Token, "the remembered idle timeout after it was last validated")
		f.mgrWantLive(t, ordinary.Token, "after two weeks idle (no idle timeout)")
		if ss, err := f.M.Sessions(t.Context(), u.ID); err != nil || len(ss) != 1 || ss[0].ID != ordinary.ID {
			t.Errorf("Sessions = %v, %v; want only the ordinary session", ss, err)
		}
	}},
	{"ShortSession", "SessionOptions.MaxTTL and MaxIdle shorten a session (a shared computer) to the nanosecond, and give it an idle timeout where its kind has none", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		u := f.user(t)
		start := f.Clock.Now()
		sess := f.login(t, u, users.SessionOptions{MaxTTL: time.Hour, MaxIdle: 10 * time.Minute})
		if want := start.Add(time.Hour); !sess.ExpiresAt.Equal(want) {
			t.Fatalf("ExpiresAt = %v, want %v", sess.ExpiresAt, want)
		}
		f.Clock.Advance(10*time.Minute - time.Nanosecond)
		f.mgrWantLive(t, sess.Token, "a nanosecond before MaxIdle")
		f.Clock.Advance(10*time.Minute - time.Nanosecond)
		f.mgrWantLive(t, sess.Token, "a nanosecond before MaxIdle again")
		f.Clock.Advance(10 * time.Minute)
		f.mgrWantDead(t, sess.Token, "MaxIdle after it was last validated")

		again := f.login(t, u, users.SessionOptions{MaxTTL: time.Hour})
		for range 6 {
			f.Clock.Advance(10 * time.Minute)
			if f.Clock.Now().Before(again.ExpiresAt) {
				f.mgrWantLive(t, again.Token, "within MaxTTL")
			}
		}
		f.mgrWantDead(t, again.Token, "MaxTTL after login")
	}},
	{"OptionsNeverLengthen", "MaxTTL and MaxIdle only shorten: larger values leave the session its kind's lifetime and idle timeout", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, func(o *users.Options) { o.SessionIdleTimeout = time.Hour })
		u := f.user(t)
		start := f.Clock.Now()
		sess := f.login(t, u, users.SessionOptions{MaxTTL: 48 * time.Hour, MaxIdle: 2 * time.Hour})
		if want := start.Add(24 * time.Hour); !sess.ExpiresAt.Equal(want) {
			t.Errorf("ExpiresAt = %v, want the default 24 hours: %v", sess.ExpiresAt, want)
		}
		f.Clock.Advance(time.Hour)
		f.mgrWantDead(t, sess.Token, "an idle hour on (Options.SessionIdleTimeout, not the longer MaxIdle)")
		rem := f.login(t, u, users.SessionOptions{Remember: true, MaxTTL: 90 * 24 * time.Hour})
		if want := f.Clock.Now().Add(users.DefaultRememberSessionTTL); !rem.ExpiresAt.Equal(want) {
			t.Errorf("remembered ExpiresAt = %v, want %v", rem.ExpiresAt, want)
		}
	}},
	{"NegativeOptionsRefused", "Negative SessionOptions are a *ValidationError naming the field, returned before the password is checked: no session is stored and the user's LastLoginAt stays zero", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		u := f.user(t)
		for field, o := range map[string]users.SessionOptions{
			"session.MaxTTL":  {MaxTTL: -time.Nanosecond},
			"session.MaxIdle": {Remember: true, MaxIdle: -time.Hour},
		} {
			_, err := f.M.Login(users.WithSessionOptions(t.Context(), o), u.Email, Password)
			var ve *users.ValidationError
			if !errors.As(err, &ve) || ve.Field != field || !errors.Is(err, users.ErrInvalidInput) {
				t.Errorf("Login(%+v) = %v, want a *ValidationError on %s", o, err, field)
			}
		}
		if n := f.storedSessions(t, u.ID); n != 0 {
			t.Errorf("the store holds %d sessions, want 0", n)
		}
		if got := f.MustGet(t, u.ID); !got.LastLoginAt.IsZero() {
			t.Errorf("LastLoginAt = %v, want zero: nothing stored", got.LastLoginAt)
		}
	}},
	{"EveryPathTakesThem", "CompleteLogin, LoginWithMagicLink and AcceptInvitation make the session their context's SessionOptions ask for, as Login does", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, WithMFAKey)
		ctx := users.WithSessionOptions(t.Context(), users.SessionOptions{Remember: true})
		want := func(what string, sess *users.Session, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if w := f.Clock.Now().Add(users.DefaultRememberSessionTTL); !sess.ExpiresAt.Equal(w) {
				t.Errorf("%s: ExpiresAt = %v, want a remembered session's %v", what, sess.ExpiresAt, w)
			}
		}
		u := f.user(t)
		sess, err := f.M.LoginWithMagicLink(ctx, f.requestMagicLink(t, u))
		want("LoginWithMagicLink", sess, err)
		_, token := f.invite(t)
		sess, err = f.M.AcceptInvitation(ctx, token, Password)
		want("AcceptInvitation", sess, err)
		mfa := f.user(t)
		secret, _ := f.MustEnrolTOTP(t, mfa.ID)
		c := f.MustChallenge(t, mfa.Email) // Login's context carries no options: CompleteLogin's decide
		sess, err = f.M.CompleteLogin(ctx, c.Token, TOTPCode(t, secret, f.Clock.Now()))
		want("CompleteLogin", sess, err)
	}},
}

// withTrust is an edit function that turns trusted devices on, with MFAKey.
func withTrust(o *users.Options) {
	WithMFAKey(o)
	o.TrustDevices = true
}

// trustedUser makes a user with a TOTP factor, completes a two-step login
// and trusts the device; it returns the user, the TOTP secret and the device.
func (f *Fixture) trustedUser(t *testing.T) (*users.User, string, *users.TrustedDevice) {
	t.Helper()
	u := f.user(t)
	secret, _ := f.MustEnrolTOTP(t, u.ID)
	c := f.MustChallenge(t, u.Email)
	sess, err := f.M.CompleteLogin(t.Context(), c.Token, TOTPCode(t, secret, f.Clock.Now()))
	if err != nil {
		t.Fatalf("CompleteLogin: %v", err)
	}
	d, err := f.M.TrustDevice(t.Context(), sess.Token)
	if err != nil {
		t.Fatalf("TrustDevice: %v", err)
	}
	if d.Token == "" || d.UserID != u.ID || !d.CreatedAt.Equal(f.Clock.Now()) || !d.ExpiresAt.After(d.CreatedAt) {
		t.Fatalf("TrustDevice = %+v; want a token, the user, CreatedAt now and a later ExpiresAt", d)
	}
	f.Clock.Advance(30 * time.Second) // past the code's step
	return u, secret, d
}

// deviceLogin logs in as u with Password presenting the device token.
func (f *Fixture) deviceLogin(t *testing.T, u *users.User, device string) (*users.Session, error) {
	t.Helper()
	return f.M.Login(users.WithDeviceToken(t.Context(), device), u.Email, Password)
}

// mgrWantSkipped checks that a device login skipped the second step, and
// that the session says so without counting it as a second factor.
func mgrWantSkipped(t *testing.T, what string, s *users.Session, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: Login with the device token = %v, want a session", what, err)
	}
	if want := []users.AuthMethod{users.MethodPassword, users.MethodTrustedDevice}; !slices.Equal(s.Methods, want) || !s.SecondFactorAt.IsZero() {
		t.Errorf("%s: session Methods %v SecondFactorAt %v, want %v and zero", what, s.Methods, s.SecondFactorAt, want)
	}
}

// mgrWantChallenged checks that a login was asked for the second factor.
func mgrWantChallenged(t *testing.T, what string, s *users.Session, err error) {
	t.Helper()
	if !errors.Is(err, users.ErrSecondFactorRequired) {
		t.Errorf("%s: Login = %v, %v; want ErrSecondFactorRequired (the second step asked for)", what, s, err)
	}
}

var mgrTrustedDeviceRules = []rule[*mgrSuite]{
	{"SkipsTheSecondStep", "After TrustDevice, a password login presenting the device token gets a session without the second step, whose Methods are [password trusted_device] and whose SecondFactorAt is zero; TrustedDevices lists the device with that login as LastUsedAt, and ValidateToken agrees; TrustDevice and RevokeTrustedDevice each write one entry naming the device", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, withTrust)
		u, _, d := f.trustedUser(t)
		if want := d.CreatedAt.Add(users.DefaultTrustedDeviceTTL); !d.ExpiresAt.Equal(want) {
			t.Errorf("TrustDevice: ExpiresAt = %v, want the default 30 days on, %v", d.ExpiresAt, want)
		}
		sess, err := f.deviceLogin(t, u, d.Token)
		mgrWantSkipped(t, "the trusted device", sess, err)
		got, err := f.M.ValidateToken(t.Context(), sess.Token)
		if err != nil || !got.SecondFactorAt.IsZero() {
			t.Errorf("ValidateToken = %+v, %v; want the session with a zero SecondFactorAt", got, err)
		}
		ds, err := f.M.TrustedDevices(t.Context(), u.ID)
		if err != nil || len(ds) != 1 || ds[0].ID != d.ID || ds[0].Token != "" || !ds[0].LastUsedAt.Equal(f.Clock.Now()) {
			t.Errorf("TrustedDevices = %+v, %v; want the device, without its token, last used now", ds, err)
		}
		if _, err := f.M.TrustDevice(t.Context(), sess.Token); !errors.Is(err, users.ErrMFANotEnabled) {
			t.Errorf("TrustDevice from a session that skipped the second factor = %v, want ErrMFANotEnabled: trust must not renew itself", err)
		}
		must(t, f.M.RevokeTrustedDevice(t.Context(), u.ID, d.ID))
		for _, typ := range []users.EventType{users.EventDeviceTrusted, users.EventDeviceRevoked} {
			p, err := f.M.Audit(t.Context(), users.AuditFilter{UserID: u.ID, Types: []users.EventType{typ}})
			if err != nil || len(p.Entries) != 1 || p.Entries[0].Data["device"] != d.ID {
				t.Errorf("%s entries = %+v, %v; want one naming device %s", typ, p, err, d.ID)
			}
		}
	}},
	{"OtherDevicesAsked", "A login that presents no device token, an unknown one, a malformed one, or the device token of another user (even one whose factors were enrolled at the same instant and whose Generation is the same) is asked for the second factor", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, withTrust)
		ctx := t.Context()
		// Two users whose factors look alike: same Generation, enrolled at
		// the same instant. Only the device's owner tells them apart.
		u, twin := f.user(t), f.user(t)
		secrets := map[string]string{}
		for _, x := range []*users.User{u, twin} {
			e, err := f.M.BeginTOTP(ctx, x.ID)
			must(t, err)
			secrets[x.ID] = e.Secret
		}
		for _, x := range []*users.User{u, twin} {
			_, err := f.M.ConfirmTOTP(ctx, x.ID, TOTPCode(t, secrets[x.ID], f.Clock.Now()))
			must(t, err)
		}
		f.Clock.Advance(30 * time.Second)
		c := f.MustChallenge(t, twin.Email)
		sess, err := f.M.CompleteLogin(ctx, c.Token, TOTPCode(t, secrets[twin.ID], f.Clock.Now()))
		must(t, err)
		other, err := f.M.TrustDevice(ctx, sess.Token)
		must(t, err)
		f.Clock.Advance(30 * time.Second)
		got, err := f.deviceLogin(t, twin, other.Token)
		mgrWantSkipped(t, "the twin's own device", got, err)

		got, err = f.M.Login(ctx, u.Email, Password)
		mgrWantChallenged(t, "no device token", got, err)
		for what, token := range map[string]string{
			"an unknown token":         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			"a malformed token":        "not a token",
			"another user's device":    other.Token,
			"the device's ID as token": other.ID,
		} {
			got, err := f.deviceLogin(t, u, token)
			mgrWantChallenged(t, what, got, err)
		}
	}},
	{"Revocations", "A trusted device stops skipping the second step after a password change, a password reset, LogoutAll, a suspension (also once reactivated), a change of factor (recovery codes made again, the factor reset), RevokeTrustedDevice, its TrustedDeviceTTL, and Options.TrustDevices turned off; TrustedDevices no longer lists it", func(t *testing.T, s *mgrSuite, _ string) {
		for _, c := range []struct {
			name   string
			edit   func(o *users.Options)
			revoke func(t *testing.T, f *Fixture, u *users.User, d *users.TrustedDevice)
		}{
			{"SetPassword", nil, func(t *testing.T, f *Fixture, u *users.User, _ *users.TrustedDevice) {
				must(t, f.M.SetPassword(t.Context(), u.ID, Password+" again"))
				must(t, f.M.SetPassword(t.Context(), u.ID, Password))
			}},
			{"UpdatePassword", nil, func(t *testing.T, f *Fixture, u *users.User, _ *users.TrustedDevice) {
				must(t, f.M.UpdatePassword(t.Context(), u.ID, Password, NewPassword))
				must(t, f.M.UpdatePassword(t.Context(), u.ID, NewPassword, Password))
			}},
			{"PasswordReset", nil, func(t *testing.T, f *Fixture, u *users.User, _ *users.TrustedDevice) {
				must(t, f.M.ResetPassword(t.Context(), f.requestReset(t, u), Password))
			}},
			{"LogoutAll", nil, func(t *testing.T, f *Fixture, u *users.User, _ *users.TrustedDevice) {
				must(t, f.M.LogoutAll(t.Context(), u.ID))
			}},
			{"Suspension", nil, func(t *testing.T, f *Fixture, u *users.User, _ *users.TrustedDevice) {
				suspended, active := users.StatusSuspended, users.StatusActive
				_, err := f.M.Update(t.Context(), u.ID, users.UserUpdate{Status: &suspended})
				must(t, err)
				_, err = f.M.Update(t.Context(), u.ID, users.UserUpdate{Status: &active})
				must(t, err)
			}},
			{"RecoveryCodesRenewed", nil, func(t *testing.T, f *Fixture, u *users.User, _ *users.TrustedDevice) {
				_, err := f.M.RegenerateRecoveryCodes(t.Context(), u.ID)
				must(t, err)
			}},
			{"FactorReset", nil, func(t *testing.T, f *Fixture, u *users.User, _ *users.TrustedDevice) {
				must(t, f.M.ResetMFA(t.Context(), u.ID))
				f.MustEnrolTOTP(t, u.ID)
			}},
			{"RevokeTrustedDevice", nil, func(t *testing.T, f *Fixture, u *users.User, d *users.TrustedDevice) {
				must(t, f.M.RevokeTrustedDevice(t.Context(), u.ID, d.ID))
				if err := f.M.RevokeTrustedDevice(t.Context(), u.ID, d.ID); !errors.Is(err, users.ErrNotFound) {
					t.Errorf("RevokeTrustedDevice again = %v, want ErrNotFound", err)
				}
			}},
			{"Expiry", func(o *users.Options) { o.TrustedDeviceTTL = 24 * time.Hour }, func(t *testing.T, f *Fixture, _ *users.User, d *users.TrustedDevice) {
				f.Clock.Advance(d.ExpiresAt.Sub(f.Clock.Now()))
			}},
		} {
			t.Run(c.name, func(t *testing.T) {
				f := s.fixture(t, func(o *users.Options) {
					withTrust(o)
					if c.edit != nil {
						c.edit(o)
					}
				})
				u, _, d := f.trustedUser(t)
				if c.name == "Expiry" {
					f.Clock.Advance(d.ExpiresAt.Sub(f.Clock.Now()) - time.Nanosecond)
				}
				sess, err := f.deviceLogin(t, u, d.Token)
				mgrWantSkipped(t, "before "+c.name, sess, err)
				c.revoke(t, f, u, d)
				sess, err = f.deviceLogin(t, u, d.Token)
				mgrWantChallenged(t, "after "+c.name, sess, err)
				if ds, err := f.M.TrustedDevices(t.Context(), u.ID); err != nil || len(ds) != 0 {
					t.Errorf("TrustedDevices after %s = %+v, %v; want none", c.name, ds, err)
				}
			})
		}
		t.Run("TurnedOff", func(t *testing.T) {
			store := s.newStore(t)
			f := NewFixture(t, store, withTrust)
			u, _, d := f.trustedUser(t)
			off := NewFixture(t, store, WithMFAKey)
			off.Clock.Advance(f.Clock.Now().Sub(off.Clock.Now()))
			sess, err := off.M.Login(users.WithDeviceToken(t.Context(), d.Token), u.Email, Password)
			mgrWantChallenged(t, "with Options.TrustDevices off", sess, err)
		})
	}},
	{"TrustNeedsAFreshSecondFactor", "TrustDevice refuses with ErrTrustedDevicesOff when Options.TrustDevices is false, ErrReauthRequired when the session's second factor is older than Options.ReauthWindow or than the user's factors (recovery codes made since), and ErrInvalidToken for a session token that does not validate; it stores nothing then, and trusts the device once StepUp proved the current factor", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, withTrust)
		u := f.user(t)
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		c := f.MustChallenge(t, u.Email)
		sess, err := f.M.CompleteLogin(t.Context(), c.Token, TOTPCode(t, secret, f.Clock.Now()))
		must(t, err)
		f.Clock.Advance(users.DefaultReauthWindow + time.Nanosecond)
		if _, err := f.M.TrustDevice(t.Context(), sess.Token); !errors.Is(err, users.ErrReauthRequired) {
			t.Errorf("TrustDevice after the ReauthWindow = %v, want ErrReauthRequired", err)
		}
		f.Clock.Advance(-users.DefaultReauthWindow) // the second factor is recent again
		_, err = f.M.RegenerateRecoveryCodes(t.Context(), u.ID)
		must(t, err)
		if _, err := f.M.TrustDevice(t.Context(), sess.Token); !errors.Is(err, users.ErrReauthRequired) {
			t.Errorf("TrustDevice from a session whose second factor predates the user's recovery codes = %v, want ErrReauthRequired", err)
		}
		f.Clock.Advance(30 * time.Second)
		_, err = f.M.StepUp(t.Context(), sess.Token, TOTPCode(t, secret, f.Clock.Now()))
		must(t, err)
		if _, err := f.M.TrustDevice(t.Context(), sess.Token); err != nil {
			t.Errorf("TrustDevice after StepUp = %v, want the device trusted", err)
		}
		if _, err := f.M.TrustDevice(t.Context(), "not a token"); !errors.Is(err, users.ErrInvalidToken) {
			t.Errorf("TrustDevice(malformed) = %v, want ErrInvalidToken", err)
		}
		off := NewFixture(t, f.Store, WithMFAKey)
		if _, err := off.M.TrustDevice(t.Context(), sess.Token); !errors.Is(err, users.ErrTrustedDevicesOff) {
			t.Errorf("TrustDevice with trusted devices off = %v, want ErrTrustedDevicesOff", err)
		}
		if cs, err := f.Store.ListCredentials(t.Context(), u.ID); err != nil || len(cs) != 1 {
			t.Errorf("the store holds %d credentials, %v; want the one device trusted after StepUp", len(cs), err)
		}
	}},
	{"OnlyForAPasswordLogin", "A magic-link login is asked for the second factor even from a trusted device: the device token stands in for the second step of a password login only", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, withTrust)
		u, _, d := f.trustedUser(t)
		sess, err := f.M.LoginWithMagicLink(users.WithDeviceToken(t.Context(), d.Token), f.requestMagicLink(t, u))
		mgrWantChallenged(t, "a magic link", sess, err)
	}},
}
