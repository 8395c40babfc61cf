package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

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
	// open (it posts the token to this API). The default (empty) is
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

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Wait waits for the work queued after 202 answers to finish. Call it after
// http.Server.Shutdown and before closing the store.
func (s *Server) Wait() { s.bg.Wait() }

// enqueue hands fn to the one mail worker and returns at once. A request that
// names an account and one that does not both cost the handler exactly this: a
// lock, an append and (when the worker is idle) starting it. The worker does
// the store reads and writes one request after another, away from the answers,
// so neither the answer nor its timing depends on what it finds.
func (s *Server) enqueue(kind string, fn func(ctx context.Context)) {
	limit := s.MaxQueued
	if limit <= 0 {
		limit = 1000
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= limit {
		s.logger().Warn("mail queue full: request dropped", "kind", kind)
		return
	}
	s.queue = append(s.queue, fn)
	s.bg.Add(1)
	if !s.working {
		s.working = true
		go s.work()
	}
}

// work runs the queued work in order until the queue is empty.
func (s *Server) work() {
	timeout := s.BackgroundTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.working = false
			s.mu.Unlock()
			return
		}
		fn := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		fn(ctx)
		cancel()
		s.bg.Done()
	}
}

// Handler returns the API's routes. Every answer is JSON, errors included.
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
// second factor, new recovery codes, and changing a password or an email
// (the caller's own or, for an admin, another user's) need the calling
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
	mux.Handle("GET /v1/me/mfa", auth(s.mfaStatus))
	mux.Handle("POST /v1/me/mfa/totp", auth(s.beginTOTP))
	mux.Handle("POST /v1/me/mfa/totp/confirm", auth(s.confirmTOTP))
	mux.Handle("POST /v1/me/mfa/recovery-codes", m.Middleware("", fresh(http.HandlerFunc(s.regenerateRecoveryCodes))))
	mux.Handle("POST /v1/me/mfa/step-up", auth(s.stepUp))
	mux.Handle("POST /v1/me/mfa/disable", auth(s.disableMFA))

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

// Responses.

// envelope is every success body: {"success":true,"data":…,"message":…}.
type envelope struct {
	Success    bool        `json:"success"`
	Data       any         `json:"data,omitempty"`
	Pagination *pagination `json:"pagination,omitempty"`
	Message    string      `json:"message,omitempty"`
}

type pagination struct {
	Page  int `json:"page"`
	Limit int `json:"limit"`
	Total int `json:"total"`
	Pages int `json:"pages"`
}

