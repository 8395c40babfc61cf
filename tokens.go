package users

import (
	"context"
	"errors"
	"time"
)

// One-time tokens carry account-recovery and onboarding flows. Each is 256 bits
// from Options.Rand, stored only as its SHA-256, bound to one user and one
// Purpose, expires after its purpose's lifetime, and redeems at most once. The
// library sends no mail: the request methods return a Delivery, the token and
// the stored address to send it to, for the application to deliver (typically
// inside a link).

// Delivery is a one-time token and where to send it, as the request methods
// return it. To is the address stored for the user when the token was issued:
// send the token there, and never to the address the caller typed, which may
// differ from it (and, before this package refused non-ASCII input, could fold
// into another person's address).
type Delivery struct {
	To        string    // the user's stored address: send here, never to the caller's input
	Token     string    // the one-time token, for the application to put in a link
	UserID    string    // the user the token is for
	ExpiresAt time.Time // when the token stops working
}

// issueToken creates a token of purpose p for r, with its token.issued entry
// when record is set. With replace, the user's other tokens of p are voided in
// the same step. A password change or revocation that lands while the token is
// being stored would otherwise miss it: so the user is read again afterwards,
// and if its Generation or email moved the token is voided and issued again for
// the user as it is now (each issue is recorded).
func (m *Manager) issueToken(ctx context.Context, r *UserRecord, p Purpose, replace, record bool) (*Delivery, error) {
	return m.issueTokenTo(ctx, r, p, replace, record, "")
}

// issueTokenTo is issueToken for a token bound to the address to instead of the
// user's current one (when to is not empty): an email change.
func (m *Manager) issueTokenTo(ctx context.Context, r *UserRecord, p Purpose, replace, record bool, to string) (*Delivery, error) {
	for range 3 {
		token, hash, err := m.newToken()
		if err != nil {
			return nil, err
		}
		now := m.now()
		t := &TokenRecord{
			Hash:      hash,
			UserID:    r.ID,
			Purpose:   p,
			Email:     or(to, r.Email),
			CreatedAt: now,
			ExpiresAt: now.Add(m.tokenTTL[p]),
		}
		e, err := m.auditEntry(ctx, EventTokenIssued, r.ID)
		if err != nil {
			return nil, err
		}
		e.Purpose = p
		if !record {
			e.Type = ""
		}
		if err := m.write(ctx, r.ID, func() error { return m.store.CreateToken(ctx, t, replace, e) }, e); err != nil {
			return nil, storeErr("issue token", err)
		}
		cur, err := m.store.GetUser(ctx, r.ID)
		if err == nil && cur.Generation == r.Generation && cur.Email == r.Email {
			return &Delivery{To: t.Email, Token: token, UserID: t.UserID, ExpiresAt: t.ExpiresAt}, nil
		}
		if _, cerr := m.store.ConsumeToken(context.WithoutCancel(ctx), hash, p); cerr != nil && !errors.Is(cerr, ErrNotFound) {
			return nil, storeErr("issue token", cerr)
		}
		if err != nil {
			return nil, storeErr("issue token", err)
		}
		r = cur
	}
	return nil, storeErr("issue token", ErrConflict)
}

// peekToken finds a live token of purpose p and its user without redeeming it.
// Expiry is decided here, not by the store (see Store).
func (m *Manager) peekToken(ctx context.Context, token string, p Purpose) (*TokenRecord, *UserRecord, error) {
	hash, ok := parseToken(token)
	if !ok {
		return nil, nil, ErrInvalidToken
	}
	t, err := m.store.GetToken(ctx, hash, p)
	if err == nil && !m.now().Before(t.ExpiresAt) {
		return nil, nil, ErrInvalidToken
	}
	if err == nil {
		var r *UserRecord
		r, err = m.store.GetUser(ctx, t.UserID)
		if err == nil {
			return t, r, nil
		}
	}
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrInvalidToken
	}
	return nil, nil, storeErr("token", err)
}

