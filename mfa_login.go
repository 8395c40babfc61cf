package users

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"
)

// Two-step login. When the first factor (a password, a magic link) is right
// and the user has a second factor, Login returns a *Challenge instead of a
// session; CompleteLogin redeems it with a second factor. A challenge is a
// one-time token like the others: 256 bits, stored as its SHA-256, bound to
// the user and to the user's Generation (so a password change, reset,
// suspension or revocation voids it), alive ChallengeTTL, good for
// MaxChallengeAttempts codes and used up by the first one that succeeds.

// The limits of one challenge: it works for ChallengeTTL after Login made it,
// and for exactly MaxChallengeAttempts codes, the last as good as the first.
const (
	ChallengeTTL         = 5 * time.Minute
	MaxChallengeAttempts = 5
)

// The events of second-factor authentication, recorded like the others (see
// EventType).
const (
	EventMFAEnrollmentStarted   EventType = "mfa.enrollment_started"
	EventMFAEnabled             EventType = "mfa.enabled"  // AuditEntry.Data["method"] says which factor
	EventMFADisabled            EventType = "mfa.disabled" // by the user, with a password or a code
	EventMFAReset               EventType = "mfa.reset"    // by an administrator (ResetMFA)
	EventMFAChallenged          EventType = "mfa.challenged"
	EventMFAVerified            EventType = "mfa.verified" // AuditEntry.Data["method"] says which factor
	EventMFAFailed              EventType = "mfa.failed"
	EventMFAStepUp              EventType = "session.stepped_up"
	EventRecoveryCodesGenerated EventType = "mfa.recovery_codes_generated"
)

// Challenge is the second step of a login, returned (as an error matching
// ErrSecondFactorRequired) by Login and LoginWithMagicLink for a user with a
// second factor. Get it with errors.As and pass Token to CompleteLogin with
// the user's code.
type Challenge struct {
	// Token is the challenge's bearer secret: give it to the client that
	// logged in, and to nobody else.
	Token string `json:"token"`
	// Methods are the second factors the user can complete the login with.
	Methods []AuthMethod `json:"methods"`
	// ExpiresAt is when the challenge stops working.
	ExpiresAt time.Time `json:"expires_at"`
}

// Error says that a second factor is required; it never contains the token.
func (c *Challenge) Error() string { return ErrSecondFactorRequired.Error() }

// Is makes a *Challenge match ErrSecondFactorRequired.
func (c *Challenge) Is(target error) bool { return target == ErrSecondFactorRequired }

// A secondFactor is one kind of second factor. CompleteLogin, StepUp and
// DisableMFA know factors only through this interface; a new kind (a WebAuthn
// passkey) is a new implementation added to factors.
type secondFactor interface {
	// method names the factor on sessions and audit entries.
	method() AuthMethod
	// active reports whether the user's record has this factor ready for use.
	active(r *MFARecord) bool
	// check examines proof, as the caller gave it (each factor reads its own
	// form), against a snapshot r of the user's record, outside
	// the store's transaction (decryption, hashing), and returns the change
	// that accepts it, which UpdateMFA then applies atomically: accept refuses
	// with ErrInvalidCode what another call used meanwhile. check returns
	// errNotThisFactor for a proof in another factor's form, and ErrInvalidCode
	// for a wrong one.
	check(m *Manager, r *MFARecord, proof string) (accept func(w *MFARecord) error, err error)
}

var errNotThisFactor = errors.New("users: not a proof of this factor")

// factors are the second factors the Manager knows, in the order they are
// offered.
var factors = []secondFactor{totpFactor{}, recoveryFactor{}}

// secondFactors returns the methods r allows as a second factor; none means
// the user logs in with one factor. r may be nil.
func secondFactors(r *MFARecord) []AuthMethod {
	if r == nil {
		return nil
	}
	var out []AuthMethod
	for _, f := range factors {
		if f.active(r) {
			out = append(out, f.method())
		}
	}
	if len(out) == 1 && out[0] == MethodRecoveryCode {
		// Recovery codes stand in for a factor; they are never one alone.
		return nil
	}
	return out
}

type totpFactor struct{}

