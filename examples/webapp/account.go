package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/userkit/users"
)

// account shows the settings page: profile, password and email.
func (a *App) account(w http.ResponseWriter, r *http.Request) {
	a.renderAccount(w, r, http.StatusOK, page{})
}

func (a *App) renderAccount(w http.ResponseWriter, r *http.Request, status int, p page) {
	u := currentUser(r)
	p.Title = "Your account"
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
	err := a.users.UpdatePassword(r.Context(), u.ID, current, next)
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
	if err != nil { // e.g. an unconfirmed email with RequireVerifiedEmail
		a.redirect(w, r, "/signin", "password-relogin")
		return
	}
	a.startSession(w, r, s)
	a.redirect(w, r, "/account", "password-changed")
}

// reauthenticate checks the signed-in user's password before a sensitive
// change. The library has no password check without a login, so it logs in
// and out again: the check counts towards the lockout like any login.
func (a *App) reauthenticate(ctx context.Context, u *users.User, password string) error {
	s, err := a.users.Login(ctx, u.Email, password)
	if errors.Is(err, users.ErrEmailNotVerified) {
		return nil // refused only after the password was found right
	}
	if err != nil {
		return err
	}
	return a.users.Logout(ctx, s.Token)
}

// changeEmail moves the account to a new address after the password is given
// again. The new address is unconfirmed until its link is followed, and the
// old address is told. The answer is the same whether or not another account
// has the new address; that account's owner gets a note instead.
func (a *App) changeEmail(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	typed := r.PostForm.Get("email")
	p := page{Form: url.Values{"email": {typed}}}
	email, err := users.NormalizeEmail(typed)
	if err != nil {
		p.Fields, _ = fieldError(err)
		a.renderAccount(w, r, http.StatusBadRequest, p)
		return
	}
	err = a.reauthenticate(r.Context(), u, r.PostForm.Get("email_password"))
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
		a.internal(w, r, "re-authenticating", err)
		return
	}
	if email == u.Email {
		a.redirect(w, r, "/account", "")
		return
	}
	old := u.Email
	_, err = a.users.Update(r.Context(), u.ID, users.UserUpdate{Email: &email})
	switch {
	case err == nil:
		a.work.enqueue(r.Context(), func(ctx context.Context) {
			a.send(ctx, Message{To: old, Subject: "Your email was changed",
				Text: "The email of your account was changed to another address. If you did not do this, reset your password.",
				Link: a.base + "/forgot"})
			a.mailVerification(ctx, u.ID)
		})
	case errors.Is(err, users.ErrDuplicateEmail):
		a.work.enqueue(r.Context(), func(ctx context.Context) {
			owner, err := a.users.GetByEmail(ctx, email)
			if err != nil {
				return
			}
			a.send(ctx, Message{To: owner.Email, Subject: "Someone tried to use your email",
				Text: "Another account tried to change its email to this address. You need to do nothing.",
				Link: ""})
		})
	default:
		a.internal(w, r, "changing an email", err)
		return
	}
	a.redirect(w, r, "/account", "email-sent")
}

func (a *App) resendVerification(w http.ResponseWriter, r *http.Request) {
	id := currentUser(r).ID
	if err := a.work.enqueue(r.Context(), func(ctx context.Context) { a.mailVerification(ctx, id) }); err != nil {
		a.internal(w, r, "queueing a mail", err)
		return
	}
	a.redirect(w, r, "/account", "verify-sent")
}
