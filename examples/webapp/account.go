package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

// account shows the settings page: profile, password, email and second
// factor.
func (a *App) account(w http.ResponseWriter, r *http.Request) {
	a.renderAccount(w, r, http.StatusOK, page{})
}

// accountPage is the data of the account page.
type accountPage struct {
	MFA        *users.MFAStatus       // nil if it could not be read
	Passkeys   []*users.Passkey       // see passkey.go
	Devices    []*users.TrustedDevice // the browsers trusted to skip the code
	Identities *linkedSection         // nil without providers (providers.go)
}

func (a *App) renderAccount(w http.ResponseWriter, r *http.Request, status int, p page) {
	u := currentUser(r)
	p.Title = "Your account"
	st, err := a.users.MFAStatus(r.Context(), u.ID)
	if err != nil {
		a.log.ErrorContext(r.Context(), "reading second factors", "err", err)
	}
	ds, err := a.users.TrustedDevices(r.Context(), u.ID)
	if err != nil {
		a.log.ErrorContext(r.Context(), "listing trusted devices", "err", err)
	}
	p.Data = accountPage{MFA: st, Devices: ds, Identities: a.identities(r, u.ID), Passkeys: a.passkeys(r, u.ID)}
	if p.Form == nil {
		p.Form = url.Values{}
	}
	for k, v := range map[string]string{"first_name": u.FirstName, "last_name": u.LastName, "username": u.Username} {
		if _, ok := p.Form[k]; !ok {
			p.Form.Set(k, v)
		}
	}
	a.render(w, r, status, "account", p)
}

func (a *App) updateProfile(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	first, last, username := f.Get("first_name"), f.Get("last_name"), f.Get("username")
	_, err := a.users.Update(r.Context(), currentUser(r).ID, users.UserUpdate{FirstName: &first, LastName: &last, Username: &username})
	p := page{Form: url.Values{"first_name": {first}, "last_name": {last}, "username": {username}}}
	if fields, ok := fieldError(err); ok {
		p.Fields = fields
		a.renderAccount(w, r, http.StatusBadRequest, p)
		return
	}
	switch {
	case errors.Is(err, users.ErrDuplicateUsername):
		p.Fields = map[string]string{"username": "This username is taken."}
		a.renderAccount(w, r, http.StatusConflict, p)
	case err != nil:
		a.internal(w, r, "updating a profile", err)
	default:
		a.redirect(w, r, "/account", "profile-saved")
	}
}

// changePassword changes the password, which ends every session of the user
// (other browsers are signed out), and signs this browser in again.
func (a *App) changePassword(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	current, next := r.PostForm.Get("current_password"), r.PostForm.Get("new_password")
	err := a.withReauth(r, current, func(ctx context.Context) error {
		return a.users.UpdatePassword(ctx, u.ID, current, next)
	})
	if fields, ok := fieldError(err); ok {
		a.renderAccount(w, r, http.StatusBadRequest, page{Fields: map[string]string{"new_password": fields["password"]}})
		return
	}
	switch {
	case errors.Is(err, users.ErrInvalidCredentials):
		a.renderAccount(w, r, http.StatusBadRequest, page{Fields: map[string]string{"current_password": "The current password is wrong."}})
		return
	case errors.Is(err, users.ErrAccountLocked):
		a.renderAccount(w, r, http.StatusTooManyRequests, page{Fields: map[string]string{"current_password": "Too many wrong passwords: try again later."}})
		return
	case err != nil:
		a.internal(w, r, "changing a password", err)
		return
	}
	a.endSession(w, r) // already ended by the change; this deletes the cookie
	s, err := a.users.Login(r.Context(), u.Email, next)
	var c *users.Challenge
	switch {
	case errors.As(err, &c): // a second factor: its code signs in again
		a.flash(w, "password-changed")
		a.startChallenge(w, r, c, "/account")
	case err != nil: // e.g. an unconfirmed email with RequireVerifiedEmail
		a.redirect(w, r, "/signin", "password-relogin")
	default:
		a.startSession(w, r, s)
		a.redirect(w, r, "/account", "password-changed")
	}
}

