package main

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/userkit/users"
)

// Passkeys: sign-in without a password (a button, and the browser's autofill
// on the sign-in form), a passkey at the second step of sign-in and to
// confirm it is you before a sensitive change, and the account page's list to
// add, rename and remove them.
//
// The ceremonies run in static/passkey.js, the site's one script. Each is two
// POSTs of the page's form, both behind the CSRF check like every form: the
// first answers the options for navigator.credentials in JSON (the library's
// users.PasskeyCeremony), the second carries the browser's answer in the field
// "credential" and answers {"redirect": path} or {"error": text}. The library
// keeps each challenge in the store, single-use, so the site keeps nothing
// between the two. Renaming and removing are plain forms.
//
// Passkeys are on when the Manager has users.Options.Passkeys: the command
// sets its relying party from -base-url (see passkeyOptions in main.go).

// passkeyRoutes adds the passkey routes to mux.
func (a *App) passkeyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /signin/passkey/begin", a.post(a.passkeyLoginBegin))
	mux.HandleFunc("POST /signin/passkey", a.post(a.passkeyLogin))
	mux.HandleFunc("POST /signin/code/passkey/begin", a.post(a.passkeySecondBegin))
	mux.HandleFunc("POST /signin/code/passkey", a.post(a.passkeySecond))
	mux.HandleFunc("GET /account/reauth", a.signedIn(a.reauthForm))
	mux.HandleFunc("POST /account/reauth/passkey/begin", a.post(a.signedIn(a.passkeyStepUpBegin)))
	mux.HandleFunc("POST /account/reauth/passkey", a.post(a.signedIn(a.passkeyStepUp)))
	mux.HandleFunc("POST /account/passkeys/begin", a.post(a.signedIn(a.passkeyRegisterBegin)))
	mux.HandleFunc("POST /account/passkeys", a.post(a.signedIn(a.passkeyRegister)))
	mux.HandleFunc("POST /account/passkeys/{id}/rename", a.post(a.signedIn(a.renamePasskey)))
	mux.HandleFunc("POST /account/passkeys/{id}/remove", a.post(a.signedIn(a.removePasskey)))
}

// The JSON answers of the script's POSTs.

// passkeyAnswer is the second POST's answer: where to go, or what went wrong
// (and, for a session too old to add a passkey, where to confirm it is you).
type passkeyAnswer struct {
	Redirect string `json:"redirect,omitempty"`
	Error    string `json:"error,omitempty"`
}

// answerJSON answers a passkey POST with v in JSON.
func answerJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// ceremony answers a Begin call: the options, or the error.
func (a *App) ceremony(w http.ResponseWriter, r *http.Request, c *users.PasskeyCeremony, err error) {
	if err != nil {
		a.passkeyFailed(w, r, err)
		return
	}
	answerJSON(w, http.StatusOK, c)
}

// passkeyFailed answers a ceremony's failure in words the page can show.
func (a *App) passkeyFailed(w http.ResponseWriter, r *http.Request, err error) {
	status, text := http.StatusUnauthorized, ""
	switch {
	case errors.Is(err, users.ErrPasskeyCloned):
		text = "This passkey was refused: it may have been copied. Sign in another way, and remove it from your account."
	case errors.Is(err, users.ErrPasskeyRefused):
		text = "This passkey was not accepted here. Try another one, or sign in another way."
	case errors.Is(err, users.ErrInvalidToken):
		text = "That took too long, or the page was used already. Try again."
	case errors.Is(err, users.ErrMFANotEnabled):
		status, text = http.StatusBadRequest, "You have no passkey yet."
	case errors.Is(err, users.ErrAccountDisabled):
		status, text = http.StatusForbidden, "This account is suspended. Contact the administrator."
	case errors.Is(err, users.ErrEmailNotVerified):
		status, text = http.StatusForbidden, "Confirm your email first: follow the link we sent you."
	case errors.Is(err, users.ErrAccountLocked):
		status, text = http.StatusTooManyRequests, "Too many failed attempts: sign-in is locked for a while. Try again later."
	case errors.Is(err, users.ErrConflict):
		status, text = http.StatusConflict, "This passkey is registered already."
	case errors.Is(err, users.ErrPasskeysNotConfigured):
		status, text = http.StatusNotImplemented, "Passkeys are off on this server."
	default:
		a.log.ErrorContext(r.Context(), "a passkey ceremony", "err", err)
		status, text = http.StatusInternalServerError, "Something went wrong. Try again in a moment."
	}
	answerJSON(w, status, passkeyAnswer{Error: text})
}

