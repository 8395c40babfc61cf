package users_test

import (
	"errors"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// BenchmarkValidateTokenAssurance validates the token of a one-factor session
// (the baseline: Methods [password]) and of a two-factor one (Methods
// [password totp], SecondFactorAt set) on the memory store, in one run. The
// one-factor session's methods fit in ValidateToken's one allocation; the
// two-factor session's take one more of 32 bytes, since room for them beside
// the Session would take that allocation to the next size class for every
// session (TestValidatedSizeClass).
func BenchmarkValidateTokenAssurance(b *testing.B) {
	f := newMFAFixture(b, nil)
	ctx := b.Context()
	one := f.mustCreate(b, users.NewUser{Email: f.Email()})
	two := f.mustCreate(b, users.NewUser{Email: f.Email()})
	s1 := f.MustLogin(b, one.Email, storetest.Password)
	secret, _ := f.MustEnrolTOTP(b, two.ID)
	_, err := f.M.Login(ctx, two.Email, storetest.Password)
	var c *users.Challenge
	if !errors.As(err, &c) {
		b.Fatalf("Login: %v", err)
	}
	s2, err := f.M.CompleteLogin(ctx, c.Token, storetest.TOTPCode(b, secret, f.Clock.Now()))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		token string
	}{{"OneFactor", s1.Token}, {"TwoFactors", s2.Token}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.M.ValidateToken(ctx, tc.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
