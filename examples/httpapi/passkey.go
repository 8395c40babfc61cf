package main

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/userkit/users"
)

// Passkeys (WebAuthn): the caller's passkeys (add, list, rename, remove),
// sign-in with one and no password, one as the second step of a login, and
// one for step-up. Every ceremony is two calls: a "begin" answers the
// options for the browser's navigator.credentials.create() or get() (the
// library's users.PasskeyCeremony: {"publicKey": {...}, "expires_at": ...});
// the next call takes the browser's answer, the JSON of the
// PublicKeyCredential, as "credential". The challenge is kept by the library,
// in the store, single-use, so the client keeps nothing between the two.
//
// Passkeys are on when the Manager has users.Options.Passkeys (the command's
// -passkey-origin); otherwise these routes answer 501
// passkeys_not_configured.

// passkeyFail answers a passkey route's error as fail does (users.HTTPError
// names the passkey errors: passkey_refused, passkey_cloned,
// last_sign_in_method, passkeys_not_configured), but says that a missing
// thing is a passkey, not a user. Which check refused an answer is not said,
// as the library does not say it.
func (s *Server) passkeyFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, users.ErrNotFound) {
		writeError(w, http.StatusNotFound, users.CodeNotFound, "No such passkey", "")
		return
	}
	s.fail(w, r, err)
}

// passkeyRoutes adds the passkey routes to mux; auth wraps the routes that
// need a session.
func (s *Server) passkeyRoutes(mux *http.ServeMux, auth func(http.HandlerFunc) http.Handler) {
	mux.HandleFunc("POST /v1/auth/passkey/begin", s.passkeyLoginBegin)
	mux.HandleFunc("POST /v1/auth/passkey", s.passkeyLogin)
	mux.HandleFunc("POST /v1/auth/login/passkey/begin", s.passkeySecondBegin)
	mux.HandleFunc("POST /v1/auth/login/passkey", s.passkeySecond)
	mux.Handle("GET /v1/me/passkeys", auth(s.passkeys))
	mux.Handle("POST /v1/me/passkeys/begin", auth(s.passkeyRegisterBegin))
	mux.Handle("POST /v1/me/passkeys", auth(s.passkeyRegister))
	mux.Handle("PATCH /v1/me/passkeys/{id}", auth(s.renamePasskey))
	mux.Handle("DELETE /v1/me/passkeys/{id}", auth(s.removePasskey))
	mux.Handle("POST /v1/me/passkeys/step-up/begin", auth(s.passkeyStepUpBegin))
	mux.Handle("POST /v1/me/passkeys/step-up", auth(s.passkeyStepUp))
}

// ceremony answers a begin route.
func (s *Server) ceremony(w http.ResponseWriter, r *http.Request, c *users.PasskeyCeremony, err error) {
	if err != nil {
		s.passkeyFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: c,
		Message: "Pass publicKey to navigator.credentials, then send its answer back as credential"})
}

// credentialOnly reads a body of the browser's answer alone,
// {"credential": {...}}; on failure it answers 400 and returns nil.
func (s *Server) credentialOnly(w http.ResponseWriter, r *http.Request) json.RawMessage {
	var req struct {
		Credential json.RawMessage `json:"credential"`
	}
	if !s.decode(w, r, &req) || !hasCredential(w, req.Credential) {
		return nil
	}
	return req.Credential
}

// hasCredential answers 400 unless c, the body's "credential", is a JSON
// object, and reports whether it is.
func hasCredential(w http.ResponseWriter, c json.RawMessage) bool {
	if len(c) == 0 || c[0] != '{' {
		invalid(w, "credential", users.ValidationRequired, "is required: the JSON object of the browser's PublicKeyCredential")
		return false
	}
	return true
}

// Signing in.

// passkeyLoginBegin starts a sign-in with no identifier: the browser offers
// the passkeys it holds for this site (and autofill, with mediation
// "conditional").
func (s *Server) passkeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	c, err := s.Users.BeginPasskeyLogin(r.Context())
	s.ceremony(w, r, c, err)
}

// passkeyLogin signs in with the browser's assertion: the session, as
// POST /v1/auth/login answers it; or, when the authenticator did not verify
// its user and the user has a second factor, 401 mfa_required with the
// challenge.
func (s *Server) passkeyLogin(w http.ResponseWriter, r *http.Request) {
	cred := s.credentialOnly(w, r)
	if cred == nil {
		return
	}
	sess, err := s.Users.FinishPasskeyLogin(r.Context(), cred)
	s.loggedIn(w, r, sess, err)
}

