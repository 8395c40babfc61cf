package users

import (
	"context"
	"errors"
	"strings"
)

// The login, in the order a password meets it: Login looks the identifier up,
// checkPassword counts the attempt, compares and records the outcome
// (throttle.go keeps the counts), and login ends with a session or, for a
// user with a second factor, a Challenge (mfa_login.go completes it).

// Login checks an identifier (an email or a username) and a password, and on
// success creates a session and returns it with its Token set. It sets the user's
// LastLoginAt, and upgrades the stored password hash if it was imported or made
// at another cost.
//
// An unknown identifier and a wrong password both return ErrInvalidCredentials
// after exactly one bcrypt comparison at the configured cost, so neither the
// answer nor its timing tells whether an account exists. A right password on an
// account whose Status is not active returns ErrAccountDisabled; with
// Options.RequireVerifiedEmail, one on an unverified email returns
// ErrEmailNotVerified.
//
// Each check is throttled (see SECURITY.md, "Throttling"): the attempt is
// counted in the store before the password is compared, so however many
// guesses arrive at once, at most Options.MaxFailedLogins of them are compared
// before the account is locked; the rest, and every attempt while it is locked,
// get ErrAccountLocked without any comparison, whatever the password. A lock
// lasts Options.LockoutDuration, twice as long each time it recurs (at most 24
// hours), and MaxConsecutiveFailures failures in a row lock the account until a
// password reset or Unlock. A right password forgets the failures. Before
// all that, the attempt is counted under ActionLogin (Options.RateLimits):
// over the limit for the client, it gets a *LimitError (ErrRateLimited)
// without any lookup or comparison, whatever the account.
//
// An identifier with a character outside ASCII names nobody: no case or space
// folding can turn it into someone's email. A right password that verifies an
// imported hash which cannot be re-hashed (a tab or non-UTF-8 bytes in it) logs
// in and keeps the hash; LockState reports it (ImportedHashNotUpgradable).
//
// The session is the kind the SessionOptions in ctx ask for (see
// WithSessionOptions); options out of range are a *ValidationError, returned
// before the password is checked. For a user with a second factor, a device
// token in ctx (WithDeviceToken) that the user trusted (TrustDevice), still
// valid, skips the second step: the session's Methods are [password
// trusted_device] and its SecondFactorAt is zero.
func (m *Manager) Login(ctx context.Context, identifier, password string) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, _, err := m.sess.lifetime(ctx); err != nil {
		return nil, err // before the password is counted, or the attempt limited
	}
	if err := m.limit(ctx, ActionLogin, identifier); err != nil {
		return nil, err
	}
	r, key, err := m.lookupIdentifier(ctx, identifier)
	if err != nil {
		return nil, err
	}
	if err := m.checkPassword(ctx, r, key, password); err != nil {
		return nil, err
	}
	// The password is right from here on: these answers reveal nothing to
	// someone who does not know it.
	if r.Status != StatusActive {
		return nil, m.refuseLogin(ctx, r.ID, reasonAccountDisabled, ErrAccountDisabled)
	}
	if m.requireVerify && !r.EmailVerified {
		return nil, m.refuseLogin(ctx, r.ID, reasonEmailNotVerified, ErrEmailNotVerified)
	}
	newHash := ""
	if m.needsRehash(r.PasswordHash) {
		if n, err := normalizePassword("password", password, 1); err == nil {
			// A failure here only delays the upgrade to the next login.
			newHash, _ = m.hashPassword(ctx, n)
		}
	}
	s, err := m.login(ctx, r, MethodPassword, "", func(cur *UserRecord) error {
		if cur.PasswordHash != r.PasswordHash {
			return ErrInvalidCredentials // changed since we verified it
		}
		if newHash != "" {
			cur.PasswordHash = newHash
		}
		return nil
	})
	if errors.Is(err, ErrInvalidCredentials) {
		// The password was right, but a password change, suspension, removal or
		// revocation landed before the session was made: a failed login all the
		// same, and recorded as one.
		return nil, m.refuseLogin(ctx, r.ID, reasonChangedMeanwhile, err)
	}
	return s, err
}

// lookupIdentifier finds the user an identifier names and the throttle key for
// it. An identifier that names nobody (or is malformed) gives a nil record and a
// key of its own, so unknown identifiers are throttled like real ones. Only
// ASCII is folded: an identifier with any other character names nobody, so
// that no Unicode case or space folding can turn it into someone's address.
func (m *Manager) lookupIdentifier(ctx context.Context, identifier string) (*UserRecord, ThrottleKey, error) {
	id := identifier
	tooLong := len(id) > maxIdentifierBytes+64 // room for surrounding space
	if tooLong {
		id = id[:maxIdentifierBytes] // bounds the work of hashing the throttle key
	}
	ascii := isASCII(id)
	if ascii {
		id = strings.ToLower(strings.TrimSpace(id))
		tooLong = tooLong || len(id) > maxIdentifierBytes
	}
	var r *UserRecord
	var err error
	switch {
	case tooLong || !ascii:
		// Names nobody, though its cut or folded form may be someone's email.
	case strings.Contains(id, "@"):
		if e, verr := NormalizeEmail(id); verr == nil {
			r, err = m.store.GetUserByEmail(ctx, e)
		}
	default:
		if u, verr := NormalizeUsername(id); verr == nil && u != "" {
			r, err = m.store.GetUserByUsername(ctx, u)
		}
	}
	idKey := IdentifierThrottleKey(id) // made in both cases: equal work
	switch {
	case err == nil && r != nil:
		return r, UserThrottleKey(r.ID), nil
	case err == nil || errors.Is(err, ErrNotFound):
		return nil, idKey, nil
	default:
		return nil, "", storeErr("login", err)
	}
}

