package main

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/userkit/users"
)

// Second factors: the second step of sign-in (a TOTP code or a recovery
// code), enrolment of an authenticator app with a QR code, recovery codes
// shown once, step-up before making new recovery codes, and disabling.
//
// The second step. When the password or a magic link is right for a user with
// a second factor, the library answers with a *users.Challenge instead of a
// session. Its token goes into a cookie of its own (HttpOnly, SameSite=Strict,
// alive as long as the challenge) and the browser is sent to /signin/code,
// where users.Manager.CompleteLogin trades it and a code for the session. The
// library counts each code like a password, keeps the password's attempt
// counted until a code succeeds (so starting over with the password does not
// buy more guesses), and forgets it all on success: a right password followed
// by a right code leaves no failure behind. The magic link is spent on the
// challenge, which stays usable for users.MaxChallengeAttempts codes within
// users.ChallengeTTL.

// freshSecondFactor is how recently a session must have proved a second factor
// (at sign-in or by step-up) to make new recovery codes, which replace the
// ones the user keeps as a last resort. It is the library's
// RequireSecondFactor rule, checked here to answer with a page, not JSON.
const freshSecondFactor = 10 * time.Minute

// startChallenge keeps the challenge in its cookie and sends the browser to
// the code page, to go on to next (a local path) afterwards.
func (a *App) startChallenge(w http.ResponseWriter, r *http.Request, c *users.Challenge, next string) {
	http.Redirect(w, r, a.challengeStarted(w, r, c, next), http.StatusSeeOther)
}

// challengeStarted keeps the challenge in its cookie and returns the code
// page's path, which offers a passkey when the challenge takes one and
// carries the sign-in form's "Remember me" to the second step.
func (a *App) challengeStarted(w http.ResponseWriter, r *http.Request, c *users.Challenge, next string) string {
	http.SetCookie(w, &http.Cookie{
		Name: a.challengeCookie, Value: c.Token, Path: "/", Expires: c.ExpiresAt,
		HttpOnly: true, Secure: !a.dev, SameSite: http.SameSiteStrictMode,
	})
	q := url.Values{}
	if next = localPath(next); next != "" {
		q.Set("next", next)
	}
	if remembered(r) {
		q.Set("remember", "on") // the session is made at the second step
	}
	if slices.Contains(c.Methods, users.MethodPasskey) {
		q.Set("passkey", "1")
	}
	if len(q) == 0 {
		return "/signin/code"
	}
	return "/signin/code?" + q.Encode()
}

// loggedIn ends a sign-in (password, magic link, or the second step): it
// starts the session and sends the browser on to next, or starts the second
// step when err is a challenge. It reports whether err was handled.
func (a *App) loggedIn(w http.ResponseWriter, r *http.Request, s *users.Session, err error, next string) bool {
	var c *users.Challenge
	switch {
	case errors.As(err, &c):
		a.startChallenge(w, r, c, next)
	case err == nil:
		a.startSession(w, r, s)
		if next = localPath(next); next == "" {
			next = "/account"
		}
		a.redirect(w, r, next, "signed-in")
	default:
		return false
	}
	return true
}

func (a *App) codePage(p page) page {
	p.Title = "Enter your code"
	return p
}

// signinCodeForm is the second step's page.
func (a *App) signinCodeForm(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(a.challengeCookie); err != nil || c.Value == "" {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	q := r.URL.Query()
	a.render(w, r, http.StatusOK, "signin-code", a.codePage(page{Form: url.Values{"next": {localPath(q.Get("next"))}, "remember": {q.Get("remember")}, "passkey": {q.Get("passkey")}}}))
}

// signinCode completes the second step with a TOTP code or a recovery code.
func (a *App) signinCode(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.PostForm.Get("next"))
	c, err := r.Cookie(a.challengeCookie)
	if err != nil || c.Value == "" {
		a.redirect(w, r, "/signin", "challenge-over")
		return
	}
	s, err := a.users.CompleteLogin(a.signinContext(r), c.Value, r.PostForm.Get("code"))
	if err == nil {
		a.clearCookie(w, a.challengeCookie)
		a.trustDevice(w, r, s)
	}
	if a.loggedIn(w, r, s, err, next) {
		return
	}
	p := a.codePage(page{Form: url.Values{"next": {next}, "remember": {r.PostForm.Get("remember")}, "trust": {r.PostForm.Get("trust")}, "passkey": {r.PostForm.Get("passkey")}}})
	switch {
	case errors.Is(err, users.ErrInvalidCode):
		p.Fields = map[string]string{"code": "The code is wrong. Type the code your app shows now, or a recovery code."}
		a.render(w, r, http.StatusUnauthorized, "signin-code", p)
	case errors.Is(err, users.ErrInvalidToken):
		a.clearCookie(w, a.challengeCookie)
		a.redirect(w, r, "/signin", "challenge-over")
	case errors.Is(err, users.ErrAccountLocked):
		a.clearCookie(w, a.challengeCookie)
		a.fail(w, r, http.StatusTooManyRequests, "Sign-in is locked",
			"Too many failed attempts: sign-in is locked for a while. Try again later.")
	default:
		a.internal(w, r, "completing a sign-in", err)
	}
}

