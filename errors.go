package users

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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

	// ErrDuplicateExternalID is returned when a user is created with an
	// ExternalID (the ID another system gave the user) that another user
	// already has. It matches ErrConflict too.
	ErrDuplicateExternalID = fmt.Errorf("users: external ID already in use: %w", ErrConflict)

	// ErrInvalidInput is matched by every *ValidationError and ValidationErrors:
	// errors.Is(err, ErrInvalidInput) is true when some input field was refused;
	// errors.As gives the (first) field, FieldErrors every one.
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
	// right, in a *LimitError that says when the lock ends. Manager.LockState
	// tells why; Manager.Unlock ends it.
	ErrAccountLocked = errors.New("users: too many failed logins; try again later")

	// ErrRateLimited is returned, in a *LimitError that says when to retry,
	// for an attempt over a rate limit (Options.RateLimits, Manager.Limit):
	// too many from one client address, or for one identifier, in a window.
	// Nothing was done.
	ErrRateLimited = errors.New("users: too many attempts; try again later")

	// ErrEmailNotVerified is returned by Login when Options.RequireVerifiedEmail is
	// set, the password is right, and the user's email is not verified yet;
	// and by FinishProvider when the sign-in through a provider is of such a
	// user, new or not.
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
// errors.Is. Code is a stable machine-readable reason (one of the Validation*
// constants) for programs, for example to show a translated message; Reason is
// a short English phrase safe to show to the person who typed the value. Neither
// ever contains a password or a token.
type ValidationError struct {
	Field  string         // the field's JSON name, e.g. "email", "password", "after"
	Code   ValidationCode // why it was refused, for programs, e.g. ValidationTooShort
	Reason string         // why it was refused, for people, e.g. "must be at least 8 characters"
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("users: invalid %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidInput, so errors.Is(err, ErrInvalidInput)
// holds for every ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidInput }

func invalid(field string, code ValidationCode, reason string) error {
	return &ValidationError{Field: field, Code: code, Reason: reason}
}

// ValidationErrors reports every refused field of one input, one
// *ValidationError per field, in the order of the input's fields: NewUser's
// (Create, Import's rows, Invite), UserUpdate's (Update) or Filter's (Find,
// Count), as declared, with the password checker's error in the password's
// place (see Options.PasswordChecker). An
// input with one refused field gives that *ValidationError alone, never a
// ValidationErrors of one; one with several gives a ValidationErrors of two
// or more.
//
// It matches ErrInvalidInput with errors.Is, and errors.As with a
// *ValidationError gives its first field's error, so code written for a
// single *ValidationError keeps working; errors.As with a ValidationErrors,
// or FieldErrors, gives them all. Its elements must not be changed; its
// methods are safe for concurrent use.
type ValidationErrors []*ValidationError

// Error names every refused field with its reason, in order:
// "users: invalid email: …; invalid password: …".
func (es ValidationErrors) Error() string {
	var b strings.Builder
	b.WriteString("users: ")
	for i, e := range es {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("invalid " + e.Field + ": " + e.Reason)
	}
	return b.String()
}

// Unwrap returns the field errors, in order, for errors.Is and errors.As.
func (es ValidationErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// FieldErrors returns every refused field in err: each *ValidationError in
// its tree (wrapped with %w, joined with errors.Join, or the elements of a
// ValidationErrors), depth first, in order; nil when there is none. The
// slice is new; its elements are err's own and must not be changed. It is
// safe for concurrent use.
func FieldErrors(err error) []*ValidationError {
	var out []*ValidationError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *ValidationError:
			out = append(out, e)
		case ValidationErrors:
			out = append(out, e...)
		case interface{ Unwrap() error }:
			if next := e.Unwrap(); next != nil {
				walk(next)
			}
		case interface{ Unwrap() []error }:
			for _, next := range e.Unwrap() {
				walk(next)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// fieldErrors collects the refused fields of one input, in the order they
// are checked: the input's field order.
type fieldErrors struct {
	list ValidationErrors
}

// add records err, which is nil or a *ValidationError (what every field
// check returns), and reports whether it was nil: the field passed.
func (c *fieldErrors) add(err error) bool {
	if err == nil {
		return true
	}
	c.list = append(c.list, err.(*ValidationError))
	return false
}

// insert records err, nil or a *ValidationError, at index at: for a check
// that runs after the fields behind it but belongs before them.
func (c *fieldErrors) insert(at int, err error) {
	if err != nil {
		c.list = slices.Insert(c.list, at, err.(*ValidationError))
	}
}

// err returns nil, the one *ValidationError, or the ValidationErrors.
func (c *fieldErrors) err() error {
	switch len(c.list) {
	case 0:
		return nil
	case 1:
		return c.list[0]
	}
	return c.list
}

// ValidationCode is the machine-readable reason of a *ValidationError. The
// values are part of the API: they never change meaning, and new ones may be
// added. Every *ValidationError this package returns has one of the codes
// below (ValidationCodes lists them), except one that Options.PasswordChecker
// returned with a code of the application's own; the Field says which input
// it is about.
type ValidationCode string

// The validation codes, with the fields they are given for. Reason says the
// same in English, with the limit where there is one.
const (
	// ValidationRequired: the field is empty and must not be (an email, a
	// password, the username of an update, Options.Roles without RoleUser).
	ValidationRequired ValidationCode = "required"
	// ValidationTooShort: shorter than the minimum (a password, a username).
	ValidationTooShort ValidationCode = "too_short"
	// ValidationTooLong: longer than the maximum (an email, a password, a name,
	// an ID, a URL, a preference).
	ValidationTooLong ValidationCode = "too_long"
	// ValidationTooMany: a list with more entries than allowed (batch IDs and
	// emails, preferences, audit types).
	ValidationTooMany ValidationCode = "too_many"
	// ValidationNotASCII: a non-ASCII email or username, refused before any
	// folding could make it someone else's.
	ValidationNotASCII ValidationCode = "not_ascii"
	// ValidationInvalidUTF8: text that is not valid UTF-8.
	ValidationInvalidUTF8 ValidationCode = "invalid_utf8"
	// ValidationControlCharacter: text with a control character.
	ValidationControlCharacter ValidationCode = "control_character"
	// ValidationMalformed: not in the field's format (an email, a username's
	// characters, an avatar URL, a password hash, a cursor, a preference key,
	// an MFA key).
	ValidationMalformed ValidationCode = "malformed"
	// ValidationNotOneOf: not one of the allowed values (a status, a role).
	ValidationNotOneOf ValidationCode = "not_one_of"
	// ValidationNegative: a number that must not be negative (a limit, an
	// offset, a duration option).
	ValidationNegative ValidationCode = "negative"
	// ValidationOutOfRange: a number outside its range (Options.BcryptCost,
	// MinPasswordLength, MaxFailedLogins, MaxBcryptCost), or a parameter that
	// this package does not take in an imported password hash
	// ("password_hash.cost", "password_hash.memory", "password_hash.salt", …)
	// or in Options.FirebaseScrypt; Reason says which bound.
	ValidationOutOfRange ValidationCode = "out_of_range"
	// ValidationInvalidRange: a range whose end is not after its start (an
	// audit filter's Until and Since).
	ValidationInvalidRange ValidationCode = "invalid_range"
	// ValidationExclusive: given together with a field it excludes (a password
	// and a password hash, before and after, a password and a code).
	ValidationExclusive ValidationCode = "exclusive"
	// ValidationMustBeEmpty: given where it must not be (the password of an
	// invitation, which the invited user chooses).
	ValidationMustBeEmpty ValidationCode = "must_be_empty"
	// ValidationUnchanged: the value the account has already (a new email
	// that is the current one).
	ValidationUnchanged ValidationCode = "unchanged"
	// ValidationWrongState: the account is not in the state the call needs (a
	// re-invitation of a user who is not invited).
	ValidationWrongState ValidationCode = "wrong_state"
	// ValidationDuplicate: a value a list must not repeat (MFA key IDs).
	ValidationDuplicate ValidationCode = "duplicate"
	// ValidationCommonPassword: the password is one of the most common ones.
	ValidationCommonPassword ValidationCode = "common_password"
	// ValidationPersonalPassword: the password is the user's email, its local
	// part, or the username.
	ValidationPersonalPassword ValidationCode = "personal_password"
	// ValidationBreachedPassword: the breached-password check found the
	// password in a data breach.
	ValidationBreachedPassword ValidationCode = "breached_password"
	// ValidationPasswordRejected: Options.PasswordChecker refused the
	// password with an error that is not a *ValidationError with a code.
	ValidationPasswordRejected ValidationCode = "password_rejected"
)

// ValidationCodes returns every ValidationCode this package gives, in a new
// slice. It is safe for concurrent use.
func ValidationCodes() []ValidationCode {
	return []ValidationCode{
		ValidationRequired, ValidationTooShort, ValidationTooLong, ValidationTooMany,
		ValidationNotASCII, ValidationInvalidUTF8, ValidationControlCharacter,
		ValidationMalformed, ValidationNotOneOf, ValidationNegative,
		ValidationOutOfRange, ValidationInvalidRange, ValidationExclusive,
		ValidationMustBeEmpty, ValidationUnchanged, ValidationWrongState,
		ValidationDuplicate, ValidationCommonPassword, ValidationPersonalPassword,
		ValidationBreachedPassword, ValidationPasswordRejected,
	}
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
	// UpdatePassword, SetPassword, RequestEmailChange, Update when it
	// changes the email, BeginProviderLink and UnlinkIdentity) when the context carries a Session whose
	// AuthenticatedAt is older than Options.ReauthWindow. Prove the password
	// with Manager.Reauthenticate, or a second factor with Manager.StepUp, and
	// retry. HTTPError maps it to 403 "reauth_required".
	ErrReauthRequired = errors.New("users: recent authentication required")
)

// Errors of sign-in with a provider (see Manager.FinishProvider).
var (
	// ErrUnknownProvider is returned for a provider name that is not in
	// Options.Providers.
	ErrUnknownProvider = errors.New("users: unknown identity provider")
	// ErrProviderState is returned by FinishProvider for a callback whose
	// state is unknown, used already, expired, or was begun in another
	// browser (the binding differs). Nothing is written but an audit entry.
	ErrProviderState = errors.New("users: sign-in with a provider: unknown, used or expired state")
	// ErrProviderDenied is returned by FinishProvider when the provider
	// answered with an error (the user declined, for example).
	ErrProviderDenied = errors.New("users: the provider refused the sign-in")
	// ErrProviderResponse is returned by FinishProvider when the provider's
	// answer does not verify: an iss parameter of another issuer (RFC
	// 9207), a code the token endpoint refuses, an ID token of another
	// issuer or audience, expired, with another nonce or a bad signature,
	// or a profile without a subject or email.
	ErrProviderResponse = errors.New("users: the provider's answer did not verify")
	// ErrNoAccount is returned by FinishProvider for a sign-in with an
	// identity no user has, through a provider without AllowSignUp.
	ErrNoAccount = errors.New("users: no account for this identity")
	// ErrIdentityTaken is returned when linking an identity that another
	// user has.
	ErrIdentityTaken = errors.New("users: identity linked to another user")
	// ErrLastSignInMethod is returned when removing a way to sign in would
	// leave the user none: no password, no passkey, no linked identity.
	ErrLastSignInMethod = errors.New("users: the last way to sign in cannot be removed")
)

// ProviderMismatchError is returned by FinishProviderAt for a callback that
// arrived at the route of another provider than the one its flow was begun
// with. The flow is consumed and the provider's code never redeemed.
// errors.Is(err, ErrProviderState) holds for it, so a handler that maps
// ErrProviderState to "start again" needs no change; errors.As finds the
// names.
type ProviderMismatchError struct {
	Flow     string // the provider the flow was begun with
	Callback string // the provider whose route received the callback
}

func (e *ProviderMismatchError) Error() string {
	return fmt.Sprintf("users: a sign-in begun with provider %q came back at the callback of %q", e.Flow, e.Callback)
}

// Is reports whether target is ErrProviderState.
func (e *ProviderMismatchError) Is(target error) bool { return target == ErrProviderState }
