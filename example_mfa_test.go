package users_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// phone is the user's authenticator app in the examples: it reads the clock
// of the Manager the example built and shows the current code of the secret.
type phone struct {
	clock  *storetest.Clock
	secret string
}

func (p *phone) code() string {
	c, err := totp.GenerateCode(p.secret, p.clock.Now())
	if err != nil {
		panic(err)
	}
	return c
}

// mfaExampleManager returns a Manager over a memory store with a fake clock
// and an MFA key. A program reads its 32-byte key from its secrets, never
// from code.
func mfaExampleManager() (*users.Manager, *storetest.Clock) {
	return mfaExampleManagerWith(nil)
}

// mfaExampleManagerWith is mfaExampleManager with edit, if not nil, changing
// the options first.
func mfaExampleManagerWith(edit func(o *users.Options)) (*users.Manager, *storetest.Clock) {
	clock := storetest.NewClock()
	key := bytes.Repeat([]byte{0x5a}, 32)
	o := &users.Options{
		BcryptCost:                    4, // tests only; the default is 12
		InsecureLowBcryptCostForTests: true,
		Now:                           clock.Now,
		MFAKeys:                       []users.MFAKey{{ID: "2026-01", Key: key}},
		MFAIssuer:                     "Example",
	}
	if edit != nil {
		edit(o)
	}
	m, err := users.New(users.NewMemoryStore(), o)
	if err != nil {
		panic(err)
	}
	return m, clock
}

// readmeEnrolTOTP is README.md's enrolment snippet; app stands for the user
// scanning the QR code and typing the code the app shows.
func readmeEnrolTOTP(ctx context.Context, m *users.Manager, userID string, app func(secret string) string) ([]string, error) {
	enrol, err := m.BeginTOTP(ctx, userID)
	if err != nil {
		return nil, err // ErrMFANotConfigured without Options.MFAKeys
	}
	// Show enrol.QRCode (a PNG) and enrol.Secret; the user types the code the app shows:
	code := app(enrol.Secret)
	recoveryCodes, err := m.ConfirmTOTP(ctx, userID, code)
	if err != nil {
		return nil, err // ErrInvalidCode: let them try again
	}
	// Show the recovery codes once; only their hashes are stored.
	return recoveryCodes, nil
}

// readmeLogin is README.md's two-step login snippet; askForCode stands for
// the page that asks for the second factor.
func readmeLogin(ctx context.Context, m *users.Manager, email, password string, askForCode func() string) (*users.Session, error) {
	s, err := m.Login(ctx, email, password)
	var ch *users.Challenge
	if errors.As(err, &ch) { // errors.Is(err, users.ErrSecondFactorRequired)
		// Keep ch.Token for the next request; ch.Methods are the factors the user has.
		code := askForCode() // from the authenticator app, or a recovery code
		s, err = m.CompleteLogin(ctx, ch.Token, code)
	}
	if err != nil {
		return nil, err // ErrInvalidCode, ErrInvalidToken (the challenge expired or ran out of tries), …
	}
	return s, nil
}

func ExampleManager_CompleteLogin() {
	ctx := context.Background()
	m, clock := mfaExampleManager()
	u, err := m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: storetest.Password})
	if err != nil {
		panic(err)
	}
	app := &phone{clock: clock}
	recoveryCodes, err := readmeEnrolTOTP(ctx, m, u.ID, func(secret string) string {
		app.secret = secret
		return app.code()
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(recoveryCodes), "recovery codes")

	clock.Advance(30 * time.Second) // a code is accepted once: wait for the next
	s, err := readmeLogin(ctx, m, "ada@example.com", storetest.Password, app.code)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Methods, s.SecondFactorAt.Equal(clock.Now()))

	// The same code again is a replay.
	_, err = readmeLogin(ctx, m, "ada@example.com", storetest.Password, app.code)
	fmt.Println(errors.Is(err, users.ErrInvalidCode))

	// A recovery code works once, in place of the app.
	s, err = readmeLogin(ctx, m, "ada@example.com", storetest.Password, func() string { return recoveryCodes[0] })
	if err != nil {
		panic(err)
	}
	st, _ := m.MFAStatus(ctx, u.ID)
	fmt.Println(s.Methods, st.RecoveryCodesLeft)
	// Output:
	// 10 recovery codes
	// [password totp] true
	// true
	// [password recovery_code] 9
}

// readmeStepUp is README.md's step-up snippet.
func readmeStepUp(ctx context.Context, m *users.Manager, sessionToken, code string) (*users.Session, error) {
	// Before a sensitive action, prove the second factor again:
	s, err := m.StepUp(ctx, sessionToken, code)
	if err != nil {
		return nil, err
	}
	return s, nil // s.SecondFactorAt is now
}

func ExampleManager_StepUp() {
	ctx := context.Background()
	m, clock := mfaExampleManager()
	u, _ := m.Create(ctx, users.NewUser{Email: "grace@example.com", Password: storetest.Password})
	s, _ := m.Login(ctx, "grace@example.com", storetest.Password) // before enrolling: one factor
	fmt.Println(s.Methods, s.SecondFactorAt.IsZero())

	app := &phone{clock: clock}
	if _, err := readmeEnrolTOTP(ctx, m, u.ID, func(secret string) string { app.secret = secret; return app.code() }); err != nil {
		panic(err)
	}
	clock.Advance(30 * time.Second)
	up, err := readmeStepUp(ctx, m, s.Token, app.code())
	if err != nil {
		panic(err)
	}
	fmt.Println(up.Methods, up.SecondFactorAt.Equal(clock.Now()))
	// Output:
	// [password] true
	// [password totp] true
}

// readmeReauthenticate is README.md's recent-authentication snippet: ctx
// carries the acting session, as Manager.Middleware puts it there.
func readmeReauthenticate(ctx context.Context, m *users.Manager, userID, sessionToken, password string) (*users.TOTPEnrollment, error) {
	enrol, err := m.BeginTOTP(ctx, userID)
	if errors.Is(err, users.ErrReauthRequired) {
		// Ask for the password, prove it for this session, and try again with
		// the session as it is now (an API answers 403 and the client retries):
		var s *users.Session
		if s, err = m.Reauthenticate(ctx, sessionToken, password); err == nil { // or m.StepUp with a code
			enrol, err = m.BeginTOTP(users.NewContext(ctx, s), userID)
		}
	}
	if err != nil {
		return nil, err
	}
	return enrol, nil
}

// ExampleManager_Reauthenticate: a session that logged in more than
// Options.ReauthWindow ago must prove the password again before it enrols a
// second factor.
func ExampleManager_Reauthenticate() {
	m, clock := mfaExampleManager()
	ctx := context.Background()
	u, _ := m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: storetest.Password})
	s, _ := m.Login(ctx, "ada@example.com", storetest.Password)
	clock.Advance(time.Hour)

	acting, _ := m.ValidateToken(ctx, s.Token) // what Middleware puts in the request's context
	ctx = users.NewContext(ctx, acting)
	_, err := m.BeginTOTP(ctx, u.ID)
	fmt.Println(err)
	enrol, err := readmeReauthenticate(ctx, m, u.ID, s.Token, storetest.Password)
	fmt.Println(enrol != nil, err)
	// Output:
	// users: recent authentication required
	// true <nil>
}
