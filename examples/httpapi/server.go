package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

// The Server, its routes (Handler) and what wraps every route (common). The
// handlers live in files named for what they serve: auth.go (login, logout,
// the caller, passwords), email.go (the routes that work through a mailed
// link), users.go, devices.go, mfa.go, trusted.go (remember me and trusted
// devices), providers.go (sign-in with a provider, linked identities) and
// admin.go (locks and the audit log);
// context.go has what a request carries, json.go the bodies in and out,
// mail.go and queue.go the mail and the work after a 202 answer.

// Server is the REST API over a users.Manager. Set its fields, then serve
// Handler. A Server is safe for concurrent use.
type Server struct {
	// Users does the work. Required.
	Users *users.Manager

	// Mail, if set, takes every message instead of the default, which renders
	// it from the mail kit's templates (see sendMail) and hands it to Mailer.
	// Tests put a function here that captures the token.
	Mail func(ctx context.Context, m Mail)

	// Mailer sends the rendered messages. The default (nil) sends nothing;
	// the command sets a mail.DevMailer that prints them. Plug SMTP or an
	// email API in here.
	Mailer mail.Mailer

	// LinkBase is the origin of the front end whose pages the mailed links
	// open (it posts the token to this API), and where a provider's callback
	// sends the browser back to. The default (empty) is
	// "http://localhost:3000".
	LinkBase string

	// Logger receives the access log, failures and, by default, the mail. The
	// default is slog.Default().
	Logger *slog.Logger

	// MaxBodyBytes bounds a request body; a longer one is answered 413. The
	// default (zero) is 1 MiB.
	MaxBodyBytes int64

	// BackgroundTimeout bounds the work done for one request after its 202
	// answer (a password reset or magic link request). The default (zero) is 30
	// seconds.
	BackgroundTimeout time.Duration

	// MaxQueued bounds the requests waiting for the mail worker; more are
	// answered alike and dropped (and logged). The default (zero) is 1,000.
	MaxQueued int

	// SignUp opens POST /v1/auth/signup to anyone. The default (false) leaves
	// the route out: only admins create and invite users.
	SignUp bool

	// TrustedProxies are the reverse proxies whose X-Forwarded-For header is
	// believed for the client's IP address (see clientIP). The default (none)
	// takes the address of the connection: a client that talks to this server
	// directly can write any X-Forwarded-For it likes, and it would land in
	// the sessions and the audit log as fact.
	TrustedProxies []netip.Prefix

	mu      sync.Mutex
	queue   []func(ctx context.Context) // work after a 202, oldest first
	working bool                        // the worker goroutine is running
	bg      sync.WaitGroup              // queued and running work
}

// Validation codes this API adds to the package's (users.Validation*), for
// its own fields' "reason".
const (
	codeUnknownField         users.ValidationCode = "unknown_field"          // a JSON key this endpoint does not take
	codeMismatch             users.ValidationCode = "mismatch"               // confirm_password differs from new_password
	codeNeedsCurrentPassword users.ValidationCode = "needs_current_password" // one's own email changes by POST /v1/me/email
)

// Codes this API adds to the package's (users.Code*).
const (
	codeUnsupportedMediaType = "unsupported_media_type" // 415
	codeTooLarge             = "request_too_large"      // 413
	codeMethodNotAllowed     = "method_not_allowed"     // 405
)

