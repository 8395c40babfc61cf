package users

import (
	"context"
	"errors"
	"time"
)

// Recent authentication. A session records when its user last proved a
// password or a factor for it (Session.AuthenticatedAt): at login, by
// Reauthenticate and by StepUp. The changes that would let someone holding
// only a session keep the account (enrolling or removing a factor, changing
// the password or the email) require that proof within Options.ReauthWindow
// of the acting session: the Session in the call's context (see NewContext;
// Manager.Middleware puts it there). A call whose context carries no Session
// is the application's own (a command-line tool, a job) and is not checked.
// Every method added later that creates a way to sign in (a passkey, a linked
// identity) checks it too.

// DefaultReauthWindow is the default of Options.ReauthWindow.
const DefaultReauthWindow = 10 * time.Minute

// EventReauthenticated records a session whose user proved the password again
// (Reauthenticate); AuditEntry.SessionID is the session.
const EventReauthenticated EventType = "session.reauthenticated"

// recentAuth returns ErrReauthRequired when ctx carries a Session (the actor)
// whose AuthenticatedAt is zero or more than Options.ReauthWindow ago, and
// nil when the proof is recent, when ctx carries no Session, or when the
// window is negative (the check is off).
func (m *Manager) recentAuth(ctx context.Context) error {
	if m.reauthWindow < 0 {
		return nil
	}
	s, ok := FromContext(ctx)
	if !ok {
		return nil
	}
	if s.AuthenticatedAt.IsZero() || m.now().Sub(s.AuthenticatedAt) > m.reauthWindow {
		return ErrReauthRequired
	}
	return nil
}

// Reauthenticate proves the user's password again for an existing session:
// it checks password for the user of the session whose bearer token is
// sessionToken and, if it is right, sets the session's AuthenticatedAt to now,
// so that for Options.ReauthWindow the session may make the changes that
// require a recent proof (see ErrReauthRequired). It returns the session
// (without its Token). A user with a second factor may use StepUp instead,
// which refreshes AuthenticatedAt too.
//
// The password is throttled and counted as Login counts it: enough wrong ones
// lock the account. It is not a login: a right password is never counted as
// a failure, also for a user with a second factor, whose earlier failures it
// does not forget (see UpdatePassword). It returns ErrInvalidToken for a session token
// that ValidateToken refuses (or a session ended meanwhile),
// ErrInvalidCredentials for a wrong password and ErrAccountLocked (no
// comparison made) while the account is locked. Its session.reauthenticated
// entry names the session. It is safe for concurrent use.
func (m *Manager) Reauthenticate(ctx context.Context, sessionToken, password string) (*Session, error) {
	s, err := m.ValidateToken(ctx, sessionToken)
	if err != nil {
		return nil, err
	}
	r, err := m.store.GetUser(ctx, s.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken // removed meanwhile
	}
	if err != nil {
		return nil, storeErr("reauthenticate", err)
	}
	if err := m.confirmPassword(ctx, r, UserThrottleKey(r.ID), password); err != nil {
		return nil, err
	}
	e, err := m.auditEntry(ctx, EventReauthenticated, s.UserID)
	if err != nil {
		return nil, err
	}
	e.SessionID = s.ID
	var rec *SessionRecord
	err = m.write(ctx, s.UserID, func() (err error) {
		// An empty method: a password proved again, not a second factor.
		rec, err = m.store.StepUpSession(ctx, s.UserID, s.ID, "", m.now(), e)
		return err
	}, e)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken // logged out or revoked meanwhile (a password change revokes)
	}
	if err != nil {
		return nil, storeErr("reauthenticate", err)
	}
	s.AuthenticatedAt = rec.AuthenticatedAt
	return s, nil
}
