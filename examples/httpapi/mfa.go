package main

import (
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/userkit/users"
)

// Second factors: the two-step login, enrolment, recovery codes, step-up,
// disabling and the admin reset.

// freshSecondFactor is how recently a session must have proved a second factor
// (at login or by step-up) for the routes that change second factors of
// someone else or make new recovery codes.
const freshSecondFactor = 10 * time.Minute

// codeMFANotConfigured answers TOTP enrolment on a server started without an
// MFA key (users.ErrMFANotConfigured): 501.
const codeMFANotConfigured = "mfa_not_configured"

// apiChallenge is the second step of a login, in the error of a 401
// mfa_required answer. Token goes to POST /v1/auth/login/mfa with a code.
type apiChallenge struct {
	Token     string             `json:"token"`
	Methods   []users.AuthMethod `json:"methods"`
	ExpiresAt string             `json:"expires_at"`
}

// loggedIn answers a call that logs in (password, magic link, invitation, or
// the second step): the session, or for a user with a second factor 401
// mfa_required with the challenge in the error object, or the error.
func (s *Server) loggedIn(w http.ResponseWriter, r *http.Request, sess *users.Session, err error) {
	s.loggedInOn(w, r, sess, nil, err)
}

// loggedInOn is loggedIn for a login that also trusted the device d, if not nil.
func (s *Server) loggedInOn(w http.ResponseWriter, r *http.Request, sess *users.Session, d *users.TrustedDevice, err error) {
	var c *users.Challenge
	switch {
	case errors.As(err, &c):
		msg := "Enter the code from your authenticator app, or a recovery code"
		if slices.Contains(c.Methods, users.MethodPasskey) {
			msg += ", or use a passkey (POST /v1/auth/login/passkey/begin)"
		}
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeJSON(w, http.StatusUnauthorized, errorEnvelope{Error: apiError{
			Code:      users.CodeMFARequired,
			Message:   msg,
			Challenge: &apiChallenge{Token: c.Token, Methods: c.Methods, ExpiresAt: timestamp(c.ExpiresAt)},
		}})
	case err != nil:
		s.fail(w, r, err)
	default:
		data := toSession(sess)
		if d != nil {
			data.DeviceToken, data.DeviceExpiresAt = d.Token, timestamp(d.ExpiresAt)
		}
		writeJSON(w, http.StatusOK, envelope{Success: true, Data: data, Message: "Logged in successfully"})
	}
}

// completeLogin is the second step of a login: the challenge's token and a
// code (TOTP or recovery code), and "remember" and "trust_device" (see
// trusted.go). A wrong code answers 401 invalid_code and the
// challenge stays for a few more tries; after users.MaxChallengeAttempts, or
// once it expired or succeeded, it answers 401 invalid_token: log in again.
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Challenge   string `json:"challenge"`
		Code        string `json:"code"`
		Remember    bool   `json:"remember"`
		TrustDevice bool   `json:"trust_device"`
	}
	if !s.decode(w, r, &req) || !required(w, "challenge", req.Challenge, "code", req.Code) {
		return
	}
	sess, err := s.Users.CompleteLogin(signinContext(r, req.Remember, ""), req.Challenge, req.Code)
	var d *users.TrustedDevice
	if err == nil && req.TrustDevice {
		// The session is made: a failure to trust the device is logged and
		// costs the client only the convenience.
		var terr error
		if d, terr = s.Users.TrustDevice(r.Context(), sess.Token); terr != nil {
			s.logger().ErrorContext(r.Context(), "trusting a device", "err", terr)
		}
	}
	s.loggedInOn(w, r, sess, d, err)
}

func (s *Server) mfaStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Users.MFAStatus(r.Context(), session(r).UserID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: st})
}

// apiEnrollment is the first step of TOTP enrolment. QRCode is a data: URL of
// a PNG, for an <img src>. The secret is shown once, never logged.
type apiEnrollment struct {
	Secret string `json:"secret"`
	URI    string `json:"otpauth_uri"`
	QRCode string `json:"qr_code"`
}

// beginTOTP starts (or restarts) TOTP enrolment for the caller.
func (s *Server) beginTOTP(w http.ResponseWriter, r *http.Request) {
	e, err := s.Users.BeginTOTP(r.Context(), session(r).UserID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{
		Success: true,
		Data: apiEnrollment{
			Secret: e.Secret, URI: e.URI,
			QRCode: "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRCode),
		},
		Message: "Scan the code with your authenticator app, then confirm with the code it shows",
	})
}

// recoveryCodes is the answer that shows recovery codes, once.
type recoveryCodes struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// confirmTOTP activates the enrolment with a code from the app and answers the
// first recovery codes.
func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if !s.decode(w, r, &req) || !required(w, "code", req.Code) {
		return
	}
	codes, err := s.Users.ConfirmTOTP(r.Context(), session(r).UserID, req.Code)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: recoveryCodes{codes},
		Message: "Two-factor authentication is on; keep these recovery codes somewhere safe, they are shown once"})
}

// regenerateRecoveryCodes replaces the caller's recovery codes. It sits behind
// RequireSecondFactor(freshSecondFactor): a stolen session alone cannot take
// a fresh set.
func (s *Server) regenerateRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	codes, err := s.Users.RegenerateRecoveryCodes(r.Context(), session(r).UserID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: recoveryCodes{codes},
		Message: "New recovery codes; the old ones no longer work"})
}

// disableMFA removes the caller's second factor, proven again by the password
// or a fresh code (one of them, not both).
func (s *Server) disableMFA(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password string `json:"password"`
		Code     string `json:"code"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if err := s.Users.DisableMFA(r.Context(), session(r).UserID, req.Password, req.Code); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Two-factor authentication is off"})
}

// stepUp proves a second factor again for the calling session, for the routes
// behind RequireSecondFactor; it answers the session as GET /v1/me/sessions
// shows it.
func (s *Server) stepUp(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if !s.decode(w, r, &req) || !required(w, "code", req.Code) {
		return
	}
	sess, err := s.Users.StepUp(r.Context(), users.TokenFromRequest(r, ""), req.Code)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toDevice(sess, sess.ID), Message: "Second factor verified"})
}

// resetMFA is an admin removing another user's second factor (a lost phone and
// lost recovery codes). It sits behind RequireSecondFactor(freshSecondFactor):
// only an admin who proved their own second factor lately can take away
// someone else's. Admins remove their own with POST /v1/me/mfa/disable.
func (s *Server) resetMFA(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == session(r).UserID {
		forbidden(w, "Remove your own second factor with POST /v1/me/mfa/disable")
		return
	}
	if err := s.Users.ResetMFA(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "The user's second factor is removed; they log in with their password alone"})
}