// linkBase is LinkBase or its default.
func (s *Server) linkBase() string {
	if s.LinkBase == "" {
		return "http://localhost:3000"
	}
	return strings.TrimSuffix(s.LinkBase, "/")
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Handler returns the API's routes. Every answer is JSON, errors included.
// Refused input is 400 invalid_request with "field", "reason" (a
// users.ValidationCode) and "message" of the first refused field, and
// "fields", a list of every refused field with the same three keys, in the
// order of the library's input (users.NewUser, users.UserUpdate; see
// users.WriteError), so a client shows every error of a form at once.
//
//	POST   /v1/auth/login                   anyone      email or username + password -> token and user,
//	                                                     or 401 mfa_required with a challenge for a user with a second factor
//	POST   /v1/auth/login/mfa               anyone      challenge + code (TOTP or recovery code) -> token and user
//	POST   /v1/auth/logout                  signed in   ends this session
//	POST   /v1/auth/password-reset          anyone      202 always; mails a token
//	POST   /v1/auth/password-reset/confirm  anyone      token + new_password
//	POST   /v1/auth/verify-email            anyone      token -> user
//	POST   /v1/auth/accept-invite           anyone      token + password -> token and user
//	POST   /v1/auth/magic-link              anyone      202 always; mails a token
//	POST   /v1/auth/magic-link/confirm      anyone      token -> token and user
//	POST   /v1/auth/signup                  anyone      only with SignUp; 202 always; mails a link
//	GET    /v1/auth/providers               anyone      the providers to sign in with (users.Options.Providers)
//	GET    /v1/auth/providers/{p}/begin     a browser   ?return_to=/path: sets the flow cookie, 303 to the provider
//	GET    /v1/auth/providers/{p}/callback  a browser   the provider's redirect: keeps the answer in a cookie, 303 to LinkBase + return_to
//	POST   /v1/auth/providers/result        a browser   the answer of the last callback, once: as a login's, or 409 link_required
//	GET    /v1/me                           signed in   the caller
//	POST   /v1/me/reauthenticate            signed in   password -> this session proved the password now
//	PUT    /v1/me/password                  signed in   current_password, new_password, confirm_password; ends every session
//	POST   /v1/me/email-verification        signed in   202; mails a token
//	POST   /v1/me/email                     signed in   current_password + email -> 202; mails a token to the new address
//	POST   /v1/auth/email-change/confirm    anyone      token -> user with the new email
//	GET    /v1/me/sessions                  signed in   the caller's devices, the current one marked
//	DELETE /v1/me/sessions/{id}             signed in   ends one of them
//	POST   /v1/me/sessions/revoke-others    signed in   ends all but the current one
//	GET    /v1/me/mfa                       signed in   second-factor status, recovery codes left
//	POST   /v1/me/mfa/totp                  signed in   begin TOTP enrolment: secret, otpauth URI, QR code (PNG data URL)
//	POST   /v1/me/mfa/totp/confirm          signed in   code -> on, and the first recovery codes
//	POST   /v1/me/mfa/recovery-codes        2FA fresh   a new set of recovery codes; the old ones stop working
//	POST   /v1/me/mfa/step-up               signed in   code -> this session proved a second factor now
//	POST   /v1/me/mfa/disable               signed in   password or code -> off
//	GET    /v1/me/identities                signed in   the caller's linked identities
//	POST   /v1/me/identities                signed in   provider, return_to -> the url to send the browser to; sets the flow cookie
//	DELETE /v1/me/identities/{id}           signed in   unlinks it; 409 last_sign_in_method if it is the last way to sign in
//	POST   /v1/auth/passkey/begin           anyone      options for navigator.credentials.get(), no identifier (see passkey.go)
//	POST   /v1/auth/passkey                 anyone      credential -> token and user, or 401 mfa_required as login
//	POST   /v1/auth/login/passkey/begin     anyone      challenge (of mfa_required, methods with "passkey") -> options for get()
//	POST   /v1/auth/login/passkey           anyone      challenge + credential -> token and user
//	GET    /v1/me/passkeys                  signed in   the caller's passkeys: id, name, created, last used, transports, backup flags
//	POST   /v1/me/passkeys/begin            signed in   options for navigator.credentials.create()
//	POST   /v1/me/passkeys                  signed in   name + credential -> 201 the passkey
//	PATCH  /v1/me/passkeys/{id}             signed in   name -> the passkey
//	DELETE /v1/me/passkeys/{id}             signed in   ?end_sessions=true also ends the sessions passkeys signed in; 409 if the last way to sign in
//	POST   /v1/me/passkeys/step-up/begin    signed in   options for get() naming the caller's passkeys
//	POST   /v1/me/passkeys/step-up          signed in   credential -> this session proved a passkey now
//	PATCH  /v1/users/{id}                   (email: admins for others only; self uses /v1/me/email)
//	GET    /v1/users                        admin       page, limit, role, status, account_id, search
//	POST   /v1/users                        admin       create
//	POST   /v1/users/invite                 admin       create without password; mails a token
//	GET    /v1/users/{id}                   admin, self
//	PATCH  /v1/users/{id}                   admin; self unless viewer (not role or status)
//	DELETE /v1/users/{id}                   admin, not self
//	PUT    /v1/users/{id}/role              admin, not self
//	PUT    /v1/users/{id}/password          admin, not self: new_password, confirm_password; ends the user's sessions
//	GET    /v1/users/{id}/lock              admin       why the user cannot log in (users.LockState)
//	DELETE /v1/users/{id}/lock              admin       ends a login lock (users.Manager.Unlock)
//	GET    /v1/users/{id}/audit             admin       the user's audit log: type, since, until, limit, before
//	DELETE /v1/users/{id}/mfa               admin, 2FA fresh, not self: removes the user's second factor
//
// "2FA fresh": the session proved a second factor, at login or by step-up,
// within freshSecondFactor (users.Manager.RequireSecondFactor); otherwise 403
// second_factor_required. Enrolling, confirming, disabling or resetting a
// second factor, adding or removing a passkey, new recovery codes, and
// changing a password or an email (the caller's own or, for an admin, another
// user's), and linking or unlinking a provider, need the calling
// session to have proved the password or a factor within the library's
// ReauthWindow (10 minutes): at login, by POST /v1/me/reauthenticate or by
// step-up; otherwise 403 reauth_required, and nothing changes. Every route passes the client's IP address (see
// TrustedProxies) and User-Agent to the library, for sessions and audit entries.
func (s *Server) Handler() http.Handler {
	m := s.Users
	auth := func(h http.HandlerFunc) http.Handler { return m.Middleware("", h) }
	adminOnly := users.RequireRole(users.RoleAdmin)
	admin := func(h http.HandlerFunc) http.Handler { return m.Middleware("", adminOnly(h)) }
	fresh := m.RequireSecondFactor(freshSecondFactor)

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/auth/login", s.login)
	mux.HandleFunc("POST /v1/auth/login/mfa", s.completeLogin)
	mux.Handle("POST /v1/auth/logout", auth(s.logout))
	mux.HandleFunc("POST /v1/auth/password-reset", s.requestPasswordReset)
	mux.HandleFunc("POST /v1/auth/password-reset/confirm", s.resetPassword)
	mux.HandleFunc("POST /v1/auth/verify-email", s.verifyEmail)
	mux.HandleFunc("POST /v1/auth/accept-invite", s.acceptInvite)
	mux.HandleFunc("POST /v1/auth/magic-link", s.requestMagicLink)
	mux.HandleFunc("POST /v1/auth/magic-link/confirm", s.magicLinkLogin)
	if s.SignUp {
		mux.HandleFunc("POST /v1/auth/signup", s.signUp)
	}

	mux.Handle("GET /v1/me", auth(s.me))
	mux.Handle("POST /v1/me/reauthenticate", auth(s.reauthenticate))
	mux.Handle("PUT /v1/me/password", auth(s.changePassword))
	mux.Handle("POST /v1/me/email-verification", auth(s.requestEmailVerification))
	mux.Handle("POST /v1/me/email", auth(s.changeEmail))
	mux.HandleFunc("POST /v1/auth/email-change/confirm", s.confirmEmailChange)
	mux.Handle("GET /v1/me/sessions", auth(s.sessions))
	mux.Handle("DELETE /v1/me/sessions/{id}", auth(s.revokeSession))
	mux.Handle("POST /v1/me/sessions/revoke-others", auth(s.revokeOthers))
	mux.Handle("GET /v1/me/trusted-devices", auth(s.trustedDevices))
	mux.Handle("DELETE /v1/me/trusted-devices/{id}", auth(s.forgetTrustedDevice))
	mux.Handle("GET /v1/me/mfa", auth(s.mfaStatus))
	mux.Handle("POST /v1/me/mfa/totp", auth(s.beginTOTP))
	mux.Handle("POST /v1/me/mfa/totp/confirm", auth(s.confirmTOTP))
	mux.Handle("POST /v1/me/mfa/recovery-codes", m.Middleware("", fresh(http.HandlerFunc(s.regenerateRecoveryCodes))))
	mux.Handle("POST /v1/me/mfa/step-up", auth(s.stepUp))
	mux.Handle("POST /v1/me/mfa/disable", auth(s.disableMFA))
	s.passkeyRoutes(mux, auth)

	s.providerRoutes(mux, auth)

	mux.Handle("GET /v1/users", admin(s.listUsers))
	mux.Handle("POST /v1/users", admin(s.createUser))
	mux.Handle("POST /v1/users/invite", admin(s.inviteUser))
	mux.Handle("GET /v1/users/{id}", auth(s.getUser))
	mux.Handle("PATCH /v1/users/{id}", auth(s.updateUser))
	mux.Handle("DELETE /v1/users/{id}", admin(s.deleteUser))
	mux.Handle("PUT /v1/users/{id}/role", admin(s.setRole))
	mux.Handle("PUT /v1/users/{id}/password", admin(s.setPassword))
	mux.Handle("GET /v1/users/{id}/lock", admin(s.lockState))
	mux.Handle("DELETE /v1/users/{id}/lock", admin(s.unlock))
	mux.Handle("GET /v1/users/{id}/audit", admin(s.audit))
	mux.Handle("DELETE /v1/users/{id}/mfa", m.Middleware("", adminOnly(fresh(http.HandlerFunc(s.resetMFA)))))

	return s.common(mux)
}

// common wraps the routes: the client in the context (withClient), access
// log, no caching, JSON for the mux's own 404 and 405 answers, and a JSON 500
// instead of a dropped connection on a panic.
func (s *Server) common(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		r = s.withClient(r)
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger().Error("panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if w.status == 0 {
					users.WriteError(w, errors.New("panic"))
				}
			}
			// Never log headers or bodies: they carry tokens and passwords.
			s.logger().Info("request", "method", r.Method, "path", r.URL.Path, "status", w.status, "duration", time.Since(start).Round(time.Microsecond))
		}()
		w.Header().Set("Cache-Control", "no-store")

		if _, pattern := mux.Handler(r); pattern == "" {
			// No route: the mux would answer 404 or 405 (with Allow) in plain
			// text. Let it set its headers, then answer in JSON.
			d := &discardWriter{header: w.Header()}
			mux.ServeHTTP(d, r)
			if d.status == http.StatusMethodNotAllowed {
				writeError(w, d.status, codeMethodNotAllowed, "Method not allowed; see the Allow header", "")
			} else {
				writeError(w, http.StatusNotFound, users.CodeNotFound, "No such endpoint", "")
			}
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// discardWriter keeps the headers and status a handler writes and drops its body.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