func (totpFactor) method() AuthMethod { return MethodTOTP }

func (totpFactor) active(r *MFARecord) bool { return r.TOTP != nil && r.TOTP.Confirmed }

func (totpFactor) check(m *Manager, r *MFARecord, code string) (func(w *MFARecord) error, error) {
	code = normalizeCode(code)
	if len(code) != totpDigits.Length() || !allDigits(code) {
		return nil, errNotThisFactor
	}
	secret, err := m.open(r.UserID, r.TOTP)
	if err != nil {
		return nil, err
	}
	step, ok := totpStep(secret, code, m.now())
	if !ok {
		return nil, ErrInvalidCode
	}
	sealed, keyID := r.TOTP.Secret, r.TOTP.KeyID
	if keyID != m.mfa.current {
		// Sealed with a key rotated out: seal it again with the current one.
		if sealed, keyID, err = m.seal(r.UserID, secret); err != nil {
			return nil, err
		}
	}
	was := r.TOTP.Secret
	return func(w *MFARecord) error {
		if w.TOTP == nil || !w.TOTP.Confirmed || !bytes.Equal(w.TOTP.Secret, was) || step <= w.TOTP.LastStep {
			return ErrInvalidCode // replaced, removed, or this step (or a later one) was used
		}
		w.TOTP.LastStep, w.TOTP.Secret, w.TOTP.KeyID = step, sealed, keyID
		return nil
	}, nil
}

type recoveryFactor struct{}

func (recoveryFactor) method() AuthMethod { return MethodRecoveryCode }

func (recoveryFactor) active(r *MFARecord) bool { return len(r.RecoveryCodes) > 0 }

func (recoveryFactor) check(m *Manager, r *MFARecord, code string) (func(w *MFARecord) error, error) {
	c, ok := canonicalRecoveryCode(normalizeCode(code))
	if !ok {
		return nil, errNotThisFactor
	}
	h := recoveryHash(r.UserID, c)
	return func(w *MFARecord) error { return useRecoveryCode(w, h) }, nil
}

// mfaRecord returns the user's MFA record, or nil if there is none.
func (m *Manager) mfaRecord(ctx context.Context, userID string) (*MFARecord, error) {
	rec, err := m.store.GetMFA(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr("second factor", err)
	}
	return rec, nil
}