// Enrolment.

// setupPage is the data of the enrolment page. QRCode is empty after a wrong
// code: the secret is not kept, so the page cannot be shown again.
type setupPage struct {
	QRCode template.URL // a data: URL of the PNG
	Secret string
}

// cspWithQRCode is the site's policy with data: images allowed, for the one
// page that shows the QR code inline. Serving the PNG from a URL instead would
// need the secret kept somewhere between two requests.
const cspWithQRCode = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// setupMFA starts enrolment (again, if one was pending) and shows the QR code,
// the secret for typing in, and the form for the first code. The page is a
// POST's answer, never cached (Cache-Control: no-store) and never logged.
func (a *App) setupMFA(w http.ResponseWriter, r *http.Request) {
	e, err := a.users.BeginTOTP(r.Context(), currentUser(r).ID)
	switch {
	case errors.Is(err, users.ErrMFAEnabled):
		a.redirect(w, r, "/account", "")
		return
	case errors.Is(err, users.ErrReauthRequired):
		a.askReauth(w, r, "/account", page{})
		return
	case errors.Is(err, users.ErrMFANotConfigured):
		a.fail(w, r, http.StatusNotImplemented, "Two-factor authentication is off",
			"This server has no key to keep authenticator secrets with ($USERS_MFA_KEY).")
		return
	case err != nil:
		a.internal(w, r, "starting enrolment", err)
		return
	}
	w.Header().Set("Content-Security-Policy", cspWithQRCode)
	a.render(w, r, http.StatusOK, "mfa-setup", page{Title: "Set up two-factor authentication", Data: setupPage{
		QRCode: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRCode)),
		Secret: e.Secret,
	}})
}

// confirmMFA activates the enrolment with the app's first code and shows the
// recovery codes, once.
func (a *App) confirmMFA(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	codes, err := a.users.ConfirmTOTP(r.Context(), u.ID, r.PostForm.Get("code"))
	switch {
	case errors.Is(err, users.ErrInvalidCode):
		a.render(w, r, http.StatusBadRequest, "mfa-setup", page{Title: "Set up two-factor authentication",
			Fields: map[string]string{"code": "The code is wrong. Check that your device's clock is right, and type the code the app shows now."},
			Data:   setupPage{}})
		return
	case errors.Is(err, users.ErrReauthRequired):
		a.askReauth(w, r, "/account", page{})
		return
	case errors.Is(err, users.ErrAccountLocked):
		a.fail(w, r, http.StatusTooManyRequests, "Too many wrong codes", "Try again later.")
		return
	case errors.Is(err, users.ErrMFANotEnabled), errors.Is(err, users.ErrMFAEnabled):
		a.redirect(w, r, "/account", "")
		return
	case err != nil:
		a.internal(w, r, "confirming enrolment", err)
		return
	}
	a.notify(r.Context(), u.ID, "Two-factor authentication is on",
		"An authenticator app was added to your account. If it was not you, reset your password and contact us.")
	a.render(w, r, http.StatusOK, "mfa-codes", page{Title: "Your recovery codes", Data: codes})
}