// consumeToken redeems a token of purpose p: exactly one caller ever gets it. An
// expired token is consumed too (it is void either way) and refused.
func (m *Manager) consumeToken(ctx context.Context, token string, p Purpose) (*TokenRecord, error) {
	hash, ok := parseToken(token)
	if !ok {
		return nil, ErrInvalidToken
	}
	t, err := m.store.ConsumeToken(ctx, hash, p)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("token", err)
	}
	if !m.now().Before(t.ExpiresAt) {
		return nil, ErrInvalidToken
	}
	return t, nil
}

// refusedRedemption is the error of the change a token t was redeemed for, when
// the store refused it: t is used up and changed nothing. ErrNotFound (the user
// is gone) becomes ErrInvalidToken. A refusal (ErrInvalidToken: the user
// changed since t was issued; ErrAccountDisabled; ErrDuplicateEmail) is
// recorded as token.redeemed with t's purpose and the reason, and returned;
// any other error is the store's, returned as op's.
func (m *Manager) refusedRedemption(ctx context.Context, t *TokenRecord, op string, err error) error {
	if errors.Is(err, ErrNotFound) {
		err = ErrInvalidToken
	}
	var reason string
	switch {
	case errors.Is(err, ErrInvalidToken):
		reason = reasonUserChanged
	case errors.Is(err, ErrAccountDisabled):
		reason = reasonAccountDisabled
	case errors.Is(err, ErrDuplicateEmail):
		reason = reasonEmailTaken
	default:
		return storeErr(op, err)
	}
	e, aerr := m.auditEntry(ctx, EventTokenRedeemed, t.UserID)
	if aerr != nil {
		return aerr
	}
	e.Purpose, e.Reason = t.Purpose, reason
	if werr := m.write(ctx, t.UserID, func() error { return m.store.AppendAudit(ctx, e) }, e); werr != nil {
		return storeErr(op, werr)
	}
	return err
}

// requestAction is the rate-limited action of a request by email.
func requestAction(p Purpose) RateAction {
	if p == PurposeMagicLink {
		return ActionMagicLink
	}
	return ActionPasswordReset
}

// requestByEmail issues a token of purpose p for the active user with the email:
// the password-reset and magic-link requests, counted first under their
// RateAction for the client and the email (a refusal is the same whoever
// has the email). An email that names nobody, or a
// user who is not active, costs the store the same work (decoyToken), so that
// nothing that runs after the request (a follow-up request waiting for the
// store's commit, say) tells whether the email has an account.
func (m *Manager) requestByEmail(ctx context.Context, email string, p Purpose) (*Delivery, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if err := m.limit(ctx, requestAction(p), e); err != nil {
		return nil, err
	}
	r, err := m.store.GetUserByEmail(ctx, e)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, m.decoyToken(ctx, p, e, ErrUnknownEmail)
	case err != nil:
		return nil, storeErr("token", err)
	case r.Status != StatusActive:
		return nil, m.decoyToken(ctx, p, r.Email, ErrAccountDisabled)
	}
	return m.issueToken(ctx, r, p, false, true)
}

// decoyToken does the work of issueToken for a token of purpose p sent to
// email, for a user ID that names nobody, and keeps none of it: the same
// token and entry made, the same store write and commit
// (Store.CreateTokenDecoy), the same read after it. It returns refusal, or the
// store's error.
func (m *Manager) decoyToken(ctx context.Context, p Purpose, email string, refusal error) error {
	_, hash, err := m.newToken()
	if err != nil {
		return err
	}
	now := m.now()
	nobody, err := m.newID(now) // shaped like a user ID
	if err != nil {
		return err
	}
	t := &TokenRecord{Hash: hash, UserID: nobody, Purpose: p, Email: email, CreatedAt: now, ExpiresAt: now.Add(m.tokenTTL[p])}
	e, err := m.auditEntry(ctx, EventTokenIssued, nobody)
	if err != nil {
		return err
	}
	e.Purpose = p
	if err := m.stamp([]*AuditEntry{e}); err != nil { // as write does; no event for a decoy
		return err
	}
	if err := m.store.CreateTokenDecoy(ctx, t, e); err != nil {
		return storeErr("token", err)
	}
	if _, err := m.store.GetUser(ctx, nobody); err != nil && !errors.Is(err, ErrNotFound) {
		return storeErr("token", err)
	}
	return refusal
}