// changeEmail asks, with the password given again, for the account's email to
// move to a new address: users.Manager.RequestEmailChange. Nothing changes
// until the link mailed to the new address is followed (confirmEmail), so a
// typo cannot lock the owner out or send their reset links elsewhere, and a
// session alone cannot move the account to another inbox. The answer, the
// page after it and the work done are the same whether or not another account
// has the new address: the library does not look, and the mails go out either
// way. The current address is told of the request.
func (a *App) changeEmail(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	typed := r.PostForm.Get("email")
	p := page{Form: url.Values{"email": {typed}}}
	password := r.PostForm.Get("email_password")
	var d *users.Delivery
	err := a.withReauth(r, password, func(ctx context.Context) (err error) {
		d, err = a.users.RequestEmailChange(ctx, u.ID, password, typed)
		return err
	})
	if fields, ok := fieldError(err); ok { // malformed, or the current address
		p.Fields = fields
		a.renderAccount(w, r, http.StatusBadRequest, p)
		return
	}
	switch {
	case errors.Is(err, users.ErrInvalidCredentials):
		p.Fields = map[string]string{"email_password": "The password is wrong."}
		a.renderAccount(w, r, http.StatusBadRequest, p)
		return
	case errors.Is(err, users.ErrAccountLocked):
		p.Fields = map[string]string{"email_password": "Too many wrong passwords: try again later."}
		a.renderAccount(w, r, http.StatusTooManyRequests, p)
		return
	case err != nil:
		a.internal(w, r, "asking for an email change", err)
		return
	}
	old, to, link := u.Email, d.To, a.link("/email/confirm", d.Token)
	if err := a.work.enqueue(r.Context(), func(ctx context.Context) {
		a.mailKind(ctx, mail.KindEmailChange, mail.Data{To: to, Link: link})
		a.send(ctx, Message{To: old, Subject: "A change of your email was asked for",
			Text: "Someone signed in to your account asked to move it to another address. It moves only when the link sent there is followed. If it was not you, change your password now.",
			Link: a.base + "/account"})
	}); err != nil {
		a.internal(w, r, "queueing a mail", err)
		return
	}
	a.redirect(w, r, "/account", "email-sent")
}

func (a *App) confirmEmailForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "confirm-email", page{Title: "Confirm your new email", Form: url.Values{"token": {r.URL.Query().Get("token")}}})
}

// confirmEmail redeems the link of an email change: the account's email
// becomes the new address, confirmed. As for every link, the GET only shows a
// button. It needs no session: the link proves the new address, on whatever
// device it is opened.
func (a *App) confirmEmail(w http.ResponseWriter, r *http.Request) {
	_, err := a.users.ConfirmEmailChange(r.Context(), r.PostForm.Get("token"))
	switch {
	case errors.Is(err, users.ErrInvalidToken), errors.Is(err, users.ErrAccountDisabled):
		a.badLink(w, r)
	case errors.Is(err, users.ErrDuplicateEmail):
		// Only the reader of this address's mail sees this, and an account
		// of theirs has it.
		a.fail(w, r, http.StatusConflict, "This address has an account already",
			"Another account uses this email, so it cannot be moved to yours. Nothing was changed.")
	case err != nil:
		a.internal(w, r, "confirming an email change", err)
	case currentUser(r) != nil:
		a.redirect(w, r, "/account", "email-changed")
	default:
		a.redirect(w, r, "/signin", "email-changed")
	}
}

func (a *App) resendVerification(w http.ResponseWriter, r *http.Request) {
	id := currentUser(r).ID
	if err := a.work.enqueue(r.Context(), func(ctx context.Context) { a.mailVerification(ctx, id) }); err != nil {
		a.internal(w, r, "queueing a mail", err)
		return
	}
	a.redirect(w, r, "/account", "verify-sent")
}
