package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/userkit/users"
)

// Re-authentication. The library refuses the changes that would let someone
// holding only a session keep the account (enrolling or removing a second
// factor, new recovery codes, changing the password or the email) with
// users.ErrReauthRequired once the session's last proof of its user
// (users.Session.AuthenticatedAt: the sign-in, users.Manager.Reauthenticate or
// users.Manager.StepUp) is older than users.Options.ReauthWindow (10 minutes).
// The session in the request's context, put there by loadSession, is the one
// it checks.
//
// Forms that carry the password already (the password and email changes,
// turning the second factor off with the password) prove it with
// Reauthenticate and make the change once more. The others answer with the
// re-authentication page: the password, or for a user with a second factor a
// code, proves it again for this session, and the browser goes back to make
// the change.

// withReauth runs change with the request's context. If the library asks for
// a recent proof and password is not empty, it proves password for the
// browser's session and runs change once more, with the refreshed session in
// its context. It returns change's error, or Reauthenticate's
// (users.ErrInvalidCredentials for a wrong password, users.ErrAccountLocked).
func (a *App) withReauth(r *http.Request, password string, change func(ctx context.Context) error) error {
	err := change(r.Context())
	if !errors.Is(err, users.ErrReauthRequired) || password == "" {
		return err
	}
	s, err := a.users.Reauthenticate(r.Context(), a.sessionToken(r), password)
	if err != nil {
		return err
	}
	return change(users.NewContext(r.Context(), s))
}

// sessionToken returns the browser's session token; signedIn has let only
// requests with a valid one through.
func (a *App) sessionToken(r *http.Request) string {
	if c, err := r.Cookie(a.sessionCookie); err == nil {
		return c.Value
	}
	return ""
}

// reauthPage is the data of the re-authentication page.
type reauthPage struct {
	SecondFactor bool // offer a code as well as the password
	Passkey      bool // offer a passkey too (see passkey.go)
}

// askReauth answers a change the library refused with ErrReauthRequired:
// 403 and the re-authentication page, which comes back to next.
func (a *App) askReauth(w http.ResponseWriter, r *http.Request, next string, p page) {
	st, err := a.users.MFAStatus(r.Context(), currentUser(r).ID)
	if err != nil {
		a.internal(w, r, "reading second factors", err)
		return
	}
	p.Title = "Confirm it is you"
	if p.Form == nil {
		p.Form = url.Values{"next": {next}}
	}
	p.Data = reauthPage{SecondFactor: st.Enabled, Passkey: len(a.passkeys(r, currentUser(r).ID)) > 0}
	a.render(w, r, http.StatusForbidden, "reauth", p)
}

// reauthenticate proves the password, or a second factor, again for the
// browser's session, and goes back to next (a local path; default /account).
func (a *App) reauthenticate(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.PostForm.Get("next"))
	if next == "" {
		next = "/account"
	}
	password, code := r.PostForm.Get("password"), r.PostForm.Get("code")
	var err error
	if code != "" {
		_, err = a.users.StepUp(r.Context(), a.sessionToken(r), code)
	} else {
		_, err = a.users.Reauthenticate(r.Context(), a.sessionToken(r), password)
	}
	p := page{Form: url.Values{"next": {next}}}
	switch {
	case err == nil:
		a.redirect(w, r, next, "reauthenticated")
		return
	case errors.Is(err, users.ErrInvalidCredentials):
		p.Fields = map[string]string{"password": "The password is wrong."}
	case errors.Is(err, users.ErrInvalidCode):
		p.Fields = map[string]string{"code": "The code is wrong."}
	case errors.Is(err, users.ErrAccountLocked):
		a.fail(w, r, http.StatusTooManyRequests, "Too many failed attempts", "Try again later.")
		return
	case errors.Is(err, users.ErrInvalidToken):
		a.redirect(w, r, "/signin?next="+url.QueryEscape(next), "")
		return
	default:
		a.internal(w, r, "re-authenticating", err)
		return
	}
	a.askReauth(w, r, next, p)
}