// apiUser is the document's user object, plus username, email_verified,
// last_login_at, account_id (the owning account or tenant) and preferences.
// name is first and last name joined with a space.
type apiUser struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Email         string            `json:"email"`
	Username      string            `json:"username,omitempty"`
	Role          users.Role        `json:"role"`
	Status        users.Status      `json:"status"`
	Avatar        string            `json:"avatar,omitempty"`
	EmailVerified bool              `json:"email_verified"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
	LastLoginAt   string            `json:"last_login_at,omitempty"`
	AccountID     string            `json:"account_id,omitempty"`
	Preferences   map[string]string `json:"preferences,omitempty"`
}

func toAPI(u *users.User) apiUser {
	a := apiUser{
		ID:            u.ID,
		Name:          strings.TrimSpace(u.FirstName + " " + u.LastName),
		Email:         u.Email,
		Username:      u.Username,
		Role:          u.Role,
		Status:        u.Status,
		Avatar:        u.AvatarURL,
		EmailVerified: u.EmailVerified,
		CreatedAt:     timestamp(u.CreatedAt),
		UpdatedAt:     timestamp(u.UpdatedAt),
		AccountID:     u.AccountID,
		Preferences:   u.Preferences,
	}
	if !u.LastLoginAt.IsZero() {
		a.LastLoginAt = timestamp(u.LastLoginAt)
	}
	return a
}

// timestamp is ISO 8601 in UTC to the second, as in the document.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// apiSession is the answer to a login: the bearer token, once, and the user.
type apiSession struct {
	Token     string  `json:"token"`
	TokenType string  `json:"token_type"`
	ExpiresAt string  `json:"expires_at"`
	User      apiUser `json:"user"`
}

func toSession(sess *users.Session) apiSession {
	return apiSession{Token: sess.Token, TokenType: "Bearer", ExpiresAt: timestamp(sess.ExpiresAt), User: toAPI(sess.User)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		users.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError writes the error envelope for an error of this API's own (not of
// the users package, which users.WriteError handles).
func writeError(w http.ResponseWriter, status int, code, message, field string) {
	writeJSON(w, status, errorEnvelope{Error: apiError{Code: code, Message: message, Field: field}})
}

// errorEnvelope is every error body: {"success":false,"error":{…}}.
type errorEnvelope struct {
	Success bool     `json:"success"`
	Error   apiError `json:"error"`
}

// apiError is the error object. Challenge is set only with the code
// mfa_required.
type apiError struct {
	Code      string        `json:"code"`
	Message   string        `json:"message"`
	Field     string        `json:"field,omitempty"`
	Challenge *apiChallenge `json:"challenge,omitempty"`
}

// fail answers with a users package error. It logs what the client is not
// told: the text of a 500. An ErrNotFound here is always about a user.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, _, _ := users.HTTPError(err)
	switch {
	case errors.Is(err, users.ErrMFANotConfigured):
		writeError(w, http.StatusNotImplemented, codeMFANotConfigured, "Two-factor authentication is not configured on this server", "")
		return
	case status == http.StatusInternalServerError:
		s.logger().Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	case errors.Is(err, users.ErrNotFound):
		writeError(w, http.StatusNotFound, users.CodeNotFound, "User not found", "")
		return
	}
	users.WriteError(w, err)
}

// invalid answers 400 invalid_request on field, with code as its "reason".
func invalid(w http.ResponseWriter, field string, code users.ValidationCode, reason string) {
	users.WriteError(w, &users.ValidationError{Field: field, Code: code, Reason: reason})
}

func forbidden(w http.ResponseWriter, message string) {
	writeError(w, http.StatusForbidden, users.CodeForbidden, message, "")
}

// rename gives a *users.ValidationError on one of the library's field names the
// name this API uses for it (avatar_url is avatar here, and so on).
func rename(err error, names map[string]string) error {
	var ve *users.ValidationError
	if errors.As(err, &ve) {
		if to, ok := names[ve.Field]; ok {
			return &users.ValidationError{Field: to, Code: ve.Code, Reason: ve.Reason}
		}
	}
	return err
}

// Requests.

// decode reads r's body, which must be one JSON object of at most MaxBodyBytes
// with no unknown fields, into dst. On failure it answers the request with the
// error envelope and returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "Content-Type must be application/json", "")
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		writeError(w, http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "The body must be UTF-8", "")
		return false
	}
	limit := s.MaxBodyBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
			var mbe *http.MaxBytesError
			if errors.As(terr, &mbe) {
				err = terr
			}
		}
	}
	if err == nil {
		return true
	}

	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		mbe    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("The body must be at most %d bytes", mbe.Limit), "")
	case errors.Is(err, io.EOF):
		invalid(w, "body", users.ValidationRequired, "must be a JSON object; it is empty")
	case errors.Is(err, errTrailing):
		invalid(w, "body", users.ValidationMalformed, "must be a single JSON object with nothing after it")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		invalid(w, "body", users.ValidationMalformed, "is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			invalid(w, "body", users.ValidationMalformed, "must be a JSON object")
		} else {
			invalid(w, typ.Field, users.ValidationMalformed, "must be "+jsonKind(typ.Type.Kind().String())+", not "+typ.Value)
		}
	default:
		if f, ok := unknownField(err); ok {
			invalid(w, f, codeUnknownField, "is not a known field")
		} else {
			invalid(w, "body", users.ValidationMalformed, "could not be read as JSON")
		}
	}
	return false
}

var errTrailing = errors.New("trailing data")

// jsonKind names the JSON type of a Go kind, for messages.
func jsonKind(k string) string {
	switch {
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "slice", k == "array":
		return "an array"
	}
	return "an object"
}

// unknownField returns the field named by encoding/json's DisallowUnknownFields
// error, which has no type of its own.
func unknownField(err error) (string, bool) {
	rest, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	f, err := strconv.Unquote(rest)
	if err != nil {
		return "", false
	}
	return f, true
}

// splitName returns the first and last name a request sets (nil: unchanged).
// A request names a person by "name", which is split on its first space (the
// document has one name field), or by first_name and last_name; using both ways
// at once is refused.
func splitName(name, first, last *string) (*string, *string, error) {
	if name == nil {
		return first, last, nil
	}
	if first != nil || last != nil {
		return nil, nil, &users.ValidationError{Field: "name", Code: users.ValidationExclusive, Reason: "give either name or first_name and last_name, not both"}
	}
	f, l, _ := strings.Cut(strings.TrimSpace(*name), " ")
	l = strings.TrimSpace(l)
	return &f, &l, nil
}

// fieldNames maps the library's field names to this API's, for the user fields:
// avatar_url is avatar, and first and last name are name when the request gave
// name.
func fieldNames(name *string) map[string]string {
	m := map[string]string{"avatar_url": "avatar"}
	if name != nil {
		m["first_name"], m["last_name"] = "name", "name"
	}
	return m
}

func session(r *http.Request) *users.Session {
	sess, _ := users.FromContext(r.Context()) // always there behind Middleware
	return sess
}

// Auth handlers.

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string `json:"email"`
		Username string `json:"username"`
		Password string `json:"password"`
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
	sess, err := s.Users.Login(r.Context(), identifier, req.Password)
	s.loggedIn(w, r, sess, err)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.Users.Logout(r.Context(), users.TokenFromRequest(r, "")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Logged out successfully"})
}

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
// account (Delivery.To), never to the one in the request.
func (s *Server) requestRecovery(w http.ResponseWriter, r *http.Request, kind, message string,
	request func(ctx context.Context, email string) (*users.Delivery, error)) {
	email, ok := s.emailRequest(w, r)
	if !ok {
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
	s.requestRecovery(w, r, "password-reset",
		"If an account has this email, a password reset link is on its way to it",
		s.Users.RequestPasswordReset)
}

func (s *Server) requestMagicLink(w http.ResponseWriter, r *http.Request) {
	s.requestRecovery(w, r, "magic-link",
		"If an account has this email, a sign-in link is on its way to it",
		s.Users.RequestMagicLink)
}

// required answers 400 on the first of the (field, value) pairs whose value is
// empty, and reports whether all were given.
func required(w http.ResponseWriter, pairs ...string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			invalid(w, pairs[i], users.ValidationRequired, "is required")
			return false
		}
	}
	return true
}

// confirmed answers 400 on confirm_password unless it is given and equal to
// newPassword, and reports whether it is. It runs before the library is asked,
// so a typo costs no failed-login count and no bcrypt work.
func confirmed(w http.ResponseWriter, newPassword, confirm string) bool {
	if !required(w, "confirm_password", confirm) {
		return false
	}
	if confirm != newPassword {
		invalid(w, "confirm_password", codeMismatch, "must be the same as new_password")
		return false
	}
	return true
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

// Me handlers.

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

// User handlers.

// maxPage keeps (page-1)*limit within an int, even a 32-bit one.
const maxPage = math.MaxInt32 / 100

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	number := func(name string, def, max int) (int, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			invalid(w, name, users.ValidationMalformed, "must be a whole number")
			return 0, false
		case n < 1:
			invalid(w, name, users.ValidationOutOfRange, "must be at least 1")
			return 0, false
		case n > max:
			invalid(w, name, users.ValidationOutOfRange, "must be at most "+strconv.Itoa(max))
			return 0, false
		}
		return n, true
	}
	page, ok := number("page", 1, maxPage)
	if !ok {
		return
	}
	limit, ok := number("limit", 20, 100)
	if !ok {
		return
	}
	f := users.Filter{
		Role:      users.Role(q.Get("role")),
		Status:    users.Status(q.Get("status")),
		AccountID: q.Get("account_id"),
		Search:    q.Get("search"),
		Limit:     limit,
		Offset:    (page - 1) * limit,
	}
	p, err := s.Users.Find(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	total, err := s.Users.Count(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := make([]apiUser, 0, len(p.Users))
	for _, u := range p.Users {
		data = append(data, toAPI(u))
	}
	writeJSON(w, http.StatusOK, envelope{
		Success:    true,
		Data:       data,
		Pagination: &pagination{Page: page, Limit: limit, Total: total, Pages: (total + limit - 1) / limit},
	})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	sess, id := session(r), r.PathValue("id")
	if sess.User.Role != users.RoleAdmin && id != sess.UserID {
		forbidden(w, "You may only read your own account")
		return
	}
	u, err := s.Users.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toAPI(u)})
}

// userRequest is the body of POST /v1/users and POST /v1/users/invite.
type userRequest struct {
	Name        *string           `json:"name"`
	FirstName   *string           `json:"first_name"`
	LastName    *string           `json:"last_name"`
	Email       string            `json:"email"`
	Username    string            `json:"username"`
	Role        users.Role        `json:"role"`
	Status      users.Status      `json:"status"`
	Avatar      string            `json:"avatar"`
	Password    string            `json:"password"`
	AccountID   string            `json:"account_id"`
	Preferences map[string]string `json:"preferences"`
}

func (req *userRequest) newUser() (users.NewUser, error) {
	first, last, err := splitName(req.Name, req.FirstName, req.LastName)
	if err != nil {
		return users.NewUser{}, err
	}
	nu := users.NewUser{
		Email: req.Email, Username: req.Username, Password: req.Password,
		Role: req.Role, Status: req.Status, AvatarURL: req.Avatar,
		AccountID: req.AccountID, Preferences: req.Preferences,
	}
	if first != nil {
		nu.FirstName = *first
	}
	if last != nil {
		nu.LastName = *last
	}
	return nu, nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !s.decode(w, r, &req) {
		return
	}
	nu, err := req.newUser()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.Users.Create(r.Context(), nu)
	if err != nil {
		s.fail(w, r, rename(err, fieldNames(req.Name)))
		return
	}
	w.Header().Set("Location", "/v1/users/"+u.ID)
	writeJSON(w, http.StatusCreated, envelope{Success: true, Data: toAPI(u), Message: "User created successfully"})
}

func (s *Server) inviteUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !s.decode(w, r, &req) {
		return
	}
	switch {
	case req.Password != "":
		invalid(w, "password", users.ValidationMustBeEmpty, "cannot be set on an invitation: the invited user chooses it")
		return
	case req.Status != "":
		invalid(w, "status", users.ValidationMustBeEmpty, "cannot be set on an invitation")
		return
	}
	nu, err := req.newUser()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, token, err := s.Users.Invite(r.Context(), nu)
	if err != nil {
		s.fail(w, r, rename(err, fieldNames(req.Name)))
		return
	}
	s.mail(r.Context(), Mail{To: u.Email, Kind: "invitation", Token: token})
	w.Header().Set("Location", "/v1/users/"+u.ID)
	writeJSON(w, http.StatusCreated, envelope{Success: true, Data: toAPI(u), Message: "Invitation sent"})
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	sess, id := session(r), r.PathValue("id")
	isAdmin, self := sess.User.Role == users.RoleAdmin, id == sess.UserID
	switch {
	case !isAdmin && !self:
		forbidden(w, "You may only update your own account")
		return
	case sess.User.Role == users.RoleViewer:
		forbidden(w, "Viewers cannot change their account")
		return
	}
	var req struct {
		Name      *string       `json:"name"`
		FirstName *string       `json:"first_name"`
		LastName  *string       `json:"last_name"`
		Email     *string       `json:"email"`
		Username  *string       `json:"username"`
		Avatar    *string       `json:"avatar"`
		Role      *users.Role   `json:"role"`
		Status    *users.Status `json:"status"`
		AccountID *string       `json:"account_id"`
		// Preferences replaces the whole map; {} clears it, null or absent
		// leaves it as it is.
		Preferences map[string]string `json:"preferences"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	switch {
	case !isAdmin && (req.Role != nil || req.Status != nil || req.AccountID != nil):
		forbidden(w, "Only admins can change a role, status or account_id")
		return
	case self && req.Role != nil && *req.Role != users.RoleAdmin,
		self && req.Status != nil && *req.Status != users.StatusActive:
		forbidden(w, "Admins cannot demote or deactivate themselves")
		return
	case self && req.Email != nil:
		// Here it would take effect at once, without the password, and a 409
		// would tell the caller that the address has an account.
		invalid(w, "email", codeNeedsCurrentPassword, "change your own email with POST /v1/me/email, which needs your current password")
		return
	}
	first, last, err := splitName(req.Name, req.FirstName, req.LastName)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	up := users.UserUpdate{
		Email: req.Email, Username: req.Username, FirstName: first, LastName: last,
		AvatarURL: req.Avatar, Role: req.Role, Status: req.Status,
		AccountID: req.AccountID, Preferences: req.Preferences,
	}
	u, err := s.Users.Update(r.Context(), id, up)
	if err != nil {
		s.fail(w, r, rename(err, fieldNames(req.Name)))
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toAPI(u), Message: "User updated successfully"})
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == session(r).UserID {
		forbidden(w, "Admins cannot delete themselves")
		return
	}
	if err := s.Users.Remove(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "User deleted successfully"})
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role users.Role `json:"role"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if !required(w, "role", string(req.Role)) {
		return
	}
	id := r.PathValue("id")
	if id == session(r).UserID && req.Role != users.RoleAdmin {
		forbidden(w, "Admins cannot demote themselves")
		return
	}
	u, err := s.Users.UpdateRole(r.Context(), id, req.Role)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toAPI(u), Message: "Role updated successfully"})
}

// setPassword is an admin setting another user's password without the old one
// (users.Manager.SetPassword). Not for the admin's own: that goes through
// PUT /v1/me/password, which asks for the current password, so that a stolen
// admin session cannot lock the admin out.
func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		NewPassword     string `json:"new_password"`
		ConfirmPassword string `json:"confirm_password"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	if id == session(r).UserID {
		forbidden(w, "Change your own password with PUT /v1/me/password")
		return
	}
	if !required(w, "new_password", req.NewPassword) || !confirmed(w, req.NewPassword, req.ConfirmPassword) {
		return
	}
	if err := s.Users.SetPassword(r.Context(), id, req.NewPassword); err != nil {
		s.fail(w, r, rename(err, map[string]string{"password": "new_password"}))
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Password set; every session of the user has ended"})
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
// them in on a new email and fail on a taken one.
func (s *Server) signUp(w http.ResponseWriter, r *http.Request) {
	email, ok := s.emailRequest(w, r)
	if !ok {
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

// lockState shows support staff why a user cannot log in.
func (s *Server) lockState(w http.ResponseWriter, r *http.Request) {
	st, err := s.Users.LockState(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: st})
}

// unlock ends a user's login lock, a permanent one included.
func (s *Server) unlock(w http.ResponseWriter, r *http.Request) {
	if err := s.Users.Unlock(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Login lock ended"})
}

// ensureAdmin creates the first admin when the store has no users at all and
// returns it; it returns nil when the store has users. With an empty store and
// no email or password it fails, since nobody could ever sign in.
func ensureAdmin(ctx context.Context, m *users.Manager, email, password string) (*users.User, error) {
	n, err := m.Count(ctx, users.Filter{})
	if err != nil || n > 0 {
		return nil, err
	}
	if email == "" || password == "" {
		return nil, errors.New("the store is empty: give the first admin with -admin-email and $USERS_ADMIN_PASSWORD")
	}
	return m.Create(ctx, users.NewUser{Email: email, Password: password, FirstName: "Admin", Role: users.RoleAdmin})
}
