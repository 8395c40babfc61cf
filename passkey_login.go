package users

import "context"

// Signing in with a passkey: passwordless (BeginPasskeyLogin,
// FinishPasskeyLogin), as the second step of a login (BeginPasskeySecondFactor,
// then CompleteLogin), and for step-up (BeginPasskeyStepUp, then StepUp).

// BeginPasskeyLogin starts a passwordless sign-in: it returns the options for
// navigator.credentials.get() with no user named (a discoverable-credential
// login), so that the browser offers the passkeys it holds for the RP ID. The
// same options serve passkey autofill: the page passes mediation
// "conditional" to get(). Pass the browser's answer to FinishPasskeyLogin
// within PasskeyOptions.Timeout.
//
// It returns ErrPasskeysNotConfigured. It is safe for concurrent use.
func (m *Manager) BeginPasskeyLogin(ctx context.Context) (*PasskeyCeremony, error) {
	return nil, errPasskeyTODO
}

// FinishPasskeyLogin verifies response, the JSON of the PublicKeyCredential
// that navigator.credentials.get() returned for a ceremony BeginPasskeyLogin
// began, and signs its user in: a session like Login's, with Methods starting
// with MethodPasskey, the client of ctx (see WithClient) recorded, the
// passkey's LastUsedAt and signature counter updated with a passkey.used
// entry, and a login.succeeded entry.
//
// An assertion in which the authenticator verified the user (a PIN, a
// fingerprint) proves two factors, possession and the user's PIN or body: the
// session's Methods are MethodPasskey twice and its SecondFactorAt is now, and
// a user with a second factor is not asked for it. Without user verification
// it is one factor: a user with a second factor gets a *Challenge (matching
// ErrSecondFactorRequired), as from Login, whose Methods do not offer a
// passkey again.
//
// It returns ErrPasskeysNotConfigured; ErrInvalidToken when the ceremony is
// unknown, used or expired; ErrPasskeyRefused when response does not verify
// (wrong origin or RP ID, unknown credential, bad signature, malformed);
// ErrPasskeyCloned when the signature counter did not increase;
// ErrAccountDisabled for a user who is not active; and
// ErrEmailNotVerified with Options.RequireVerifiedEmail. The ceremony is
// used up whatever the outcome. It is safe for concurrent use: of
// concurrent finishes with assertions of one counter value, at most one gets
// a session.
func (m *Manager) FinishPasskeyLogin(ctx context.Context, response []byte) (*Session, error) {
	return nil, errPasskeyTODO
}

// BeginPasskeySecondFactor starts proving a passkey as the second step of a
// login: challengeToken is the Token of the *Challenge that Login (or
// LoginWithMagicLink) returned, whose Methods include MethodPasskey. It
// returns the options for navigator.credentials.get() naming the user's
// passkeys; pass the browser's answer, as a string, to CompleteLogin with the
// same challenge token, in place of a code.
//
// It returns ErrPasskeysNotConfigured, ErrInvalidToken for a challenge token
// that CompleteLogin would refuse, and ErrMFANotEnabled when the user has no
// passkey. It is safe for concurrent use.
func (m *Manager) BeginPasskeySecondFactor(ctx context.Context, challengeToken string) (*PasskeyCeremony, error) {
	return nil, errPasskeyTODO
}

// BeginPasskeyStepUp starts proving a passkey again for an existing session,
// before a sensitive action: it returns the options for
// navigator.credentials.get() naming the user's passkeys; pass the browser's
// answer, as a string, to StepUp with the same session token, in place of a
// code.
//
// It returns ErrPasskeysNotConfigured, ErrInvalidToken for a session token
// that ValidateToken refuses, and ErrMFANotEnabled when the user has no
// passkey. It is safe for concurrent use.
func (m *Manager) BeginPasskeyStepUp(ctx context.Context, sessionToken string) (*PasskeyCeremony, error) {
	return nil, errPasskeyTODO
}
