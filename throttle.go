package users

import (
	"context"
	"errors"
	"time"
)

// Login throttling. Every password check (Login, and the current password in
// UpdatePassword, RequestEmailChange and DisableMFA) first reserves its
// attempt in the store, in one atomic UpdateLoginAttempts made once a bcrypt
// slot is held: the attempt is counted as a failure before bcrypt runs, and a
// reservation that finds the key locked is refused with ErrAccountLocked. So
// of any number of concurrent guesses at most MaxFailedLogins are ever
// compared; a right password then releases the count. Every second-factor
// code (CompleteLogin, StepUp, DisableMFA, ConfirmTOTP) is reserved the same
// way under the user's key before it is checked.

// MaxConsecutiveFailures is how many failed password checks in a row lock an
// account until its password is reset or Manager.Unlock is called, however the
// failures are spread over time (NIST SP 800-63B 5.2.2). Only a success, a
// password change or reset, or Unlock starts the count again; for a user with
// a second factor, only a second factor's success or Unlock (a reset or
// change of the password does not: the failures may be guesses of codes).
const MaxConsecutiveFailures = 100

// maxLockout caps one escalated lock: each lock lasts twice as long as the one
// before, up to this (or LockoutDuration, if that is longer).
const maxLockout = 24 * time.Hour

// identifierMemory is how long the entry of an identifier that names nobody is
// kept after its last failure. A user's entry is kept until a success, a
// password change or Unlock (or the user's removal): an account's consecutive
// count must never be forgotten, but strangers must not be able to fill the
// store with everything they ever typed.
const identifierMemory = 30 * 24 * time.Hour

// neverExpires is the ExpiresAt of an entry that must not be purged. It is far
// off but within the range of every store (PostgreSQL keeps nanoseconds in an
// int64, which ends in 2262).
var neverExpires = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// legacy brings an entry written before Consecutive existed up to date: its
// Failures were consecutive too.
func legacy(a *LoginAttempts) {
	if a.Consecutive < a.Failures {
		a.Consecutive = a.Failures
	}
}

// locked reports whether a refuses every attempt at now.
func (m *Manager) locked(a LoginAttempts, now time.Time) bool {
	return a.Consecutive >= MaxConsecutiveFailures || now.Before(a.LockedUntil)
}

