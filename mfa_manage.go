package users

import (
	"context"
	"errors"
	"time"
)

// MFAStatus describes a user's second factors, for an account page. It holds
// no secret.
type MFAStatus struct {
	// Enabled reports whether Login asks the user for a second factor.
	Enabled bool `json:"enabled"`
	// Methods are the second factors the user can log in with.
	Methods []AuthMethod `json:"methods,omitempty"`
	// TOTPPending reports a TOTP enrolment begun and not yet confirmed.
	TOTPPending bool `json:"totp_pending,omitempty"`
	// EnabledAt is when the TOTP factor was confirmed, or zero.
	EnabledAt time.Time `json:"enabled_at,omitzero"`
	// RecoveryCodesLeft is how many unused recovery codes the user has.
	RecoveryCodesLeft int `json:"recovery_codes_left"`
	// RecoveryCodesAt is when the current recovery codes were made, or zero.
	RecoveryCodesAt time.Time `json:"recovery_codes_at,omitzero"`
}

// MFAStatus returns the state of the user's second factors. It returns
// ErrNotFound if there is no such user. It is safe for concurrent use.
func (m *Manager) MFAStatus(ctx context.Context, userID string) (*MFAStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := m.store.GetUser(ctx, userID); err != nil {
		return nil, storeErr("MFA status", err)
	}
	rec, err := m.mfaRecord(ctx, userID)
	if err != nil || rec == nil {
		return &MFAStatus{}, err
	}
	st := &MFAStatus{
		Methods:           secondFactors(rec),
		RecoveryCodesLeft: len(rec.RecoveryCodes),
		RecoveryCodesAt:   rec.RecoveryCodesAt,
	}
	st.Enabled = len(st.Methods) > 0
	if rec.TOTP != nil {
		st.TOTPPending = !rec.TOTP.Confirmed
		st.EnabledAt = rec.TOTP.ConfirmedAt
	}
	return st, nil
}

// DisableMFA removes the user's second factors (TOTP, a pending enrolment and
// the recovery codes) at the user's own request, after proving it again: give
// either the password or a fresh second-factor code, not both. Outstanding
// login challenges of the user are voided in the same step; sessions stay.
//
// The proof is throttled and counted like a login; a right password is never
// counted as a failure. It returns a
// *ValidationError on "password" when neither or both are given,
// ErrInvalidCredentials for a wrong password, ErrInvalidCode for a wrong code,
// ErrAccountLocked, ErrMFANotEnabled if the user has nothing to remove, and
// ErrNotFound. It is safe for concurrent use.
//
// Made with a Session in ctx (see NewContext), it first returns
// ErrReauthRequired, checking and changing nothing, unless that session's
// user proved a password or a factor within Options.ReauthWindow.
func (m *Manager) DisableMFA(ctx context.Context, userID, password, code string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.recentAuth(ctx); err != nil {
		return err
	}
	if (password == "") == (code == "") {
		return invalid("password", ValidationExclusive, "give either the password or a second-factor code")
	}
	r, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return storeErr("disable MFA", err)
	}
	rec, err := m.mfaRecord(ctx, userID)
	if err != nil {
		return err
	}
	if rec == nil {
		return ErrMFANotEnabled
	}
	key := UserThrottleKey(userID)
	if password != "" {
		err = m.confirmPassword(ctx, r, key, password)
	} else {
		if err = m.checkLock(ctx, key); err == nil {
			_, err = m.verifySecondFactor(ctx, userID, key, code)
		}
	}
	if err != nil {
		return err
	}
	if err := m.removeMFA(ctx, userID, EventMFADisabled); err != nil {
		return err
	}
	return m.forgetFailures(ctx, key)
}

// ResetMFA removes the user's second factors (TOTP, a pending enrolment and
// the recovery codes) without any proof: the administrator's counterpart of
// DisableMFA, for a user who lost their authenticator and recovery codes, and
// for an application's own authorisation to guard. Outstanding login
// challenges of the user are voided in the same step; sessions stay. A user
// without a second factor is left as is. It returns ErrNotFound if there is no
// such user. It is safe for concurrent use.
//
// Made with a Session in ctx (see NewContext), it first returns
// ErrReauthRequired, checking and changing nothing, unless that session's
// user proved a password or a factor within Options.ReauthWindow.
func (m *Manager) ResetMFA(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.recentAuth(ctx); err != nil {
		return err
	}
	return m.removeMFA(ctx, userID, EventMFAReset)
}

// removeMFA deletes the user's MFA record and challenges, recording event t
// if there was something to remove.
func (m *Manager) removeMFA(ctx context.Context, userID string, t EventType) error {
	e, err := m.auditEntry(ctx, t, userID)
	if err != nil {
		return err
	}
	err = m.write(ctx, userID, func() error {
		_, err := m.store.UpdateMFA(ctx, userID, func(w *MFARecord) (bool, error) {
			e.Type = t
			if w.IsEmpty() {
				e.Type = "" // nothing removed: nothing to record
			}
			*w = MFARecord{UserID: w.UserID}
			return true, nil
		}, e)
		return err
	}, e)
	if errors.Is(err, ErrNotFound) {
		return err
	}
	return storeErr("remove MFA", err)
}