// credential is the browser's answer, as the script posts it.
func credential(r *http.Request) []byte { return []byte(r.PostForm.Get("credential")) }

// Passwordless sign-in.

func (a *App) passkeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	c, err := a.users.BeginPasskeyLogin(r.Context())
	a.ceremony(w, r, c, err)
}

// passkeyLogin signs in with the browser's assertion. A passkey that verified
// its user (a PIN, a fingerprint) is two factors; one that did not leads a
// user with a second factor to the second step, as a password does.
func (a *App) passkeyLogin(w http.ResponseWriter, r *http.Request) {
	s, err := a.users.FinishPasskeyLogin(a.signinContext(r), credential(r))
	a.passkeyLoggedIn(w, r, s, err, r.PostForm.Get("next"))
}

// passkeyLoggedIn is loggedIn for the script: the session's cookie and the
// way on in JSON, or the second step's cookie and page, or the error.
func (a *App) passkeyLoggedIn(w http.ResponseWriter, r *http.Request, s *users.Session, err error, next string) {
	var c *users.Challenge
	switch {
	case errors.As(err, &c):
		answerJSON(w, http.StatusOK, passkeyAnswer{Redirect: a.challengeStarted(w, r, c, next)})
	case err != nil:
		a.passkeyFailed(w, r, err)
	default:
		a.startSession(w, r, s)
		a.flash(w, "signed-in")
		if next = localPath(next); next == "" {
			next = "/account"
		}
		answerJSON(w, http.StatusOK, passkeyAnswer{Redirect: next})
	}
}

// The second step of sign-in, with a passkey instead of a code.

func (a *App) passkeySecondBegin(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(a.challengeCookie)
	if err != nil || c.Value == "" {
		a.passkeyFailed(w, r, users.ErrInvalidToken)
		return
	}
	cer, err := a.users.BeginPasskeySecondFactor(r.Context(), c.Value)
	a.ceremony(w, r, cer, err)
}

func (a *App) passkeySecond(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(a.challengeCookie)
	if err != nil || c.Value == "" {
		a.passkeyFailed(w, r, users.ErrInvalidToken)
		return
	}
	s, err := a.users.CompleteLogin(a.signinContext(r), c.Value, string(credential(r)))
	if err == nil || errors.Is(err, users.ErrInvalidToken) || errors.Is(err, users.ErrAccountLocked) {
		a.clearCookie(w, a.challengeCookie) // the challenge is over
	}
	a.passkeyLoggedIn(w, r, s, err, r.PostForm.Get("next"))
}

// Confirming it is you with a passkey (the re-authentication page).

// reauthForm is the re-authentication page on its own, where the script sends
// the browser when adding a passkey needs a more recent sign-in.
func (a *App) reauthForm(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if next == "" {
		next = "/account"
	}
	a.askReauth(w, r, next, page{})
}

func (a *App) passkeyStepUpBegin(w http.ResponseWriter, r *http.Request) {
	c, err := a.users.BeginPasskeyStepUp(r.Context(), a.sessionToken(r))
	a.ceremony(w, r, c, err)
}

// passkeyStepUp proves a passkey for the browser's session now, which counts
// as a recent authentication and a fresh second factor.
func (a *App) passkeyStepUp(w http.ResponseWriter, r *http.Request) {
	_, err := a.users.StepUp(r.Context(), a.sessionToken(r), string(credential(r)))
	if err != nil {
		a.passkeyFailed(w, r, err)
		return
	}
	next := localPath(r.PostForm.Get("next"))
	if next == "" {
		next = "/account"
	}
	a.flash(w, "reauthenticated")
	answerJSON(w, http.StatusOK, passkeyAnswer{Redirect: next})
}