// redeemProvingEmail redeems a token of purpose p that was sent to the user's
// email, and marks that email verified: the token reaching the inbox proves it.
// It returns ErrInvalidToken if the email changed since, and with active set,
// ErrAccountDisabled if the user is not active. Its user.email_verified entry
// (with the token's purpose) is written with the change when always is set,
// and otherwise only when the email was not verified before.
func (m *Manager) redeemProvingEmail(ctx context.Context, token string, p Purpose, active, always bool) (*UserRecord, error) {
	t, err := m.consumeToken(ctx, token, p)
	if err != nil {
		return nil, err
	}
	now := m.now()
	e, err := m.auditEntry(ctx, EventEmailVerified, t.UserID)
	if err != nil {
		return nil, err
	}
	e.Purpose = p
	var r *UserRecord
	err = m.write(ctx, t.UserID, func() (err error) {
		r, err = m.store.UpdateUser(ctx, t.UserID, func(cur *UserRecord) (Revoke, error) {
			e.Type = ""
			if cur.Email != t.Email {
				return Revoke{}, ErrInvalidToken
			}
			if active && cur.Status != StatusActive {
				return Revoke{}, ErrAccountDisabled
			}
			if always || !cur.EmailVerified {
				e.Type = EventEmailVerified
			}
			if !cur.EmailVerified {
				cur.EmailVerified, cur.EmailVerifiedAt, cur.UpdatedAt = true, now, now
			}
			return Revoke{}, nil
		}, e)
		return err
	}, e)
	if err != nil {
		return nil, m.refusedRedemption(ctx, t, "redeem token", err)
	}
	return r, nil
}

// RequestPasswordReset returns a password-reset token for the user with the
// email, and the address to send it to: Delivery.To, the address stored for the
// user, never email as the caller typed it. The token lives
// Options.PasswordResetTTL (default 1 hour); earlier reset tokens stay valid
// until one is redeemed.
//
// It returns ErrUnknownEmail if no user has the email and ErrAccountDisabled if
// the user is not active. Answer the requester exactly as on success in both
// cases (same response, and send the mail asynchronously so the timing matches
// too), or the endpoint tells strangers who has an account. A malformed email is
// a *ValidationError; so is any non-ASCII one, refused before it could be folded
// into someone else's address. It is safe for concurrent use.
func (m *Manager) RequestPasswordReset(ctx context.Context, email string) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.requestByEmail(ctx, email, PurposePasswordReset)
}

// IssuePasswordReset returns a password-reset token for the user with the ID,
// and voids the user's earlier reset tokens in the same step: for support
// staff and admin tools, where the newest token handed out must be the only
// one that works. (RequestPasswordReset, which anyone may call with an email,
// keeps the earlier tokens, so that a stranger's request cannot void the link
// the user is about to follow.) The token lives Options.PasswordResetTTL.
//
// It returns ErrNotFound if there is no such user and ErrAccountDisabled if
// the user is not active. It is safe for concurrent use: of concurrent calls
// for one user, the token of the one that commits last is the one left.
func (m *Manager) IssuePasswordReset(ctx context.Context, userID string) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return nil, storeErr("issue password reset", err)
	}
	if r.Status != StatusActive {
		return nil, ErrAccountDisabled
	}
	return m.issueToken(ctx, r, PurposePasswordReset, true, true)
}

