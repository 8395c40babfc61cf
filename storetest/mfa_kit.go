package storetest

import (
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/userkit/users"
)

// MFAKey is a fixed key for tests that enrol second factors: pass it in
// users.Options.MFAKeys (WithMFAKey does).
var MFAKey = users.MFAKey{ID: "test-key-1", Key: bytes.Repeat([]byte{0x42}, 32)}

// WithMFAKey is an edit function for NewFixture that sets Options.MFAKeys to
// MFAKey.
func WithMFAKey(o *users.Options) { o.MFAKeys = []users.MFAKey{MFAKey} }

// TOTPCode returns the 6-digit RFC 6238 code (SHA-1, 30 s) of the base32
// secret at t, computed by github.com/pquerna/otp as an authenticator app
// would.
func TOTPCode(tb testing.TB, secret string, t time.Time) string {
	tb.Helper()
	code, err := totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		tb.Fatalf("TOTPCode: %v", err)
	}
	return code
}

// WrongTOTPCode returns a 6-digit code that no step within a step of t
// accepts: a guess sure to be wrong. Different i (0 to 9) give different codes.
func WrongTOTPCode(tb testing.TB, secret string, t time.Time, i int) string {
	tb.Helper()
	right := []string{TOTPCode(tb, secret, t.Add(-30*time.Second)), TOTPCode(tb, secret, t), TOTPCode(tb, secret, t.Add(30*time.Second))}
	for n := 0; ; n++ {
		if code := fmt.Sprintf("%06d", i*100000+n); !slices.Contains(right, code) {
			return code
		}
	}
}

// MustEnrolTOTP enrols a TOTP factor for the user (BeginTOTP, then ConfirmTOTP
// with the current code) and returns its base32 secret and the recovery codes.
// It then advances the clock by 30 seconds, past the step the confirmation
// used, so the next code is not a replay. The Manager needs Options.MFAKeys.
func (f *Fixture) MustEnrolTOTP(tb testing.TB, userID string) (secret string, recoveryCodes []string) {
	tb.Helper()
	e, err := f.M.BeginTOTP(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("BeginTOTP: %v", err)
	}
	codes, err := f.M.ConfirmTOTP(tb.Context(), userID, TOTPCode(tb, e.Secret, f.Clock.Now()))
	if err != nil {
		tb.Fatalf("ConfirmTOTP: %v", err)
	}
	f.Clock.Advance(30 * time.Second)
	return e.Secret, codes
}

// MustChallenge logs in with identifier and Password and returns the
// challenge Login answers with; it stops the test if Login does anything else.
func (f *Fixture) MustChallenge(tb testing.TB, identifier string) *users.Challenge {
	tb.Helper()
	s, err := f.M.Login(tb.Context(), identifier, Password)
	var c *users.Challenge
	if !errors.Is(err, users.ErrSecondFactorRequired) || !errors.As(err, &c) {
		tb.Fatalf("Login(%q) = %v, %v; want a *Challenge matching ErrSecondFactorRequired", identifier, s, err)
	}
	return c
}

// MFASecrets creates a user, enrols a TOTP factor for it (BeginTOTP, then
// ConfirmTOTP) and completes a two-step login with a code, through f's
// Manager, which needs Options.MFAKeys. It returns what the store's bytes must
// never hold, by name: the secret in base32 (upper and lower case), raw, and
// in its otpauth URI, and each recovery code. It also returns what the store
// does hold, the sealed secret and a recovery code's hash, so that a scan can
// first show that it sees the records.
func (f *Fixture) MFASecrets(tb testing.TB) (secrets map[string][]byte, stored [][]byte) {
	tb.Helper()
	ctx := tb.Context()
	u := f.MustCreate(tb, users.NewUser{Email: f.Email()})
	e, err := f.M.BeginTOTP(ctx, u.ID)
	if err != nil {
		tb.Fatalf("BeginTOTP: %v", err)
	}
	recovery, err := f.M.ConfirmTOTP(ctx, u.ID, TOTPCode(tb, e.Secret, f.Clock.Now()))
	if err != nil {
		tb.Fatalf("ConfirmTOTP: %v", err)
	}
	f.Clock.Advance(30 * time.Second)
	c := f.MustChallenge(tb, u.Email)
	if _, err := f.M.CompleteLogin(ctx, c.Token, TOTPCode(tb, e.Secret, f.Clock.Now())); err != nil {
		tb.Fatalf("CompleteLogin: %v", err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || len(raw) < 16 {
		tb.Fatalf("the enrolment's secret %q is not base32 of 16 bytes or more: %v", e.Secret, err)
	}
	secrets = map[string][]byte{
		"secret in base32":            []byte(e.Secret),
		"secret in lower-case base32": []byte(strings.ToLower(e.Secret)),
		"raw secret":                  raw,
		"otpauth URI":                 []byte(e.URI),
	}
	for i, c := range recovery {
		secrets[fmt.Sprintf("recovery code %d", i)] = []byte(c)
	}
	rec, err := f.Store.GetMFA(ctx, u.ID)
	if err != nil {
		tb.Fatalf("GetMFA: %v", err)
	}
	if rec.TOTP == nil || len(rec.RecoveryCodes) == 0 {
		tb.Fatalf("GetMFA after enrolment: %+v, want a TOTP factor and recovery codes", rec)
	}
	return secrets, [][]byte{rec.TOTP.Secret, rec.RecoveryCodes[0]}
}
