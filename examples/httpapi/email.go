package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/userkit/users"
)

// The routes that work through a one-time link mailed to the user: password
// reset, magic link, sign-up, invitations, email verification and email change.

// emailRequest reads {"email": …} and normalises the address; a malformed one
// is refused here, which tells nothing about who has an account.
func (s *Server) emailRequest(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req struct {
		Email string `json:"email"`
	}
	if !s.decode(w, r, &req) {
		return "", false
	}
	email, err := users.NormalizeEmail(req.Email)
	if err != nil {
		s.fail(w, r, err)
		return "", false
	}
	return email, true
}

// requestRecovery answers 202 at once and queues, for the mail worker, the
// request for a token and its mail. An unknown or disabled account gets the
// same answer at the same speed, and no mail: the answer must not tell
// strangers who has an account. The mail goes to the address stored for the
// account (Delivery.To), never to the one in the request. The request is
// counted under action for the client and the email first (the work runs in
// the background, without the client): over the limit, the answer is 429
// with Retry-After, whoever has the email.
func (s *Server) requestRecovery(w http.ResponseWriter, r *http.Request, kind string, action users.RateAction, message string,
	request func(ctx context.Context, email string) (*users.Delivery, error)) {
	email, ok := s.emailRequest(w, r)
	if !ok {
		return
	}
	if err := s.Users.Limit(r.Context(), action, email); err != nil {
		s.fail(w, r, err)
		return
	}
	s.enqueue(kind, func(ctx context.Context) {
		d, err := request(ctx, email)
		switch {
		case err == nil:
			s.mail(ctx, Mail{To: d.To, Kind: kind, Token: d.Token})
		case errors.Is(err, users.ErrUnknownEmail), errors.Is(err, users.ErrAccountDisabled):
			s.logger().Info("no mail sent: no active account has the email", "kind", kind)
		default:
			s.logger().Error("account recovery request failed", "kind", kind, "err", err)
		}
	})
	writeJSON(w, http.StatusAccepted, envelope{Success: true, Message: message})
}

func (s *Server) requestPasswordReset(w http.ResponseWriter, r *http.Request) {
	s.requestRecovery(w, r, "password-reset", users.ActionPasswordReset,
		"If an account has this email, a password reset link is on its way to it",
		s.Users.RequestPasswordReset)
}

func (s *Server) requestMagicLink(w http.ResponseWriter, r *http.Request) {
	s.requestRecovery(w, r, "magic-link", users.ActionMagicLink,
		"If an account has this email, a sign-in link is on its way to it",
		s.Users.RequestMagicLink)
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token       string `json:"token"`
		NewPassword string `json:"new_password"`
	}
	if !s.decode(w, r, &req) || !required(w, "token", req.Token, "new_password", req.NewPassword) {
		return
	}
	if err := s.Users.ResetPassword(r.Context(), req.Token, req.NewPassword); err != nil {
		s.fail(w, r, rename(err, map[string]string{"password": "new_password"}))
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Password reset; every session has ended, log in with the new password"})
}

func (s *Server) verifyEmail(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if !s.decode(w, r, &req) || !required(w, "token", req.Token) {
		return
	}
	u, err := s.Users.VerifyEmail(r.Context(), req.Token)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toAPI(u), Message: "Email verified"})
}

func (s *Server) acceptInvite(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if !s.decode(w, r, &req) || !required(w, "token", req.Token, "password", req.Password) {
		return
	}
	sess, err := s.Users.AcceptInvitation(r.Context(), req.Token, req.Password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toSession(sess), Message: "Invitation accepted"})
}

func (s *Server) magicLinkLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if !s.decode(w, r, &req) || !required(w, "token", req.Token) {
		return
	}
	sess, err := s.Users.LoginWithMagicLink(r.Context(), req.Token)
	s.loggedIn(w, r, sess, err)
}

func (s *Server) requestEmailVerification(w http.ResponseWriter, r *http.Request) {
	sess := session(r)
	d, err := s.Users.RequestEmailVerification(r.Context(), sess.UserID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.mail(r.Context(), Mail{To: d.To, Kind: "verify-email", Token: d.Token})
	writeJSON(w, http.StatusAccepted, envelope{Success: true, Message: "A verification link is on its way to " + d.To})
}

// changeEmail starts a change of the caller's own email. It needs the current
// password, so that a session alone (a borrowed laptop, a stolen token) cannot
// move the account to another inbox. The email changes only when the link
// mailed to the new address is followed (confirmEmailChange). Whether another
// account has the new address is not looked at here: a taken address gets the
// same 202, and the conflict shows only to whoever reads the new address's mail.
func (s *Server) changeEmail(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CurrentPassword string `json:"current_password"`
		Email           string `json:"email"`
	}
	if !s.decode(w, r, &req) || !required(w, "current_password", req.CurrentPassword, "email", req.Email) {
		return
	}
	d, err := s.Users.RequestEmailChange(r.Context(), session(r).UserID, req.CurrentPassword, req.Email)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.mail(r.Context(), Mail{To: d.To, Kind: "email-change", Token: d.Token})
	writeJSON(w, http.StatusAccepted, envelope{Success: true, Message: "A confirmation link is on its way to the new address; the email changes when it is followed"})
}

func (s *Server) confirmEmailChange(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if !s.decode(w, r, &req) || !required(w, "token", req.Token) {
		return
	}
	u, err := s.Users.ConfirmEmailChange(r.Context(), req.Token)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toAPI(u), Message: "Email changed"})
}

// signUp is public registration, email first. It answers 202 at once, whoever
// has the email, and does the work in the background:
//
//   - a new email gets an invited account and a "signup" mail whose token, with
//     POST /v1/auth/accept-invite, sets the password, verifies the email and
//     signs in;
//   - an email whose sign-up is still pending gets a fresh "signup" mail (the
//     earlier link is void);
//   - an email with an account gets an "account-exists" mail, to the address
//     stored for it.
//
// The password is chosen only after the link proves the email. Taking it here
// would tell strangers who has an account: the password they chose would sign
// them in on a new email and fail on a taken one. Sign-ups are counted
// under users.ActionSignUp for the client and the email before anything is
// queued: over the limit, 429 with Retry-After.
func (s *Server) signUp(w http.ResponseWriter, r *http.Request) {
	email, ok := s.emailRequest(w, r)
	if !ok {
		return
	}
	if err := s.Users.Limit(r.Context(), users.ActionSignUp, email); err != nil {
		s.fail(w, r, err)
		return
	}
	s.enqueue("signup", func(ctx context.Context) {
		if err := s.register(ctx, email); err != nil {
			s.logger().Error("sign-up failed", "err", err)
		}
	})
	writeJSON(w, http.StatusAccepted, envelope{Success: true, Message: "Check your email to finish signing up"})
}

// register is the background half of signUp.
func (s *Server) register(ctx context.Context, email string) error {
	u, token, err := s.Users.Invite(ctx, users.NewUser{Email: email})
	if err == nil {
		s.mail(ctx, Mail{To: u.Email, Kind: "signup", Token: token})
		return nil
	}
	if !errors.Is(err, users.ErrDuplicateEmail) {
		return err
	}
	u, err = s.Users.GetByEmail(ctx, email)
	if err != nil {
		return err // removed meanwhile, or the store failed
	}
	if u.Status == users.StatusInvited {
		d, err := s.Users.Reinvite(ctx, u.ID)
		if err != nil {
			return err
		}
		s.mail(ctx, Mail{To: d.To, Kind: "signup", Token: d.Token})
		return nil
	}
	s.mail(ctx, Mail{To: u.Email, Kind: "account-exists"})
	return nil
}
