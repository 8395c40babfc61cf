package users

import (
	"errors"
	"fmt"
)

// Errors returned by the Manager and by every Store. Test for them with errors.Is;
// they may be wrapped with context.
var (
	// ErrNotFound is returned when the user, session or token asked for does not exist.
	ErrNotFound = errors.New("users: not found")

	// ErrDuplicateEmail is returned when a user is created or updated with an email
	// (after normalisation) that another user already has.
	ErrDuplicateEmail = errors.New("users: email already in use")

	// ErrDuplicateUsername is returned when a user is created or updated with a
	// username (after normalisation) that another user already has.
	ErrDuplicateUsername = errors.New("users: username already in use")

	// ErrInvalidInput is matched by every *ValidationError: errors.Is(err, ErrInvalidInput)
	// is true when some input field was refused; errors.As gives the field.
	ErrInvalidInput = errors.New("users: invalid input")

	// ErrInvalidCredentials is returned by Login for an unknown identifier or a wrong
	// password alike, and by UpdatePassword for a wrong current password.
	ErrInvalidCredentials = errors.New("users: invalid credentials")

	// ErrInvalidToken is returned for a session or one-time token that is unknown,
	// malformed, expired, revoked, used, meant for another purpose, or whose user
	// is gone or not active.
	ErrInvalidToken = errors.New("users: invalid or expired token")

	// ErrAccountDisabled is returned by Login when the password is right but the
	// account's Status is not active. It is returned only after the password has
	// been verified, so it reveals nothing to someone who does not know it.
	ErrAccountDisabled = errors.New("users: account disabled")

	// ErrAccountLocked is returned by Login, UpdatePassword and
	// RequestEmailChange while an account (or an identifier that names nobody) is
	// locked after too many failed attempts (see Options.MaxFailedLogins and
	// MaxConsecutiveFailures), and to concurrent guesses beyond the limit. It is
	// returned for unknown identifiers too, and also when the password given is
	// right. Manager.LockState tells why; Manager.Unlock ends it.
	ErrAccountLocked = errors.New("users: too many failed logins; try again later")

	// ErrEmailNotVerified is returned by Login when Options.RequireVerifiedEmail is
	// set, the password is right, and the user's email is not verified yet.
	ErrEmailNotVerified = errors.New("users: email not verified")

	// ErrUnknownEmail is returned by the account-recovery requests (password reset,
	// magic link) when no user has the email. An application must answer its
	// caller exactly as it answers a success, or it tells strangers who has an
	// account.
	ErrUnknownEmail = errors.New("users: no user with that email")

	// ErrConflict is returned by a Store when a write lost a race it cannot resolve
	// on its own (for example a user ID that already exists). The Manager never
	// returns it for ordinary concurrent use.
	ErrConflict = errors.New("users: conflicting write")
)

// ValidationError reports one refused input field. It matches ErrInvalidInput with
// errors.Is. Reason is a short English phrase safe to show to the person who typed
// the value; it never contains a password or a token.
type ValidationError struct {
	Field  string // the field's JSON name, e.g. "email", "password", "after"
	Reason string // why it was refused, e.g. "must be at least 8 characters"
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("users: invalid %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidInput, so errors.Is(err, ErrInvalidInput)
// holds for every ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidInput }

func invalid(field, reason string) error {
	return &ValidationError{Field: field, Reason: reason}
}

// Errors of second-factor authentication (see Manager.CompleteLogin).
var (
	// ErrSecondFactorRequired is matched (errors.Is) by the error Login and
	// LoginWithMagicLink return when the first factor was right and the user
	// has a second factor: errors.As gives the *Challenge to complete with
	// Manager.CompleteLogin.
	ErrSecondFactorRequired = errors.New("users: second factor required")

	// ErrInvalidCode is returned for a second-factor code that is wrong, used
	// already (a TOTP code of a step already accepted, a used recovery code) or
	// malformed. It counts as a failed login.
	ErrInvalidCode = errors.New("users: invalid second-factor code")

	// ErrMFANotConfigured is returned by TOTP enrolment and verification when
	// Options.MFAKeys is empty: TOTP secrets are never stored unsealed.
	ErrMFANotConfigured = errors.New("users: no MFA key configured (Options.MFAKeys)")

	// ErrMFAEnabled is returned by BeginTOTP and ConfirmTOTP when the user has
	// a confirmed TOTP factor already: disable it first to enrol another.
	ErrMFAEnabled = errors.New("users: second factor already enabled")

	// ErrMFANotEnabled is returned when an operation needs a second factor (or
	// an enrolment begun) that the user does not have.
	ErrMFANotEnabled = errors.New("users: second factor not enabled")

	// ErrReauthRequired is returned, before anything is checked or changed, by
	// the changes that need a recent proof of the acting session's user
	// (BeginTOTP, ConfirmTOTP, DisableMFA, RegenerateRecoveryCodes, ResetMFA,
	// UpdatePassword, SetPassword, RequestEmailChange, and Update when it
	// changes the email) when the context carries a Session whose
	// AuthenticatedAt is older than Options.ReauthWindow. Prove the password
	// with Manager.Reauthenticate, or a second factor with Manager.StepUp, and
	// retry. HTTPError maps it to 403 "reauth_required".
	ErrReauthRequired = errors.New("users: recent authentication required")
)