// ResetPassword redeems a password-reset token and sets the new password, which
// must pass the length rules and the password checker (a refused password leaves
// the token valid). It revokes every session and every other outstanding
// one-time token of the user, and clears a login lock; for a user with a
// second factor it keeps the failures counted and any lock, which only a right
// second factor or Unlock forgets, so that whoever has the mailbox (and the
// password) cannot reset their way to more code guesses.
//
// It returns ErrInvalidToken for a token that is unknown, malformed, expired,
// already used, issued for another purpose, or issued before the email or
// password last changed, and a *ValidationError on "password".
func (m *Manager) ResetPassword(ctx context.Context, token, newPassword string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.limit(ctx, ActionRedeem, ""); err != nil {
		return err
	}
	_, r, err := m.peekToken(ctx, token, PurposePasswordReset)
	if err != nil {
		return err
	}
	n, err := m.checkNewPassword(ctx, "password", newPassword, &r.User)
	if err != nil {
		return err
	}
	h, err := m.hashPassword(ctx, n)
	if err != nil {
		return err
	}
	t, err := m.consumeToken(ctx, token, PurposePasswordReset)
	if err != nil {
		return err
	}
	now := m.now()
	e, err := m.auditEntry(ctx, EventPasswordReset, t.UserID)
	if err != nil {
		return err
	}
	e.Purpose = PurposePasswordReset
	err = m.write(ctx, t.UserID, func() error {
		_, err := m.store.UpdateUser(ctx, t.UserID, func(cur *UserRecord) (Revoke, error) {
			if cur.Email != t.Email || cur.Status != StatusActive {
				return Revoke{}, ErrInvalidToken
			}
			cur.PasswordHash, cur.UpdatedAt = h, now
			return Revoke{Sessions: true, Tokens: Purposes()}, nil
		}, e)
		return err
	}, e)
	if err != nil {
		return m.refusedRedemption(ctx, t, "reset password", err)
	}
	return m.passwordChanged(ctx, t.UserID)
}

// RequestEmailVerification returns a token that proves the user owns their
// current email, for the application to send to Delivery.To (the stored
// address). It lives Options.EmailVerificationTTL (default 48 hours) and is
// voided if the email changes. It returns ErrNotFound if there is no such user.
func (m *Manager) RequestEmailVerification(ctx context.Context, userID string) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return nil, storeErr("request verification", err)
	}
	return m.issueToken(ctx, r, PurposeVerifyEmail, false, true)
}

// VerifyEmail redeems a verification token: the user's EmailVerified becomes true
// and EmailVerifiedAt now. It returns the updated user, or ErrInvalidToken for a
// token that is unknown, malformed, expired, used, for another purpose, or issued
// for an email the user no longer has.
func (m *Manager) VerifyEmail(ctx context.Context, token string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.limit(ctx, ActionRedeem, ""); err != nil {
		return nil, err
	}
	r, err := m.redeemProvingEmail(ctx, token, PurposeVerifyEmail, false, true)
	if err != nil {
		return nil, err
	}
	return r.User.Clone(), nil
}

// Invite creates a user without a password, in StatusInvited, and returns it
// with an invitation token for the application to send to the user's email. The
// token lives Options.InvitationTTL (default 7 days). nu is validated as by
// Create, except that Password and PasswordHash must be empty and Status is
// ignored. Deciding who may invite is the application's (typically admins).
//
// It returns a *ValidationError, or ValidationErrors naming every refused
// field as Create does, ErrDuplicateEmail or ErrDuplicateUsername, and then
// nothing is stored.
func (m *Manager) Invite(ctx context.Context, nu NewUser) (*User, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	r, _, err := m.checkNew(ctx, nu, true)
	if err != nil {
		return nil, "", err
	}
	u, err := m.insert(ctx, r, PurposeInvitation) // its entry stands for the token too
	if err != nil {
		return nil, "", err
	}
	d, err := m.issueToken(ctx, r, PurposeInvitation, true, false)
	if err != nil {
		// Undo, so that a retry is not refused as a duplicate.
		ctx := context.WithoutCancel(ctx)
		if e, eerr := m.auditEntry(ctx, EventUserRemoved, r.ID); eerr == nil {
			e.Reason = "invitation_failed"
			_ = m.write(ctx, r.ID, func() error { return m.store.DeleteUser(ctx, r.ID, e) }, e)
		}
		return nil, "", err
	}
	return u, d.Token, nil
}