// The account page's passkeys.

// passkeyRegisterBegin starts adding a passkey. A session signed in too long
// ago is sent to confirm it is you first.
func (a *App) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request) {
	c, err := a.users.BeginPasskeyRegistration(r.Context(), currentUser(r).ID)
	if errors.Is(err, users.ErrReauthRequired) {
		answerJSON(w, http.StatusForbidden, passkeyAnswer{Redirect: "/account/reauth?next=/account",
			Error: "Confirm it is you first: you signed in a while ago."})
		return
	}
	a.ceremony(w, r, c, err)
}

func (a *App) passkeyRegister(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	_, err := a.users.FinishPasskeyRegistration(r.Context(), u.ID, r.PostForm.Get("name"), credential(r))
	var ve *users.ValidationError
	switch {
	case errors.As(err, &ve):
		answerJSON(w, http.StatusBadRequest, passkeyAnswer{Error: "The name is too long."})
	case errors.Is(err, users.ErrReauthRequired):
		answerJSON(w, http.StatusForbidden, passkeyAnswer{Redirect: "/account/reauth?next=/account",
			Error: "Confirm it is you first: you signed in a while ago."})
	case err != nil:
		a.passkeyFailed(w, r, err)
	default:
		a.notify(r.Context(), u.ID, "A passkey was added to your account",
			"A passkey can now sign in to your account. If it was not you, remove it and change your password.")
		a.flash(w, "passkey-added")
		answerJSON(w, http.StatusOK, passkeyAnswer{Redirect: "/account"})
	}
}

func (a *App) renamePasskey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := a.users.RenamePasskey(r.Context(), currentUser(r).ID, id, r.PostForm.Get("name"))
	var ve *users.ValidationError
	switch {
	case errors.As(err, &ve):
		a.renderAccount(w, r, http.StatusBadRequest, page{Fields: map[string]string{"passkey-" + id: "The name is too long."}})
	case errors.Is(err, users.ErrNotFound):
		a.redirect(w, r, "/account", "")
	case err != nil:
		a.internal(w, r, "renaming a passkey", err)
	default:
		a.redirect(w, r, "/account", "passkey-renamed")
	}
}

// removePasskey removes a passkey. With the box "signed in with it" ticked
// (a lost device), the sessions that passkeys signed in end too, this one
// included if a passkey signed it in.
func (a *App) removePasskey(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	err := a.users.RemovePasskey(r.Context(), u.ID, r.PathValue("id"), r.PostForm.Get("end_sessions") == "on")
	switch {
	case errors.Is(err, users.ErrLastSignInMethod):
		a.renderAccount(w, r, http.StatusConflict, page{Error: "This passkey is your only way to sign in: add another passkey or set a password before removing it."})
	case errors.Is(err, users.ErrReauthRequired):
		a.askReauth(w, r, "/account", page{})
	case errors.Is(err, users.ErrNotFound):
		a.redirect(w, r, "/account", "")
	case err != nil:
		a.internal(w, r, "removing a passkey", err)
	default:
		a.notify(r.Context(), u.ID, "A passkey was removed from your account",
			"A passkey can no longer sign in to your account. If it was not you, change your password.")
		a.redirect(w, r, "/account", "passkey-removed")
	}
}

// passkeys returns the user's passkeys for the account page, or nil when
// passkeys are off or cannot be read (logged).
func (a *App) passkeys(r *http.Request, userID string) []*users.Passkey {
	ps, err := a.users.Passkeys(r.Context(), userID)
	if err != nil && !errors.Is(err, users.ErrPasskeysNotConfigured) {
		a.log.ErrorContext(r.Context(), "listing passkeys", "err", err)
	}
	return ps
}