// newRecoveryCodes replaces the recovery codes, after a step-up if the
// session's second factor is not fresh.
func (a *App) newRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	s, _ := users.FromContext(r.Context())
	if !a.fresh(s) {
		a.render(w, r, http.StatusForbidden, "step-up", page{Title: "Confirm it is you", Form: url.Values{"next": {"/account"}}})
		return
	}
	codes, err := a.users.RegenerateRecoveryCodes(r.Context(), s.UserID)
	switch {
	case errors.Is(err, users.ErrReauthRequired):
		a.askReauth(w, r, "/account", page{})
	case errors.Is(err, users.ErrMFANotEnabled):
		a.redirect(w, r, "/account", "")
	case err != nil:
		a.internal(w, r, "making recovery codes", err)
	default:
		a.render(w, r, http.StatusOK, "mfa-codes", page{Title: "Your new recovery codes", Data: codes})
	}
}

// fresh reports whether s proved a second factor within freshSecondFactor.
func (a *App) fresh(s *users.Session) bool {
	return !s.SecondFactorAt.IsZero() && a.now().Sub(s.SecondFactorAt) <= freshSecondFactor
}

// stepUp proves a second factor again for the browser's session, and goes
// back to next (a local path; default /account) to make the change again.
func (a *App) stepUp(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.PostForm.Get("next"))
	if next == "" {
		next = "/account"
	}
	c, _ := r.Cookie(a.sessionCookie) // signedIn let the request through: it has one
	_, err := a.users.StepUp(r.Context(), c.Value, r.PostForm.Get("code"))
	switch {
	case err == nil:
		a.redirect(w, r, next, "stepped-up")
	case errors.Is(err, users.ErrInvalidCode):
		a.render(w, r, http.StatusUnauthorized, "step-up", page{Title: "Confirm it is you",
			Fields: map[string]string{"code": "The code is wrong."}, Form: url.Values{"next": {next}}})
	case errors.Is(err, users.ErrAccountLocked):
		a.fail(w, r, http.StatusTooManyRequests, "Too many wrong codes", "Try again later.")
	case errors.Is(err, users.ErrMFANotEnabled), errors.Is(err, users.ErrInvalidToken):
		a.redirect(w, r, "/account", "")
	default:
		a.internal(w, r, "stepping up", err)
	}
}

// disableMFA removes the second factor, proven again with the password or a
// code from the app (one of them).
func (a *App) disableMFA(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	password, code := r.PostForm.Get("mfa_password"), r.PostForm.Get("mfa_code")
	err := a.withReauth(r, password, func(ctx context.Context) error {
		return a.users.DisableMFA(ctx, u.ID, password, code)
	})
	var p page
	status := http.StatusBadRequest
	switch {
	case err == nil:
		a.notify(r.Context(), u.ID, "Two-factor authentication is off",
			"The second factor of your account was removed: signing in needs only the password now. If it was not you, reset your password.")
		a.redirect(w, r, "/account", "mfa-off")
		return
	case errors.Is(err, users.ErrReauthRequired): // a code was given: it cannot serve twice
		a.askReauth(w, r, "/account", page{})
		return
	case errors.Is(err, users.ErrInvalidInput):
		p.Fields = map[string]string{"mfa_password": "Give either your password or a code, not both."}
	case errors.Is(err, users.ErrInvalidCredentials):
		p.Fields = map[string]string{"mfa_password": "The password is wrong."}
	case errors.Is(err, users.ErrInvalidCode):
		p.Fields = map[string]string{"mfa_code": "The code is wrong."}
	case errors.Is(err, users.ErrAccountLocked):
		status = http.StatusTooManyRequests
		p.Fields = map[string]string{"mfa_password": "Too many failed attempts: try again later."}
	case errors.Is(err, users.ErrMFANotEnabled):
		a.redirect(w, r, "/account", "")
		return
	default:
		a.internal(w, r, "disabling a second factor", err)
		return
	}
	a.renderAccount(w, r, status, p)
}

// notify mails the user a note about a change to their account's security,
// to the address the store holds, from the mail worker.
func (a *App) notify(ctx context.Context, userID, subject, text string) {
	err := a.work.enqueue(ctx, func(ctx context.Context) {
		u, err := a.users.Get(ctx, userID)
		if err != nil {
			a.log.ErrorContext(ctx, "notifying a user", "err", err)
			return
		}
		a.send(ctx, Message{To: u.Email, Subject: subject, Text: text, Link: a.base + "/account"})
	})
	if err != nil {
		a.log.ErrorContext(ctx, "queueing a notice", "err", err)
	}
}