// checkPassword makes one throttled password check of a login's password
// against the user r: it reserves the attempt under key, compares, and on a
// match releases it (see passwordRight). It returns ErrAccountLocked (no
// comparison made) or ErrInvalidCredentials. r may be nil for an identifier
// that names nobody: the comparison then runs against the decoy hash and
// always fails.
func (m *Manager) checkPassword(ctx context.Context, r *UserRecord, key ThrottleKey, password string) error {
	return m.checkPasswordAs(ctx, r, key, password, true)
}

// confirmPassword is checkPassword for an operation that is not a login (a
// password change, an email change, disabling a second factor), which only
// asks the user to prove the password again: a right password there is never
// counted as a failure, also for a user with a second factor, but it forgets
// no earlier failure of such a user either.
func (m *Manager) confirmPassword(ctx context.Context, r *UserRecord, key ThrottleKey, password string) error {
	return m.checkPasswordAs(ctx, r, key, password, false)
}

func (m *Manager) checkPasswordAs(ctx context.Context, r *UserRecord, key ThrottleKey, password string, login bool) error {
	if err := m.checkLock(ctx, key); err != nil {
		return err
	}
	hash, userID := "", ""
	if r != nil {
		hash, userID = r.PasswordHash, r.ID
	}
	var res reservation
	err := m.comparePassword(ctx, hash, password, func() (err error) {
		res, err = m.reserveAttempt(ctx, key, userID)
		return err
	})
	switch {
	case errors.Is(err, errHashMismatch):
		// Counted by the reservation; recorded now that it is known to fail.
		if err := m.recordFailure(ctx, key, userID, res); err != nil {
			return err
		}
		return ErrInvalidCredentials
	case err != nil:
		return err
	case !login && r != nil:
		// For a user with a second factor, passwordRight keeps the
		// reservation counted: take it back first.
		if err := m.unreserveSecondFactorUser(ctx, r.ID, key, res); err != nil {
			return err
		}
	}
	return m.passwordRight(ctx, r, key, isImportedHash(hash) && !rehashable(password))
}

// refuseLogin records a login refused after its password was verified, and
// returns err.
func (m *Manager) refuseLogin(ctx context.Context, userID, reason string, err error) error {
	e, eerr := m.auditEntry(ctx, EventLoginFailed, userID)
	if eerr != nil {
		return eerr
	}
	e.Reason = reason
	if werr := m.write(ctx, userID, func() error { return m.store.AppendAudit(ctx, e) }, e); werr != nil {
		return storeErr("login", werr)
	}
	return err
}

// login ends a login whose first factor, first, was right for r: with a
// session when the user has no second factor, or else with a *Challenge. check
// runs in the same atomic step as the user's record is written, and p is the
// purpose of the link that logged in, as for startSession.
func (m *Manager) login(ctx context.Context, r *UserRecord, first AuthMethod, p Purpose, check func(cur *UserRecord) error) (*Session, error) {
	rec, err := m.mfaRecord(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	methods := secondFactors(rec)
	if len(methods) == 0 {
		return m.startSession(ctx, r, p, check, first)
	}
	if s, skipped, err := m.skipSecondStep(ctx, r, rec, first, p, check); skipped || err != nil {
		return s, err // a trusted device (trusted_device.go)
	}
	if methods, err = m.withPasskeyFactor(ctx, r.ID, methods); err != nil {
		return nil, err
	}
	cur, err := m.store.UpdateUser(ctx, r.ID, func(cur *UserRecord) (Revoke, error) {
		if cur.Generation != r.Generation || cur.Status != StatusActive {
			return Revoke{}, ErrInvalidCredentials
		}
		return Revoke{}, check(cur)
	})
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, storeErr("login", err)
	}
	token, hash, err := m.newToken()
	if err != nil {
		return nil, err
	}
	e, err := m.auditEntry(ctx, EventMFAChallenged, r.ID)
	if err != nil {
		return nil, err
	}
	now := m.now()
	c := &ChallengeRecord{
		Hash:           hash,
		UserID:         cur.ID,
		UserGeneration: cur.Generation,
		Methods:        []AuthMethod{first},
		CreatedAt:      now,
		ExpiresAt:      now.Add(ChallengeTTL),
	}
	if err := m.write(ctx, cur.ID, func() error { return m.store.CreateChallenge(ctx, c, e) }, e); err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			return nil, ErrInvalidCredentials // removed or revoked meanwhile
		}
		return nil, storeErr("login", err)
	}
	return nil, &Challenge{Token: token, Methods: methods, ExpiresAt: c.ExpiresAt}
}
