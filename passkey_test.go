package users_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/passkeytest"
	"github.com/userkit/users/storetest"
)

// newPasskeyFixture returns a Manager over a memory store with passkeys (RP
// example.com, origin https://example.com) and an MFA key, and a user with a
// password.
func newPasskeyFixture(t *testing.T) (*storetest.Fixture, *users.User) {
	t.Helper()
	f := storetest.NewFixture(t, users.NewMemoryStore(), func(o *users.Options) {
		storetest.WithPasskeys(o)
		storetest.WithMFAKey(o)
	})
	return f, f.MustCreate(t, users.NewUser{Email: f.Email()})
}

// passkeyLogin begins a passwordless sign-in, has a answer it and finishes.
func passkeyLogin(t *testing.T, f *storetest.Fixture, a *passkeytest.Authenticator) (*users.Session, error) {
	t.Helper()
	return f.M.FinishPasskeyLogin(t.Context(), f.MustPasskeyAnswer(t, a))
}

func TestManager_PasskeyRegistration(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		ctx := t.Context()
		c, err := f.M.BeginPasskeyRegistration(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.ExpiresAt, f.Clock.Now().Add(users.DefaultPasskeyTimeout); !got.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v", got, want)
		}
		var o struct {
			RP   struct{ ID, Name string }
			User struct {
				ID, Name string
			}
			Challenge              string
			AuthenticatorSelection struct {
				ResidentKey      string `json:"residentKey"`
				UserVerification string `json:"userVerification"`
			} `json:"authenticatorSelection"`
			Attestation string
			Timeout     int
		}
		if err := json.Unmarshal(c.PublicKey, &o); err != nil {
			t.Fatal(err)
		}
		if o.RP.ID != storetest.PasskeyRPID || o.RP.Name != storetest.PasskeyRPID || o.User.Name != u.Email ||
			len(o.Challenge) != 43 || o.AuthenticatorSelection.ResidentKey != "required" ||
			o.AuthenticatorSelection.UserVerification != "preferred" || o.Attestation != "none" || o.Timeout != 300000 {
			t.Errorf("creation options = %s", c.PublicKey)
		}
		a := storetest.NewAuthenticator()
		a.BackupEligible, a.BackedUp, a.Transports = true, true, []string{"hybrid", "internal"}
		resp, err := a.Register(c.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.M.FinishPasskeyRegistration(ctx, u.ID, "work laptop", resp)
		if err != nil {
			t.Fatal(err)
		}
		want := &users.Passkey{ID: a.CredentialIDs()[0], Name: "work laptop", CreatedAt: f.Clock.Now(),
			Transports: []string{"hybrid", "internal"}, BackupEligible: true, BackedUp: true, UserVerified: true,
			AAGUID: "00000000-0000-0000-0000-000000000000"}
		if g, w := mustJSON(t, p), mustJSON(t, want); g != w {
			t.Errorf("FinishPasskeyRegistration =\n %s\nwant\n %s", g, w)
		}
		ps, err := f.M.Passkeys(ctx, u.ID)
		if err != nil || len(ps) != 1 || mustJSON(t, ps[0]) != mustJSON(t, want) {
			t.Errorf("Passkeys = %v, %v; want the one registered", ps, err)
		}
		// The next registration excludes it: the authenticator refuses to make a second.
		c, err = f.M.BeginPasskeyRegistration(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Register(c.PublicKey); !errors.Is(err, passkeytest.ErrNoCredential) {
			t.Errorf("a second registration on one authenticator: %v, want it excluded", err)
		}
	})
	t.Run("ValidationError", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		for _, name := range []string{string(make([]byte, users.MaxCredentialNameLen+1)), "bad\xff", "tab\tname"} {
			_, err := f.M.FinishPasskeyRegistration(t.Context(), u.ID, name, []byte("{}"))
			var ve *users.ValidationError
			if !errors.As(err, &ve) || ve.Field != "name" {
				t.Errorf("name %q: %v, want a *ValidationError for name", name, err)
			}
		}
	})
	t.Run("ErrAccountDisabled", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		suspend(t, f, u.ID)
		if _, err := f.M.BeginPasskeyRegistration(t.Context(), u.ID); !errors.Is(err, users.ErrAccountDisabled) {
			t.Errorf("BeginPasskeyRegistration of a suspended user: %v, want ErrAccountDisabled", err)
		}
	})
}

