package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

// fieldError returns the form errors of every refused field in err
// (users.FieldErrors: a users.ValidationErrors, errors.Join, %w), under each
// form field's name, so a form shows all of them at once; the first error of
// a field wins.
func fieldError(err error) (map[string]string, bool) {
	fields := make(map[string]string)
	for _, ve := range users.FieldErrors(err) {
		if _, seen := fields[ve.Field]; !seen {
			fields[ve.Field] = strings.ToUpper(ve.Reason[:1]) + ve.Reason[1:] + "."
		}
	}
	return fields, len(fields) > 0
}

// signedInAlready sends a signed-in browser away from the sign-in and sign-up
// forms, to ?next= if it is a path on this site, else to its account, and
// reports whether it did.
func (a *App) signedInAlready(w http.ResponseWriter, r *http.Request) bool {
	if currentUser(r) == nil {
		return false
	}
	to := localPath(r.URL.Query().Get("next"))
	if to == "" {
		to = "/account"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return true
}

// checkEmail is the page every mailing form leads to, whatever happened.
func (a *App) checkEmail(w http.ResponseWriter, r *http.Request) {
	title := map[string]string{
		"signup": "Create an account",
		"reset":  "Reset your password",
		"magic":  "Sign in with a link",
	}[r.URL.Query().Get("for")]
	if title == "" {
		title = "Check your email"
	}
	a.render(w, r, http.StatusOK, "check-email", page{Title: title})
}

func (a *App) verifyForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "verify", page{Title: "Confirm your email", Form: url.Values{"token": {r.URL.Query().Get("token")}}})
}

// verify redeems a confirmation link. Links are followed with GET, which only
// shows a button: mail scanners that fetch links must not use them up, and
// every state change goes through a POST that the CSRF checks cover.
func (a *App) verify(w http.ResponseWriter, r *http.Request) {
	_, err := a.users.VerifyEmail(r.Context(), r.PostForm.Get("token"))
	switch {
	case errors.Is(err, users.ErrInvalidToken):
		a.badLink(w, r)
	case err != nil:
		a.internal(w, r, "verifying an email", err)
	case currentUser(r) != nil:
		a.redirect(w, r, "/account", "verified-in")
	default:
		a.redirect(w, r, "/signin", "verified")
	}
}

func (a *App) badLink(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, http.StatusBadRequest, "This link does not work",
		"It may have expired or been used already. Ask for a new one.")
}

// Sign-in and sign-out.

// signinForm shows the sign-in form; a signed-in browser goes on to ?next=
// (a path on this site) or its account instead.
func (a *App) signinForm(w http.ResponseWriter, r *http.Request) {
	if a.signedInAlready(w, r) {
		return
	}
	a.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Form: url.Values{"next": {localPath(r.URL.Query().Get("next"))}}})
}

func (a *App) signin(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	next := localPath(f.Get("next"))
	p := page{Title: "Sign in", Form: url.Values{"identifier": {f.Get("identifier")}, "next": {next}, "remember": {f.Get("remember")}}}
	s, err := a.users.Login(a.signinContext(r), strings.TrimSpace(f.Get("identifier")), f.Get("password"))
	if a.loggedIn(w, r, s, err, next) { // signed in, or on to the second step
		return
	}
	status := http.StatusUnauthorized
	switch {
	case errors.Is(err, users.ErrInvalidCredentials):
		p.Error = "The email, username or password is wrong."
	case errors.Is(err, users.ErrAccountLocked):
		status = http.StatusTooManyRequests
		users.SetRetryAfter(w, err)
		p.Error = "Too many failed attempts: sign-in is locked for a while. Try again later, or reset your password."
	case errors.Is(err, users.ErrAccountDisabled):
		status = http.StatusForbidden
		p.Error = "This account is suspended. Contact the administrator."
	case errors.Is(err, users.ErrEmailNotVerified):
		// Only someone who gave the right password gets here.
		status = http.StatusForbidden
		p.Error = "Confirm your email first. We have sent you a new confirmation link."
		id := strings.TrimSpace(f.Get("identifier"))
		a.work.enqueue(r.Context(), func(ctx context.Context) {
			u, err := a.users.GetByEmail(ctx, id)
			if err != nil {
				u, err = a.users.GetByUsername(ctx, id)
			}
			if err == nil {
				a.mailVerification(ctx, u.ID)
			}
		})
	default:
		a.internal(w, r, "signing in", err)
		return
	}
	a.render(w, r, status, "signin", p)
}

func (a *App) signout(w http.ResponseWriter, r *http.Request) {
	a.endSession(w, r)
	a.newCSRFCookie(w, r)
	a.redirect(w, r, "/", "signed-out")
}

// Forgot password and magic link: as for sign-up (see signup.go), the handler
// only checks the email's shape and queues the job; the page is the same
// whoever asks.

func (a *App) forgotForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "forgot", page{Title: "Forgot your password?"})
}

