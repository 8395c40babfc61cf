package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/userkit/users"
)

// Remember me and trusted devices.
//
// The sign-in form has a "Remember me" box. Ticked, the sign-in asks the
// library for a remembered session (users.SessionOptions.Remember: 30 days,
// ended by a week without a request) and the session cookie gets that
// expiry; unticked, the session is the ordinary one (24 hours, half an hour
// idle) in a cookie the browser drops when it closes. For a user with a
// second factor the choice travels to the code page in a hidden field, since
// the session is made there.
//
// The code page has a "Trust this device for 30 days" box. Ticked, the new
// session trusts the browser (users.Manager.TrustDevice) and the device
// token goes into a cookie of its own (HttpOnly, SameSite=Strict, alive as
// long as the trust), which every password sign-in presents: from that
// browser the code is not asked again until the trust expires or is revoked
// (a password change, "sign out everywhere", a suspension, a change of
// factor, or "Forget" on the account page). Signing out keeps the cookie: it
// is the browser that is trusted, not the session.

// remembered reports whether the form asked to be remembered.
func remembered(r *http.Request) bool { return r.PostForm.Get("remember") == "on" }

// signinContext is the request's context with what a sign-in needs: the
// session the form asked for and the browser's device token, if any.
func (a *App) signinContext(r *http.Request) context.Context {
	ctx := users.WithSessionOptions(r.Context(), users.SessionOptions{Remember: remembered(r)})
	if c, err := r.Cookie(a.deviceCookie); err == nil && c.Value != "" {
		ctx = users.WithDeviceToken(ctx, c.Value)
	}
	return ctx
}

// trustDevice trusts this browser for the session s when the code form asked
// for it. A failure costs the user only the convenience: it is logged, and
// the sign-in goes on.
func (a *App) trustDevice(w http.ResponseWriter, r *http.Request, s *users.Session) {
	if r.PostForm.Get("trust") != "on" {
		return
	}
	d, err := a.users.TrustDevice(r.Context(), s.Token)
	if err != nil {
		a.log.ErrorContext(r.Context(), "trusting a device", "err", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: a.deviceCookie, Value: d.Token, Path: "/", Expires: d.ExpiresAt,
		HttpOnly: true, Secure: !a.dev, SameSite: http.SameSiteStrictMode,
	})
}

// forgetDevice stops trusting one of the user's devices, from the account
// page's list.
func (a *App) forgetDevice(w http.ResponseWriter, r *http.Request) {
	err := a.users.RevokeTrustedDevice(r.Context(), currentUser(r).ID, r.PostForm.Get("device"))
	switch {
	case err == nil, errors.Is(err, users.ErrNotFound): // forgotten already
		a.redirect(w, r, "/account", "device-forgotten")
	default:
		a.internal(w, r, "forgetting a device", err)
	}
}