func TestManager_PasskeyLogin(t *testing.T) {
	t.Run("UserVerifiedIsTwoFactors", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		ctx := users.WithClient(t.Context(), users.Client{IP: "192.0.2.7", UserAgent: "test browser"})
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		_ = secret
		a := storetest.NewAuthenticator()
		f.MustRegisterPasskey(t, u.ID, "phone", a)
		f.Clock.Advance(time.Minute)
		c, err := f.M.BeginPasskeyLogin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Assert(c.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.M.FinishPasskeyLogin(ctx, resp)
		if err != nil {
			t.Fatalf("FinishPasskeyLogin of a user with TOTP, user verified: %v, want a session", err)
		}
		now := f.Clock.Now()
		if !slices.Equal(s.Methods, []users.AuthMethod{users.MethodPasskey, users.MethodPasskey}) ||
			!s.SecondFactorAt.Equal(now) || !s.AuthenticatedAt.Equal(now) || s.IP != "192.0.2.7" || s.UserAgent != "test browser" {
			t.Errorf("session = %+v; want Methods [passkey passkey], SecondFactorAt and AuthenticatedAt now, the client", s)
		}
		if _, err := f.M.ValidateToken(ctx, s.Token); err != nil {
			t.Errorf("ValidateToken: %v", err)
		}
		ps, _ := f.M.Passkeys(ctx, u.ID)
		if len(ps) != 1 || !ps[0].LastUsedAt.Equal(now) {
			t.Errorf("Passkeys after the sign-in = %+v, want LastUsedAt now", ps)
		}
		wantEvents(t, f, u.ID, users.EventPasskeyUsed, users.EventLoginSucceeded)
	})
	t.Run("WithoutUserVerificationIsOneFactor", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		ctx := t.Context()
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		a := storetest.NewAuthenticator()
		a.NoUserVerification = true
		f.MustRegisterPasskey(t, u.ID, "key", a)
		_, err := passkeyLogin(t, f, a)
		var ch *users.Challenge
		if !errors.As(err, &ch) {
			t.Fatalf("FinishPasskeyLogin without user verification for a user with TOTP: %v, want a *Challenge", err)
		}
		if slices.Contains(ch.Methods, users.MethodPasskey) || !slices.Contains(ch.Methods, users.MethodTOTP) {
			t.Errorf("challenge Methods = %v; want TOTP and no passkey again", ch.Methods)
		}
		if _, err := f.M.BeginPasskeySecondFactor(ctx, ch.Token); !errors.Is(err, users.ErrMFANotEnabled) {
			t.Errorf("BeginPasskeySecondFactor after a passkey sign-in: %v, want ErrMFANotEnabled", err)
		}
		s, err := f.M.CompleteLogin(ctx, ch.Token, storetest.TOTPCode(t, secret, f.Clock.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Methods, []users.AuthMethod{users.MethodPasskey, users.MethodTOTP}) {
			t.Errorf("Methods = %v, want [passkey totp]", s.Methods)
		}
	})
	t.Run("WithoutSecondFactorOneFactorIsEnough", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		a := storetest.NewAuthenticator()
		a.NoUserVerification = true
		f.MustRegisterPasskey(t, u.ID, "key", a)
		s, err := passkeyLogin(t, f, a)
		if err != nil || !slices.Equal(s.Methods, []users.AuthMethod{users.MethodPasskey}) || !s.SecondFactorAt.IsZero() {
			t.Errorf("FinishPasskeyLogin = %+v, %v; want a one-factor session", s, err)
		}
	})
	t.Run("ErrAccountDisabled", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		a := storetest.NewAuthenticator()
		f.MustRegisterPasskey(t, u.ID, "key", a)
		suspend(t, f, u.ID)
		if _, err := passkeyLogin(t, f, a); !errors.Is(err, users.ErrAccountDisabled) {
			t.Errorf("FinishPasskeyLogin of a suspended user: %v, want ErrAccountDisabled", err)
		}
	})
	t.Run("ErrPasskeyRefused", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		f.MustRegisterPasskey(t, u.ID, "key", storetest.NewAuthenticator())
		stranger := storetest.NewAuthenticator() // holds a key for the RP that was never registered
		other, ou := newPasskeyFixture(t)
		other.MustRegisterPasskey(t, ou.ID, "key", stranger)
		if _, err := passkeyLogin(t, f, stranger); !errors.Is(err, users.ErrPasskeyRefused) {
			t.Errorf("FinishPasskeyLogin with an unknown credential: %v, want ErrPasskeyRefused", err)
		}
		if _, err := f.M.FinishPasskeyLogin(t.Context(), []byte(`{"id":"x"}`)); !errors.Is(err, users.ErrPasskeyRefused) {
			t.Errorf("FinishPasskeyLogin with malformed JSON: %v, want ErrPasskeyRefused", err)
		}
	})
}