// Reinvite issues a new invitation token for a user who has not accepted yet,
// voiding the earlier one, for the application to send to Delivery.To (the
// stored address). It returns ErrNotFound, or a *ValidationError on "status" if
// the user is not in StatusInvited.
func (m *Manager) Reinvite(ctx context.Context, userID string) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return nil, storeErr("reinvite", err)
	}
	if r.Status != StatusInvited {
		return nil, invalid("status", ValidationWrongState, "user is not waiting for an invitation")
	}
	return m.issueToken(ctx, r, PurposeInvitation, true, true)
}

// AcceptInvitation redeems an invitation token with the password the user chose
// (length rules and password checker apply; a refused password leaves the token
// valid). The user becomes active, their email counts as verified (the token
// reached it), and a new session is returned with its Token set.
//
// It returns ErrInvalidToken for a token that is unknown, malformed, expired,
// used, voided by a re-invitation, or for another purpose, and a
// *ValidationError on "password".
func (m *Manager) AcceptInvitation(ctx context.Context, token, password string) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.limit(ctx, ActionRedeem, ""); err != nil {
		return nil, err
	}
	_, r, err := m.peekToken(ctx, token, PurposeInvitation)
	if err != nil {
		return nil, err
	}
	n, err := m.checkNewPassword(ctx, "password", password, &r.User)
	if err != nil {
		return nil, err
	}
	h, err := m.hashPassword(ctx, n)
	if err != nil {
		return nil, err
	}
	t, err := m.consumeToken(ctx, token, PurposeInvitation)
	if err != nil {
		return nil, err
	}
	now := m.now()
	e, err := m.auditEntry(ctx, EventInvitationAccepted, t.UserID)
	if err != nil {
		return nil, err
	}
	e.Purpose = PurposeInvitation
	err = m.write(ctx, t.UserID, func() (err error) {
		r, err = m.store.UpdateUser(ctx, t.UserID, func(cur *UserRecord) (Revoke, error) {
			if cur.Status != StatusInvited || cur.Email != t.Email {
				return Revoke{}, ErrInvalidToken
			}
			cur.PasswordHash, cur.Status, cur.UpdatedAt = h, StatusActive, now
			cur.EmailVerified, cur.EmailVerifiedAt = true, now
			return Revoke{Tokens: Purposes()}, nil
		}, e)
		return err
	}, e)
	if err != nil {
		return nil, m.refusedRedemption(ctx, t, "accept invitation", err)
	}
	return m.linkLogin(ctx, r, PurposeInvitation)
}

// linkLogin logs r in by an email link of purpose p, once its token has been
// redeemed. A change that voids the login (a password change, suspension,
// removal or revocation) landing after the redemption makes it a failed login,
// recorded as login.failed (changed_meanwhile) and answered ErrInvalidToken:
// the token was for a user as they no longer are.
func (m *Manager) linkLogin(ctx context.Context, r *UserRecord, p Purpose) (*Session, error) {
	s, err := m.login(ctx, r, MethodEmailLink, p, func(*UserRecord) error { return nil })
	if errors.Is(err, ErrInvalidCredentials) {
		return nil, m.refuseLogin(ctx, r.ID, reasonChangedMeanwhile, ErrInvalidToken)
	}
	return s, err
}

// RequestMagicLink returns a single-use login token for the user with the email,
// for the application to send to Delivery.To: the stored address, never the
// caller's input. It lives Options.MagicLinkTTL (default 15 minutes). Errors are
// as for RequestPasswordReset: answer ErrUnknownEmail and ErrAccountDisabled
// exactly like success.
func (m *Manager) RequestMagicLink(ctx context.Context, email string) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.requestByEmail(ctx, email, PurposeMagicLink)
}

// LoginWithMagicLink redeems a magic-link token and returns a new session with
// its Token set. Since the token reached the user's inbox, their email counts as
// verified. It returns ErrInvalidToken for a token that is unknown, malformed,
// expired, used, for another purpose, or issued for an email or password the user
// no longer has, and ErrAccountDisabled if the user is no longer active.
func (m *Manager) LoginWithMagicLink(ctx context.Context, token string) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.limit(ctx, ActionRedeem, ""); err != nil {
		return nil, err
	}
	r, err := m.redeemProvingEmail(ctx, token, PurposeMagicLink, true, false)
	if err != nil {
		return nil, err
	}
	return m.linkLogin(ctx, r, PurposeMagicLink)
}