// CompleteLogin completes a two-step login: it checks code, a TOTP code or one
// of the user's recovery codes (case, spaces and hyphens do not matter), for
// the challenge whose token Login or LoginWithMagicLink returned, and on
// success returns a new session with its Token set, whose Methods are the
// first factor and the second and whose SecondFactorAt is now. The challenge
// is used up; a TOTP code of the step it matched, or any earlier step, is
// refused from then on, and a recovery code works once. A code is spent only
// together with the session it buys, in one atomic step of the store: a code
// that gets no session (the challenge was used or voided meanwhile) stays
// unused.
//
// Each code is counted as a failed login of the user before it is checked,
// exactly as Login counts passwords, and is forgotten only on success: so
// however many codes arrive at once, at most Options.MaxFailedLogins are
// checked before the account locks. A challenge allows exactly
// MaxChallengeAttempts codes, the last of them as good as the first; the
// code after them is refused with ErrInvalidToken, unchecked. A right
// password alone never forgets failures of a user with a second factor, so
// an attacker who knows the password cannot start over by logging in again,
// nor by resetting the password.
//
// With passkeys on, code may instead be a passkey's answer (the JSON of the
// PublicKeyCredential) to a ceremony BeginPasskeySecondFactor began for the
// challenge: counted like a code, and refused with ErrPasskeyRefused (or
// ErrPasskeyCloned) rather than ErrInvalidCode; the session's second method
// is then MethodPasskey.
//
// It returns ErrInvalidToken for a challenge token that is unknown, malformed,
// expired, used, out of attempts or voided (by a password change or reset, a
// suspension, a revocation of the user's sessions, or the removal of the
// second factor), ErrInvalidCode for a wrong or used code, and
// ErrAccountLocked (no code checked) while the account is locked, and a
// *LimitError (ErrRateLimited, no code checked) over the client's limit of
// ActionSecondFactor. It is safe for concurrent use: of concurrent completions of one challenge at most one
// gets a session, and exactly one if one of them has a right code and nothing
// voids the challenge meanwhile.
func (m *Manager) CompleteLogin(ctx context.Context, challengeToken, code string) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, _, err := m.sess.lifetime(ctx); err != nil {
		return nil, err // before the code is counted
	}
	hash, ok := parseToken(challengeToken)
	if !ok {
		return nil, ErrInvalidToken
	}
	c, err := m.store.GetChallenge(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("complete login", err)
	}
	if !m.now().Before(c.ExpiresAt) {
		return nil, ErrInvalidToken
	}
	if err := m.limit(ctx, ActionSecondFactor, c.UserID); err != nil {
		return nil, err
	}
	r, err := m.store.GetUser(ctx, c.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("complete login", err)
	}
	if r.Generation != c.UserGeneration || r.Status != StatusActive {
		return nil, ErrInvalidToken
	}
	key := UserThrottleKey(r.ID)
	if err := m.checkLock(ctx, key); err != nil {
		return nil, err
	}
	if _, err := m.store.CountChallengeAttempt(ctx, hash, MaxChallengeAttempts); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrInvalidToken // used, dead, voided or out of attempts
		}
		return nil, storeErr("complete login", err)
	}
	method, accept, err := m.checkSecondFactor(ctx, r.ID, key, code)
	if err != nil {
		return nil, err
	}
	verified, err := m.auditEntry(ctx, EventMFAVerified, r.ID)
	if err != nil {
		return nil, err
	}
	verified.Data = map[string]string{"method": string(method)}
	r.Generation = c.UserGeneration
	create := func(s *SessionRecord, e *AuditEntry) error {
		return m.write(ctx, s.UserID, func() error {
			return m.store.CompleteChallenge(ctx, hash, accept, s, verified, e)
		}, verified, e)
	}
	s, err := m.startSessionWith(ctx, r, "", func(*UserRecord) error { return nil }, create, append(c.Methods, method)...)
	switch {
	case errors.Is(err, ErrInvalidCode):
		return nil, m.codeFailed(ctx, r.ID) // used meanwhile, by another login or a step-up
	case errors.Is(err, ErrInvalidCredentials):
		return nil, ErrInvalidToken // used, voided, revoked or suspended after the code was checked
	case err != nil:
		return nil, err
	}
	if err := m.forgetFailures(ctx, key); err != nil {
		return nil, err
	}
	return s, nil
}

// StepUp proves a second factor again for an existing session: it checks code
// (a TOTP code or a recovery code) for the session's user, and on success sets
// the session's SecondFactorAt and AuthenticatedAt (see Reauthenticate) to now
// and adds the factor to its Methods. It
// returns the session (without its Token). Use it before sensitive actions,
// with Manager.RequireSecondFactor deciding how fresh the proof must be.
//
// With passkeys on, code may instead be a passkey's answer to a ceremony
// BeginPasskeyStepUp began, also for a user with no other second factor;
// it is refused with ErrPasskeyRefused (or ErrPasskeyCloned).
//
// Codes are throttled and counted exactly as CompleteLogin counts them. It
// returns ErrInvalidToken for a session token that ValidateToken refuses,
// ErrMFANotEnabled if the user has no second factor, ErrInvalidCode and
// ErrAccountLocked. It is safe for concurrent use.
func (m *Manager) StepUp(ctx context.Context, sessionToken, code string) (*Session, error) {
	s, err := m.ValidateToken(ctx, sessionToken)
	if err != nil {
		return nil, err
	}
	if err := m.limit(ctx, ActionSecondFactor, s.UserID); err != nil {
		return nil, err
	}
	key := UserThrottleKey(s.UserID)
	if err := m.checkLock(ctx, key); err != nil {
		return nil, err
	}
	method, err := m.verifySecondFactor(ctx, s.UserID, key, code)
	if err != nil {
		return nil, err
	}
	e, err := m.auditEntry(ctx, EventMFAStepUp, s.UserID)
	if err != nil {
		return nil, err
	}
	e.SessionID = s.ID
	e.Data = map[string]string{"method": string(method)}
	var rec *SessionRecord
	err = m.write(ctx, s.UserID, func() (err error) {
		rec, err = m.store.StepUpSession(ctx, s.UserID, s.ID, method, m.now(), e)
		return err
	}, e)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken // logged out or revoked meanwhile
	}
	if err != nil {
		return nil, storeErr("step up", err)
	}
	if err := m.forgetFailures(ctx, key); err != nil {
		return nil, err
	}
	s.Methods, s.SecondFactorAt = slices.Clone(rec.Methods), rec.SecondFactorAt
	s.AuthenticatedAt = rec.AuthenticatedAt
	return s, nil
}

