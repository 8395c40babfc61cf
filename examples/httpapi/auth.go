package main

import (
	"net/http"

	"github.com/userkit/users"
)

// Signing in and out, the caller's own record, and proving or changing the
// caller's password.

// apiSession is the answer to a login: the bearer token, once, and the user.
type apiSession struct {
	Token     string  `json:"token"`
	TokenType string  `json:"token_type"`
	ExpiresAt string  `json:"expires_at"`
	User      apiUser `json:"user"`
	// DeviceToken and DeviceExpiresAt answer a second step that asked to
	// trust the device (see trusted.go).
	DeviceToken     string `json:"device_token,omitempty"`
	DeviceExpiresAt string `json:"device_expires_at,omitempty"`
}

func toSession(sess *users.Session) apiSession {
	return apiSession{Token: sess.Token, TokenType: "Bearer", ExpiresAt: timestamp(sess.ExpiresAt), User: toAPI(sess.User)}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string `json:"email"`
		Username string `json:"username"`
		Password string `json:"password"`
		Remember bool   `json:"remember"`
		Device   string `json:"device_token"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	identifier := req.Email
	switch {
	case req.Email == "" && req.Username == "":
		invalid(w, "email", users.ValidationRequired, "is required (or give a username)")
		return
	case req.Email != "" && req.Username != "":
		invalid(w, "username", users.ValidationExclusive, "give either email or username, not both")
		return
	case req.Username != "":
		identifier = req.Username
	}
	if !required(w, "password", req.Password) {
		return
	}
	sess, err := s.Users.Login(signinContext(r, req.Remember, req.Device), identifier, req.Password)
	s.loggedIn(w, r, sess, err)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.Users.Logout(r.Context(), users.TokenFromRequest(r, "")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Logged out successfully"})
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toAPI(session(r).User)})
}

// reauthenticate proves the caller's password again for the calling session
// (users.Manager.Reauthenticate), for the routes that answer 403
// reauth_required when the session's last proof is older than the library's
// ReauthWindow; it answers the session as GET /v1/me/sessions shows it. A
// user with a second factor may prove it with POST /v1/me/mfa/step-up instead.
func (s *Server) reauthenticate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password string `json:"password"`
	}
	if !s.decode(w, r, &req) || !required(w, "password", req.Password) {
		return
	}
	sess, err := s.Users.Reauthenticate(r.Context(), users.TokenFromRequest(r, ""), req.Password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toDevice(sess, sess.ID), Message: "Password confirmed"})
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
		ConfirmPassword string `json:"confirm_password"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if !required(w, "current_password", req.CurrentPassword, "new_password", req.NewPassword) ||
		!confirmed(w, req.NewPassword, req.ConfirmPassword) {
		return
	}
	err := s.Users.UpdatePassword(r.Context(), session(r).UserID, req.CurrentPassword, req.NewPassword)
	if err != nil {
		s.fail(w, r, rename(err, map[string]string{"password": "new_password"}))
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Password changed; every session has ended, log in with the new password"})
}