func (a *App) forgot(w http.ResponseWriter, r *http.Request) {
	a.requestByEmail(w, r, "forgot", "Forgot your password?", "reset", users.ActionPasswordReset, func(ctx context.Context, email string) {
		to, token, err := a.issuePasswordReset(ctx, email)
		if a.issued(ctx, "password reset", err) {
			a.mailKind(ctx, mail.KindPasswordReset, mail.Data{To: to, Link: a.link("/reset", token)})
		}
	})
}

func (a *App) magicForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "magic", page{Title: "Sign in with a link"})
}

func (a *App) magic(w http.ResponseWriter, r *http.Request) {
	a.requestByEmail(w, r, "magic", "Sign in with a link", "magic", users.ActionMagicLink, func(ctx context.Context, email string) {
		to, token, err := a.issueMagicLink(ctx, email)
		if a.issued(ctx, "magic link", err) {
			a.mailKind(ctx, mail.KindMagicLink, mail.Data{To: to, Link: a.link("/magic/signin", token)})
		}
	})
}

// requestByEmail is the handler of the sign-up, forgot-password and
// magic-link forms: it checks the email's shape, counts the request under
// action for the client and the email (the job runs without the client),
// queues job and answers with the same redirect whatever the store holds;
// over the limit, 429 with Retry-After, whoever has the email.
func (a *App) requestByEmail(w http.ResponseWriter, r *http.Request, tmpl, title, kind string, action users.RateAction, job func(context.Context, string)) {
	email, err := users.NormalizeEmail(r.PostForm.Get("email"))
	if err != nil {
		p := page{Title: title, Form: url.Values{"email": {r.PostForm.Get("email")}}}
		p.Fields, _ = fieldError(err)
		a.render(w, r, http.StatusBadRequest, tmpl, p)
		return
	}
	if err := a.users.Limit(r.Context(), action, email); err != nil {
		a.internal(w, r, "limiting a request by email", err)
		return
	}
	if err := a.work.enqueue(r.Context(), func(ctx context.Context) { job(ctx, email) }); err != nil {
		a.internal(w, r, "queueing a mail", err)
		return
	}
	http.Redirect(w, r, "/check-email?for="+kind, http.StatusSeeOther)
}

// issued reports whether a token was issued; an unknown email or a disabled
// account is expected and sends nothing.
func (a *App) issued(ctx context.Context, what string, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, users.ErrUnknownEmail), errors.Is(err, users.ErrAccountDisabled), errors.Is(err, users.ErrNotFound):
		a.log.InfoContext(ctx, "no mail: no active account has the email", "kind", what)
	default:
		a.log.ErrorContext(ctx, "issuing a token", "kind", what, "err", err)
	}
	return false
}

func (a *App) resetForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "reset", page{Title: "Choose a new password", Form: url.Values{"token": {r.URL.Query().Get("token")}}})
}

func (a *App) reset(w http.ResponseWriter, r *http.Request) {
	token := r.PostForm.Get("token")
	err := a.users.ResetPassword(r.Context(), token, r.PostForm.Get("password"))
	if fields, ok := fieldError(err); ok {
		a.render(w, r, http.StatusBadRequest, "reset", page{Title: "Choose a new password", Fields: fields, Form: url.Values{"token": {token}}})
		return
	}
	switch {
	case errors.Is(err, users.ErrInvalidToken):
		a.badLink(w, r)
	case err != nil:
		a.internal(w, r, "resetting a password", err)
	default:
		// Every session of the user has ended, this browser's too.
		a.endSession(w, r)
		a.redirect(w, r, "/signin", "password-reset")
	}
}

func (a *App) magicSigninForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "magic-signin", page{Title: "Sign in", Form: url.Values{"token": {r.URL.Query().Get("token")}}})
}

func (a *App) magicSignin(w http.ResponseWriter, r *http.Request) {
	s, err := a.users.LoginWithMagicLink(r.Context(), r.PostForm.Get("token"))
	switch {
	case a.loggedIn(w, r, s, err, "/account"): // signed in, or on to the second step
	case errors.Is(err, users.ErrInvalidToken), errors.Is(err, users.ErrAccountDisabled):
		a.badLink(w, r)
	default:
		a.internal(w, r, "signing in with a link", err)
	}
}

// Invitations: an admin invites (see adminInvite); the invitee picks a password.

func (a *App) inviteForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "invite", page{Title: "Accept your invitation", Form: url.Values{"token": {r.URL.Query().Get("token")}}})
}

func (a *App) acceptInvite(w http.ResponseWriter, r *http.Request) {
	token := r.PostForm.Get("token")
	s, err := a.users.AcceptInvitation(r.Context(), token, r.PostForm.Get("password"))
	if fields, ok := fieldError(err); ok {
		a.render(w, r, http.StatusBadRequest, "invite", page{Title: "Accept your invitation", Fields: fields, Form: url.Values{"token": {token}}})
		return
	}
	switch {
	case errors.Is(err, users.ErrInvalidToken):
		a.badLink(w, r)
	case err != nil:
		a.internal(w, r, "accepting an invitation", err)
	default:
		a.startSession(w, r, s)
		a.redirect(w, r, "/account", "welcome")
	}
}