// RequestEmailChange starts a change of the user's own email to newEmail. It
// checks the user's current password (throttled and counted like
// UpdatePassword's) and returns a token for the application to send to the new
// address, Delivery.To; ConfirmEmailChange redeems it. The email changes only
// then, so the address is proven before it is used, and a session alone (a
// borrowed laptop) cannot move the account to another inbox. The token lives
// Options.EmailVerificationTTL (default 48 hours); a new request voids the
// previous one, as does any change of password, email or status.
//
// It does not look whether another user has newEmail: that answer would tell
// the caller who has an account. If one has, ConfirmEmailChange returns
// ErrDuplicateEmail, to whoever reads the new address's mail.
//
// The password is throttled like a login's (a wrong one counts as a failure);
// a right one is never counted as a failure, also for a user with a second
// factor, whose earlier failures it leaves counted.
//
// It returns ErrInvalidCredentials for a wrong password (ErrAccountLocked once
// locked), ErrNotFound, ErrAccountDisabled if the user is not active, and a
// *ValidationError on "email" for a malformed (or non-ASCII) address or the
// user's current one. It is safe for concurrent use.
//
// Made with a Session in ctx (see NewContext), it first returns
// ErrReauthRequired, checking and changing nothing, unless that session's
// user proved a password or a factor within Options.ReauthWindow.
func (m *Manager) RequestEmailChange(ctx context.Context, userID, password, newEmail string) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.recentAuth(ctx); err != nil {
		return nil, err
	}
	e, err := NormalizeEmail(newEmail)
	if err != nil {
		return nil, err
	}
	r, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return nil, storeErr("request email change", err)
	}
	if err := m.confirmPassword(ctx, r, UserThrottleKey(r.ID), password); err != nil {
		return nil, err
	}
	switch {
	case r.Status != StatusActive:
		return nil, ErrAccountDisabled
	case e == r.Email:
		return nil, invalid("email", ValidationUnchanged, "is already the account's email")
	}
	return m.issueTokenTo(ctx, r, PurposeEmailChange, true, true, e)
}

// ConfirmEmailChange redeems a token from RequestEmailChange: the user's email
// becomes the address the token was sent to, and counts as verified (the token
// reached it). The user's other outstanding reset, magic-link, verification and
// email-change tokens are voided. It returns the updated user.
//
// It returns ErrInvalidToken for a token that is unknown, malformed, expired,
// used, for another purpose, or voided by a later change of the user's password,
// email or status; ErrDuplicateEmail if another user has the address by now
// (the token is used up); and ErrAccountDisabled if the user is not active. It
// is safe for concurrent use: a token redeems at most once.
func (m *Manager) ConfirmEmailChange(ctx context.Context, token string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.limit(ctx, ActionRedeem, ""); err != nil {
		return nil, err
	}
	t, err := m.consumeToken(ctx, token, PurposeEmailChange)
	if err != nil {
		return nil, err
	}
	now := m.now()
	e, err := m.auditEntry(ctx, EventEmailChanged, t.UserID)
	if err != nil {
		return nil, err
	}
	e.Purpose, e.Fields = PurposeEmailChange, []string{"email"}
	var r *UserRecord
	err = m.write(ctx, t.UserID, func() (err error) {
		r, err = m.store.UpdateUser(ctx, t.UserID, func(cur *UserRecord) (Revoke, error) {
			if cur.Status != StatusActive {
				return Revoke{}, ErrAccountDisabled
			}
			cur.Email, cur.EmailVerified, cur.EmailVerifiedAt, cur.UpdatedAt = t.Email, true, now, now
			return Revoke{Tokens: []Purpose{PurposeVerifyEmail, PurposePasswordReset, PurposeMagicLink, PurposeEmailChange}}, nil
		}, e)
		return err
	}, e)
	if err != nil {
		return nil, m.refusedRedemption(ctx, t, "confirm email change", err)
	}
	return r.User.Clone(), nil
}