// passkeySecondBegin starts the second step of a login with a passkey: the
// body is {"challenge": token} of the 401 mfa_required answer, whose methods
// include "passkey".
func (s *Server) passkeySecondBegin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Challenge string `json:"challenge"`
	}
	if !s.decode(w, r, &req) || !required(w, "challenge", req.Challenge) {
		return
	}
	c, err := s.Users.BeginPasskeySecondFactor(r.Context(), req.Challenge)
	s.ceremony(w, r, c, err)
}

// passkeySecond completes the second step with the browser's assertion:
// {"challenge": token, "credential": {...}}, and "remember" as for
// POST /v1/auth/login/mfa (trusted.go).
func (s *Server) passkeySecond(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Challenge  string          `json:"challenge"`
		Credential json.RawMessage `json:"credential"`
		Remember   bool            `json:"remember"`
	}
	if !s.decode(w, r, &req) || !required(w, "challenge", req.Challenge) || !hasCredential(w, req.Credential) {
		return
	}
	sess, err := s.Users.CompleteLogin(signinContext(r, req.Remember, ""), req.Challenge, string(req.Credential))
	s.loggedIn(w, r, sess, err)
}

// The caller's passkeys.

// passkeys lists the caller's passkeys, oldest first: never another user's.
func (s *Server) passkeys(w http.ResponseWriter, r *http.Request) {
	ps, err := s.Users.Passkeys(r.Context(), session(r).UserID)
	if err != nil {
		s.passkeyFail(w, r, err)
		return
	}
	if ps == nil {
		ps = []*users.Passkey{}
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: ps})
}

// passkeyRegisterBegin starts adding a passkey for the caller; a session whose
// last proof is older than the library's ReauthWindow gets 403
// reauth_required.
func (s *Server) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request) {
	c, err := s.Users.BeginPasskeyRegistration(r.Context(), session(r).UserID)
	s.ceremony(w, r, c, err)
}

// passkeyRegister finishes adding it: {"name": "...", "credential": {...}}
// -> 201 and the passkey.
func (s *Server) passkeyRegister(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name       string          `json:"name"`
		Credential json.RawMessage `json:"credential"`
	}
	if !s.decode(w, r, &req) || !hasCredential(w, req.Credential) {
		return
	}
	p, err := s.Users.FinishPasskeyRegistration(r.Context(), session(r).UserID, req.Name, req.Credential)
	if err != nil {
		s.passkeyFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, envelope{Success: true, Data: p, Message: "Passkey added"})
}

// renamePasskey: {"name": "..."} -> the passkey.
func (s *Server) renamePasskey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name *string `json:"name"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if req.Name == nil {
		invalid(w, "name", users.ValidationRequired, "is required")
		return
	}
	p, err := s.Users.RenamePasskey(r.Context(), session(r).UserID, r.PathValue("id"), *req.Name)
	if err != nil {
		s.passkeyFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: p, Message: "Passkey renamed"})
}

// removePasskey removes one of the caller's passkeys. With
// ?end_sessions=true, the caller's sessions that a passkey signed in end
// too (for a lost device); by default they stay.
func (s *Server) removePasskey(w http.ResponseWriter, r *http.Request) {
	end := false
	switch v := r.URL.Query().Get("end_sessions"); v {
	case "", "false":
	case "true":
		end = true
	default:
		invalid(w, "end_sessions", users.ValidationMalformed, "must be true or false")
		return
	}
	if err := s.Users.RemovePasskey(r.Context(), session(r).UserID, r.PathValue("id"), end); err != nil {
		s.passkeyFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Passkey removed"})
}

// Step-up.

func (s *Server) passkeyStepUpBegin(w http.ResponseWriter, r *http.Request) {
	c, err := s.Users.BeginPasskeyStepUp(r.Context(), users.TokenFromRequest(r, ""))
	s.ceremony(w, r, c, err)
}

// passkeyStepUp proves a passkey for the calling session now, as POST
// /v1/me/mfa/step-up does with a code: {"credential": {...}}.
func (s *Server) passkeyStepUp(w http.ResponseWriter, r *http.Request) {
	cred := s.credentialOnly(w, r)
	if cred == nil {
		return
	}
	sess, err := s.Users.StepUp(r.Context(), users.TokenFromRequest(r, ""), string(cred))
	if err != nil {
		s.passkeyFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toDevice(sess, sess.ID), Message: "Passkey verified"})
}