func TestManager_PasskeySecondFactor(t *testing.T) {
	t.Run("CompleteLogin", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		ctx := t.Context()
		f.MustEnrolTOTP(t, u.ID)
		a := storetest.NewAuthenticator()
		f.MustRegisterPasskey(t, u.ID, "key", a)
		ch := f.MustChallenge(t, u.Email)
		if !slices.Equal(ch.Methods, []users.AuthMethod{users.MethodTOTP, users.MethodRecoveryCode, users.MethodPasskey}) {
			t.Errorf("challenge Methods = %v, want [totp recovery_code passkey]", ch.Methods)
		}
		c, err := f.M.BeginPasskeySecondFactor(ctx, ch.Token)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Assert(c.PublicKey)
		if err != nil {
			t.Fatalf("authenticator: %v (the options must allow its passkey)", err)
		}
		s, err := f.M.CompleteLogin(ctx, ch.Token, string(resp))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Methods, []users.AuthMethod{users.MethodPassword, users.MethodPasskey}) || !s.SecondFactorAt.Equal(f.Clock.Now()) {
			t.Errorf("session = %+v, want Methods [password passkey] and SecondFactorAt now", s)
		}
		wantEvents(t, f, u.ID, users.EventPasskeyUsed, users.EventMFAVerified, users.EventLoginSucceeded)
	})
	t.Run("PasskeyAloneIsNoSecondStep", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		f.MustRegisterPasskey(t, u.ID, "key", storetest.NewAuthenticator())
		if _, err := f.M.Login(t.Context(), u.Email, storetest.Password); err != nil {
			t.Errorf("Login of a user with a password and a passkey, no other factor: %v, want a session", err)
		}
	})
	t.Run("WrongAnswerIsCounted", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		ctx := t.Context()
		f.MustEnrolTOTP(t, u.ID)
		a := storetest.NewAuthenticator()
		f.MustRegisterPasskey(t, u.ID, "key", a)
		ch := f.MustChallenge(t, u.Email)
		c, err := f.M.BeginPasskeySecondFactor(ctx, ch.Token)
		if err != nil {
			t.Fatal(err)
		}
		a.Origin = "https://evil.example"
		resp, err := a.Assert(c.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		before, err := f.M.LockState(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.CompleteLogin(ctx, ch.Token, string(resp)); !errors.Is(err, users.ErrPasskeyRefused) {
			t.Errorf("CompleteLogin with an answer for another origin: %v, want ErrPasskeyRefused", err)
		}
		ls, err := f.M.LockState(ctx, u.ID)
		if err != nil || ls.ConsecutiveFailures != before.ConsecutiveFailures+1 {
			t.Errorf("LockState after a refused passkey = %+v, %v; want one more failure than %d", ls, err, before.ConsecutiveFailures)
		}
		wantEvents(t, f, u.ID, users.EventMFAFailed)
	})
	t.Run("StepUp", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		ctx := t.Context()
		a := storetest.NewAuthenticator()
		f.MustRegisterPasskey(t, u.ID, "key", a)
		s := f.MustLogin(t, u.Email, storetest.Password)
		f.Clock.Advance(time.Hour)
		c, err := f.M.BeginPasskeyStepUp(ctx, s.Token)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Assert(c.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.M.StepUp(ctx, s.Token, string(resp))
		if err != nil {
			t.Fatalf("StepUp with a passkey for a user without TOTP: %v", err)
		}
		now := f.Clock.Now()
		if !got.SecondFactorAt.Equal(now) || !got.AuthenticatedAt.Equal(now) || !slices.Contains(got.Methods, users.MethodPasskey) {
			t.Errorf("StepUp = %+v; want SecondFactorAt and AuthenticatedAt now, passkey in Methods", got)
		}
	})
}