// verifySecondFactor makes one throttled check of code against the user's
// second factors and applies the accepting change (spending the code): the
// attempt is counted as a failure under key before the check, and stays
// counted (the caller forgets it on success). It returns the factor that
// accepted the code, ErrAccountLocked (nothing checked), ErrInvalidCode, or
// ErrMFANotEnabled for a user without a second factor.
func (m *Manager) verifySecondFactor(ctx context.Context, userID string, key ThrottleKey, code string) (AuthMethod, error) {
	method, accept, err := m.checkSecondFactor(ctx, userID, key, code)
	if err != nil {
		return "", err
	}
	err = m.accept(ctx, userID, method, accept)
	if errors.Is(err, ErrInvalidCode) {
		return "", m.codeFailed(ctx, userID)
	}
	return method, err
}

// checkSecondFactor is verifySecondFactor without spending the code: it
// returns the factor that accepts code and its accepting change, for the
// caller to apply atomically with what the code buys (accept refuses with
// ErrInvalidCode what another call used meanwhile). A wrong code is recorded
// and ErrInvalidCode returned.
func (m *Manager) checkSecondFactor(ctx context.Context, userID string, key ThrottleKey, code string) (AuthMethod, func(w *MFARecord) error, error) {
	if m.passkey != nil && isPasskeyResponse(code) {
		return m.checkPasskeyFactor(ctx, userID, key, code) // passkey_login.go
	}
	rec, err := m.mfaRecord(ctx, userID)
	if err != nil {
		return "", nil, err
	}
	if len(secondFactors(rec)) == 0 {
		return "", nil, ErrMFANotEnabled
	}
	// The record read above may be stale by the time the code is checked:
	// that is harmless, as accept refuses what changed meanwhile.
	if _, err := m.reserveAttempt(ctx, key, userID); err != nil {
		return "", nil, err
	}
	for _, f := range factors {
		if !f.active(rec) {
			continue
		}
		accept, err := f.check(m, rec, code)
		if errors.Is(err, errNotThisFactor) {
			continue
		}
		if errors.Is(err, ErrInvalidCode) {
			break
		}
		if err != nil {
			return "", nil, err
		}
		return f.method(), accept, nil
	}
	return "", nil, m.codeFailed(ctx, userID)
}

// accept applies a factor's accepting change to the user's record atomically,
// recording the success.
func (m *Manager) accept(ctx context.Context, userID string, method AuthMethod, accept func(w *MFARecord) error) error {
	e, err := m.auditEntry(ctx, EventMFAVerified, userID)
	if err != nil {
		return err
	}
	e.Data = map[string]string{"method": string(method)}
	err = m.write(ctx, userID, func() error {
		_, err := m.store.UpdateMFA(ctx, userID, func(w *MFARecord) (bool, error) {
			return false, accept(w)
		}, e)
		return err
	}, e)
	if errors.Is(err, ErrInvalidCode) {
		return err
	}
	return storeErr("second factor", err)
}

// codeFailed records a refused code (counted already) and returns ErrInvalidCode.
func (m *Manager) codeFailed(ctx context.Context, userID string) error {
	e, err := m.auditEntry(ctx, EventMFAFailed, userID)
	if err != nil {
		return err
	}
	e.Reason = "invalid_code"
	if err := m.write(ctx, userID, func() error { return m.store.AppendAudit(ctx, e) }, e); err != nil {
		return storeErr("second factor", err)
	}
	return ErrInvalidCode
}