// lockDuration is how long the n-th lock of a run of failures lasts.
func (m *Manager) lockDuration(n int) time.Duration {
	limit := max(maxLockout, m.lockout)
	d := m.lockout
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// checkLock returns ErrAccountLocked while key is locked. It only reads, so
// that a locked account is refused without waiting for a bcrypt slot;
// reserveAttempt decides atomically.
func (m *Manager) checkLock(ctx context.Context, key ThrottleKey) error {
	a, err := m.store.GetLoginAttempts(ctx, key)
	if err != nil {
		return storeErr("login", err)
	}
	if now := m.now(); m.locked(a, now) {
		return m.lockedError(a, now)
	}
	return nil
}

// reservation is what reserveAttempt did: whether the attempt began the
// key's count (a new entry or window), whether it locked the key, and whether
// that lock was one for a time (not MaxConsecutiveFailures).
type reservation struct {
	first, locked, timed bool
}

// The Reason codes of login and token entries (AuditEntry.Reason).
const (
	reasonWrongPassword      = "wrong_password"     // login.failed of a user
	reasonUnknownIdentifier  = "unknown_identifier" // login.failed of nobody, first of its window
	reasonUnknownLocked      = "unknown_identifier_locked"
	reasonAccountDisabled    = "account_disabled"     // right password, Status not active
	reasonEmailNotVerified   = "email_not_verified"   // right password, Options.RequireVerifiedEmail
	reasonChangedMeanwhile   = "changed_meanwhile"    // right password, user changed before the session was made
	reasonTooManyFailures    = "too_many_failures"    // account.locked for a time
	reasonConsecutiveFailure = "consecutive_failures" // account.locked until a reset or Unlock
	reasonUserChanged        = "user_changed"         // token.redeemed: the user changed since the token was issued
	reasonEmailTaken         = "email_taken"          // token.redeemed: another user has the new email by now
)

// reserveAttempt counts one password check for key as a failure before it is
// made, locking key when the count reaches MaxFailedLogins (for a time that
// doubles with each lock) or MaxConsecutiveFailures (until a reset or Unlock).
// It returns ErrAccountLocked, counting nothing, if key is locked already.
// userID is the user key names (UserThrottleKey), or empty for an identifier
// that names nobody: only a user's count is kept until a success, and only a
// user's lock writes an account.locked entry, with the reservation that locks.
func (m *Manager) reserveAttempt(ctx context.Context, key ThrottleKey, userID string) (reservation, error) {
	now := m.now()
	var res reservation
	lock, err := m.auditEntry(ctx, "", userID) // made for nobody too: equal work
	if err != nil {
		return res, err
	}
	var refused error
	err = m.write(ctx, userID, func() error {
		_, err := m.store.UpdateLoginAttempts(ctx, key, func(a *LoginAttempts) error {
			res, lock.Type, lock.Reason, lock.Data = reservation{}, "", "", nil
			legacy(a)
			if m.locked(*a, now) {
				refused = m.lockedError(*a, now)
				return ErrAccountLocked
			}
			if a.Failures == 0 || !now.Before(a.WindowStart.Add(m.failureWindow)) || !a.LockedUntil.IsZero() {
				// A new window, or the first attempt after a lock ended.
				a.Failures, a.WindowStart, a.LockedUntil = 0, now, time.Time{}
				res.first = true
			}
			a.Failures++
			a.Consecutive++
			switch {
			case a.Consecutive == MaxConsecutiveFailures:
				res.locked, lock.Reason = true, reasonConsecutiveFailure
			case a.Failures >= m.maxFailures && a.Consecutive < MaxConsecutiveFailures:
				a.Locks++
				a.LockedUntil = now.Add(m.lockDuration(a.Locks))
				res.locked, res.timed, lock.Reason = true, true, reasonTooManyFailures
				lock.Data = map[string]string{"locked_until": a.LockedUntil.UTC().Format(time.RFC3339)}
			}
			if res.locked && userID != "" {
				lock.Type = EventAccountLocked
			}
			switch {
			case userID != "":
				a.ExpiresAt = neverExpires
			default:
				a.ExpiresAt = later(now.Add(identifierMemory), a.WindowStart.Add(m.failureWindow), a.LockedUntil)
			}
			return nil
		}, lock)
		return err
	}, lock)
	if errors.Is(err, ErrAccountLocked) && refused != nil {
		return res, refused
	}
	return res, storeErr("login", err)
}

// recordFailure writes the login.failed entry of a password check that failed
// its comparison, in a second UpdateLoginAttempts of key that changes nothing
// else. That write is made for every failed comparison, whether key names a
// user or nobody, so a wrong password and an unknown identifier cost the same
// store work (SECURITY.md, "Audit"); only the entry differs. A user's failure
// is always recorded (the lockout bounds how many there are). An identifier
// that names nobody gets an entry (with no UserID and nothing of what was
// typed) only when its attempt began its count or locked it, and then only
// within strangerEntriesPerMinute, so strangers cannot fill the log faster than
// that, whatever they type.
func (m *Manager) recordFailure(ctx context.Context, key ThrottleKey, userID string, res reservation) error {
	e, err := m.auditEntry(ctx, EventLoginFailed, userID)
	if err != nil {
		return err
	}
	switch {
	case userID != "":
		e.Reason = reasonWrongPassword
	case (res.first || res.locked) && m.strangers.take(m.now()):
		e.Reason = reasonUnknownIdentifier
		if res.locked {
			e.Reason = reasonUnknownLocked
		}
	default:
		e.Type = "" // written without an entry
	}
	err = m.write(ctx, userID, func() error {
		_, err := m.store.UpdateLoginAttempts(ctx, key, func(*LoginAttempts) error { return nil }, e)
		return err
	}, e)
	return storeErr("login", err)
}

// releaseAttempt records a right password for key: the count reserved for it
// and every earlier failure are forgotten. notUpgradable records that the
// password verified an imported hash that cannot be re-hashed; it is kept, so
// that LockState can say so, until the password changes.
func (m *Manager) releaseAttempt(ctx context.Context, key ThrottleKey, notUpgradable bool) error {
	_, err := m.store.UpdateLoginAttempts(ctx, key, func(a *LoginAttempts) error {
		*a = LoginAttempts{}
		if notUpgradable {
			a.HashNotUpgradable, a.ExpiresAt = true, neverExpires
		}
		return nil
	})
	return storeErr("login", err)
}

// passwordRight records a right password for key (see checkPassword). For a
// user with a second factor the attempt reserved for it stays counted, and
// earlier failures too, until a second factor succeeds: the password is only
// half of that user's credential.
func (m *Manager) passwordRight(ctx context.Context, r *UserRecord, key ThrottleKey, notUpgradable bool) error {
	if r != nil {
		rec, err := m.mfaRecord(ctx, r.ID)
		if err != nil {
			return err
		}
		if len(secondFactors(rec)) > 0 {
			if !notUpgradable {
				return nil
			}
			_, err := m.store.UpdateLoginAttempts(ctx, key, func(a *LoginAttempts) error {
				a.HashNotUpgradable, a.ExpiresAt = true, neverExpires
				return nil
			})
			return storeErr("login", err)
		}
	}
	return m.releaseAttempt(ctx, key, notUpgradable)
}

// forgetFailures records a verified second factor for key: the failures
// counted are forgotten, as releaseAttempt forgets them for a password, and
// only HashNotUpgradable is kept.
func (m *Manager) forgetFailures(ctx context.Context, key ThrottleKey) error {
	_, err := m.store.UpdateLoginAttempts(ctx, key, func(a *LoginAttempts) error {
		*a = LoginAttempts{HashNotUpgradable: a.HashNotUpgradable, ExpiresAt: a.ExpiresAt}
		if !a.HashNotUpgradable {
			a.ExpiresAt = time.Time{}
		}
		return nil
	})
	return storeErr("login", err)
}

// unreserve takes back one attempt that reserveAttempt counted for key as res
// says, for a proof that turned out right in an operation that is not a
// login: that attempt is no failure, but the failures counted before it stay
// (for a user with a second factor, only a second factor's success or Unlock
// forgets them). A timed lock that this very attempt set is lifted with it.
func (m *Manager) unreserve(ctx context.Context, key ThrottleKey, res reservation) error {
	_, err := m.store.UpdateLoginAttempts(ctx, key, func(a *LoginAttempts) error {
		a.Failures = max(a.Failures-1, 0)
		a.Consecutive = max(a.Consecutive-1, 0)
		if res.timed && a.Locks > 0 {
			a.Locks--
			a.LockedUntil = time.Time{}
		}
		return nil
	})
	return storeErr("login", err)
}

// unreserveSecondFactorUser takes back the reservation res of a right
// password of the user userID, if the user has a second factor (see
// unreserve); for a user without one, passwordRight forgets it with the rest.
func (m *Manager) unreserveSecondFactorUser(ctx context.Context, userID string, key ThrottleKey, res reservation) error {
	rec, err := m.mfaRecord(ctx, userID)
	if err != nil || len(secondFactors(rec)) == 0 {
		return err
	}
	return m.unreserve(ctx, key, res)
}

// passwordChanged records a password change or reset of the user: the
// password's failures are forgotten, unless the user has a second factor.
// Then the failures stay counted until a second factor succeeds or Unlock, as
// for a right password: they may be guesses of codes, and a reset (or a
// change by whoever has the password and a session) must not lift the limit
// on those. Only the mark of an imported hash is dropped, as the hash is new.
func (m *Manager) passwordChanged(ctx context.Context, userID string) error {
	key := UserThrottleKey(userID)
	rec, err := m.mfaRecord(ctx, userID)
	if err != nil {
		return err
	}
	if len(secondFactors(rec)) == 0 {
		return m.clearFailures(ctx, key)
	}
	a, err := m.store.GetLoginAttempts(ctx, key)
	if err != nil || !a.HashNotUpgradable {
		return storeErr("login", err)
	}
	_, err = m.store.UpdateLoginAttempts(ctx, key, func(a *LoginAttempts) error {
		a.HashNotUpgradable = false
		if a.Consecutive == 0 && a.Failures == 0 && a.Locks == 0 && a.LockedUntil.IsZero() {
			*a = LoginAttempts{}
		}
		return nil
	})
	return storeErr("login", err)
}

// clearFailures forgets everything about key, after an administrator set the
// password or a password change or reset of a user without a second factor.
func (m *Manager) clearFailures(ctx context.Context, key ThrottleKey) error {
	a, err := m.store.GetLoginAttempts(ctx, key)
	if err != nil || a.IsZero() {
		return storeErr("login", err)
	}
	_, err = m.store.UpdateLoginAttempts(ctx, key, func(a *LoginAttempts) error {
		*a = LoginAttempts{}
		return nil
	})
	return storeErr("login", err)
}

// later returns the latest of ts.
func later(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// LockState is an account's login-throttle state, as Manager.LockState reports
// it to support staff: why someone cannot log in, and what would let them.
type LockState struct {
	// Locked is true while Login and UpdatePassword answer ErrAccountLocked for
	// the account, whatever the password.
	Locked bool `json:"locked"`
	// LockedUntil is when the current lock ends; zero when not locked, and when
	// Permanent.
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// Permanent is true after MaxConsecutiveFailures failures in a row: the
	// account stays locked until a password reset or Manager.Unlock (for a
	// user with a second factor, until Unlock).
	Permanent bool `json:"permanent"`
	// ConsecutiveFailures counts failed password checks since the last success,
	// password change or reset, or Unlock.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// Locks counts the locks in the current run of failures. The n-th lasts
	// LockoutDuration × 2^(n-1), at most 24 hours (or LockoutDuration if longer).
	Locks int `json:"locks"`
	// ImportedHash is true while the stored password hash is one imported through
	// NewUser.PasswordHash, not yet replaced by this package's format.
	ImportedHash bool `json:"imported_hash"`
	// ImportedHashNotUpgradable is true when a login verified the imported hash
	// but could not replace it: the password contains a tab or another control
	// character, or bytes that are not UTF-8, which this package refuses in new
	// passwords. The user can go on logging in with it; ask them to change it.
	ImportedHashNotUpgradable bool `json:"imported_hash_not_upgradable"`
}

// LockState returns the login-throttle state of the user's account. It returns
// ErrNotFound if there is no such user. It only reads, and is safe for
// concurrent use.
func (m *Manager) LockState(ctx context.Context, userID string) (*LockState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return nil, storeErr("lock state", err)
	}
	a, err := m.store.GetLoginAttempts(ctx, UserThrottleKey(r.ID))
	if err != nil {
		return nil, storeErr("lock state", err)
	}
	legacy(&a)
	now := m.now()
	st := &LockState{
		Locked:              m.locked(a, now),
		Permanent:           a.Consecutive >= MaxConsecutiveFailures,
		ConsecutiveFailures: a.Consecutive,
		Locks:               a.Locks,
		ImportedHash:        isImportedHash(r.PasswordHash),
	}
	if st.Locked && !st.Permanent {
		st.LockedUntil = a.LockedUntil
	}
	st.ImportedHashNotUpgradable = st.ImportedHash && a.HashNotUpgradable
	return st, nil
}

// Unlock ends the lock of the user's account and forgets its failures, so that
// the next Login is checked as if none had failed; a permanent lock (after
// MaxConsecutiveFailures) ends too. Deciding who may unlock is the
// application's (typically support staff, after checking who is asking). It
// returns ErrNotFound if there is no such user. It is safe for concurrent use.
func (m *Manager) Unlock(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return storeErr("unlock", err)
	}
	e, err := m.auditEntry(ctx, EventAccountUnlocked, r.ID)
	if err != nil {
		return err
	}
	err = m.write(ctx, r.ID, func() error {
		_, err := m.store.UpdateLoginAttempts(ctx, UserThrottleKey(r.ID), func(a *LoginAttempts) error {
			keep := a.HashNotUpgradable
			*a = LoginAttempts{}
			if keep {
				a.HashNotUpgradable, a.ExpiresAt = true, neverExpires
			}
			return nil
		}, e)
		return err
	}, e)
	return storeErr("unlock", err)
}