func TestManager_PasskeyManagement(t *testing.T) {
	t.Run("Rename", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		p := f.MustRegisterPasskey(t, u.ID, "old", storetest.NewAuthenticator())
		got, err := f.M.RenamePasskey(t.Context(), u.ID, p.ID, "new name ☃")
		if err != nil || got.Name != "new name ☃" || got.ID != p.ID {
			t.Errorf("RenamePasskey = %+v, %v", got, err)
		}
		ps, _ := f.M.Passkeys(t.Context(), u.ID)
		if len(ps) != 1 || ps[0].Name != "new name ☃" {
			t.Errorf("Passkeys after RenamePasskey = %+v", ps)
		}
		wantEvents(t, f, u.ID, users.EventPasskeyRenamed)
	})
	t.Run("RemoveKeepsSessionsByDefault", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		a := storetest.NewAuthenticator()
		p := f.MustRegisterPasskey(t, u.ID, "key", a)
		s, err := passkeyLogin(t, f, a)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.M.RemovePasskey(t.Context(), u.ID, p.ID, false); err != nil {
			t.Fatal(err)
		}
		if ps, _ := f.M.Passkeys(t.Context(), u.ID); len(ps) != 0 {
			t.Errorf("Passkeys after RemovePasskey = %+v, want none", ps)
		}
		if _, err := f.M.ValidateToken(t.Context(), s.Token); err != nil {
			t.Errorf("the passkey's session after RemovePasskey(endSessions false): %v, want it kept", err)
		}
		if _, err := passkeyLogin(t, f, a); !errors.Is(err, users.ErrPasskeyRefused) {
			t.Errorf("sign-in with a removed passkey: %v, want ErrPasskeyRefused", err)
		}
		wantEvents(t, f, u.ID, users.EventPasskeyRemoved)
	})
	t.Run("RemoveEndsPasskeySessionsWhenAsked", func(t *testing.T) {
		f, u := newPasskeyFixture(t)
		a := storetest.NewAuthenticator()
		p := f.MustRegisterPasskey(t, u.ID, "key", a)
		byPasskey, err := passkeyLogin(t, f, a)
		if err != nil {
			t.Fatal(err)
		}
		byPassword := f.MustLogin(t, u.Email, storetest.Password)
		if err := f.M.RemovePasskey(t.Context(), u.ID, p.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.ValidateToken(t.Context(), byPasskey.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Errorf("the passkey's session after RemovePasskey(endSessions true): %v, want ErrInvalidToken", err)
		}
		if _, err := f.M.ValidateToken(t.Context(), byPassword.Token); err != nil {
			t.Errorf("a password session after RemovePasskey(endSessions true): %v, want it kept", err)
		}
	})
	t.Run("ErrPasskeysNotConfigured", func(t *testing.T) {
		f := storetest.NewFixture(t, users.NewMemoryStore(), nil)
		u := f.MustCreate(t, users.NewUser{Email: f.Email()})
		ctx := t.Context()
		for name, call := range map[string]func() error{
			"BeginPasskeyRegistration": func() error { _, err := f.M.BeginPasskeyRegistration(ctx, u.ID); return err },
			"FinishPasskeyRegistration": func() error {
				_, err := f.M.FinishPasskeyRegistration(ctx, u.ID, "", []byte("{}"))
				return err
			},
			"BeginPasskeyLogin":        func() error { _, err := f.M.BeginPasskeyLogin(ctx); return err },
			"FinishPasskeyLogin":       func() error { _, err := f.M.FinishPasskeyLogin(ctx, []byte("{}")); return err },
			"BeginPasskeySecondFactor": func() error { _, err := f.M.BeginPasskeySecondFactor(ctx, "x"); return err },
			"BeginPasskeyStepUp":       func() error { _, err := f.M.BeginPasskeyStepUp(ctx, "x"); return err },
			"Passkeys":                 func() error { _, err := f.M.Passkeys(ctx, u.ID); return err },
			"RenamePasskey":            func() error { _, err := f.M.RenamePasskey(ctx, u.ID, "AA", "n"); return err },
			"RemovePasskey":            func() error { return f.M.RemovePasskey(ctx, u.ID, "AA", false) },
		} {
			if err := call(); !errors.Is(err, users.ErrPasskeysNotConfigured) {
				t.Errorf("%s without Options.Passkeys: %v, want ErrPasskeysNotConfigured", name, err)
			}
		}
	})
}

