package storetest

import (
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/passkeytest"
)

// The relying party of the passkey rules (WithPasskeys).
const (
	PasskeyRPID   = "example.com"
	PasskeyOrigin = "https://example.com"
)

// WithPasskeys is an edit function for NewFixture that turns passkeys on for
// PasskeyRPID and PasskeyOrigin.
func WithPasskeys(o *users.Options) {
	o.Passkeys = &users.PasskeyOptions{RPID: PasskeyRPID, Origins: []string{PasskeyOrigin}}
}

// NewAuthenticator returns a software authenticator (internal/passkeytest)
// whose browser reports PasskeyOrigin.
func NewAuthenticator() *passkeytest.Authenticator { return passkeytest.New(PasskeyOrigin) }

// MustRegisterPasskey registers a new passkey of a for the user under name,
// and stops the test if a step fails.
func (f *Fixture) MustRegisterPasskey(tb testing.TB, userID, name string, a *passkeytest.Authenticator) *users.Passkey {
	tb.Helper()
	c, err := f.M.BeginPasskeyRegistration(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("BeginPasskeyRegistration: %v", err)
	}
	resp, err := a.Register(c.PublicKey)
	if err != nil {
		tb.Fatalf("authenticator: %v", err)
	}
	p, err := f.M.FinishPasskeyRegistration(tb.Context(), userID, name, resp)
	if err != nil {
		tb.Fatalf("FinishPasskeyRegistration: %v", err)
	}
	return p
}

// MustPasskeyAnswer begins a passwordless sign-in and returns a's answer to
// it, stopping the test if a step fails.
func (f *Fixture) MustPasskeyAnswer(tb testing.TB, a *passkeytest.Authenticator) []byte {
	tb.Helper()
	c, err := f.M.BeginPasskeyLogin(tb.Context())
	if err != nil {
		tb.Fatalf("BeginPasskeyLogin: %v", err)
	}
	resp, err := a.Assert(c.PublicKey)
	if err != nil {
		tb.Fatalf("authenticator: %v", err)
	}
	return resp
}