func TestNew_PasskeyOptions(t *testing.T) {
	for _, c := range []struct {
		name  string
		o     users.PasskeyOptions
		field string
	}{
		{"no RP ID", users.PasskeyOptions{Origins: []string{"https://example.com"}}, "options.Passkeys.RPID"},
		{"RP ID with a scheme", users.PasskeyOptions{RPID: "https://example.com", Origins: []string{"https://example.com"}}, "options.Passkeys.RPID"},
		{"RP ID with a port", users.PasskeyOptions{RPID: "example.com:443", Origins: []string{"https://example.com"}}, "options.Passkeys.RPID"},
		{"no origin", users.PasskeyOptions{RPID: "example.com"}, "options.Passkeys.Origins"},
		{"origin of another site", users.PasskeyOptions{RPID: "example.com", Origins: []string{"https://example.org"}}, "options.Passkeys.Origins[0]"},
		{"origin ending like the RP ID", users.PasskeyOptions{RPID: "example.com", Origins: []string{"https://badexample.com"}}, "options.Passkeys.Origins[0]"},
		{"http origin", users.PasskeyOptions{RPID: "example.com", Origins: []string{"https://example.com", "http://example.com"}}, "options.Passkeys.Origins[1]"},
		{"origin with a path", users.PasskeyOptions{RPID: "example.com", Origins: []string{"https://example.com/login"}}, "options.Passkeys.Origins[0]"},
		{"origin with a slash", users.PasskeyOptions{RPID: "example.com", Origins: []string{"https://example.com/"}}, "options.Passkeys.Origins[0]"},
		{"timeout too short", users.PasskeyOptions{RPID: "example.com", Origins: []string{"https://example.com"}, Timeout: time.Second}, "options.Passkeys.Timeout"},
		{"timeout too long", users.PasskeyOptions{RPID: "example.com", Origins: []string{"https://example.com"}, Timeout: time.Hour}, "options.Passkeys.Timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := users.New(users.NewMemoryStore(), &users.Options{Passkeys: &c.o})
			var ve *users.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Errorf("New = %v, want a *ValidationError for %s", err, c.field)
			}
		})
	}
	for _, o := range []users.PasskeyOptions{
		{RPID: "example.com", Origins: []string{"https://example.com", "https://login.example.com:8443"}, RPName: "Example", Timeout: time.Minute},
		{RPID: "localhost", Origins: []string{"http://localhost:8080"}},
	} {
		if _, err := users.New(users.NewMemoryStore(), &users.Options{Passkeys: &o, BcryptCost: 4, InsecureLowBcryptCostForTests: true}); err != nil {
			t.Errorf("New with %+v: %v", o, err)
		}
	}
}

// wantEvents checks that the user's audit log holds entries of each type.
func wantEvents(t *testing.T, f *storetest.Fixture, userID string, types ...users.EventType) {
	t.Helper()
	page, err := f.M.Audit(t.Context(), users.AuditFilter{UserID: userID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range types {
		if !slices.ContainsFunc(page.Entries, func(e *users.AuditEntry) bool { return e.Type == typ }) {
			t.Errorf("no %s entry in the user's audit log", typ)
		}
	}
}

func suspend(t *testing.T, f *storetest.Fixture, userID string) {
	t.Helper()
	suspended := users.StatusSuspended
	if _, err := f.M.Update(t.Context(), userID, users.UserUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHTTPError_Passkeys(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{users.ErrPasskeyCloned, 401, users.CodePasskeyCloned},
		{users.ErrPasskeyRefused, 401, users.CodePasskeyRefused},
		{errors.Join(users.ErrPasskeyRefused, errors.New("detail")), 401, users.CodePasskeyRefused},
		{users.ErrLastSignInMethod, 409, users.CodeLastSignInMethod},
		{users.ErrPasskeysNotConfigured, 501, users.CodePasskeysNotConfigured},
	} {
		if status, code, _ := users.HTTPError(tc.err); status != tc.status || code != tc.code {
			t.Errorf("HTTPError(%v) = %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
	}
}
