package users

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HTTP helpers for applications that serve this package over net/http. They
// read a bearer token, keep the validated Session in the request's context,
// reject requests without a session (401) or without an allowed role (403), and
// turn this package's errors into a status, a stable code and a JSON body:
//
//	{"success":false,"error":{"code":"duplicate_email","message":"A user with this email already exists"}}
//
// The codes are part of the API: clients may switch on them. The messages are
// English for people and may change.

// Error codes written by WriteError and the middleware, one per answer a client
// may need to tell apart.
const (
	CodeInvalidRequest     = "invalid_request"     // 400: a refused field; see the error's "field"
	CodeInvalidCredentials = "invalid_credentials" // 401: wrong identifier or password
	CodeInvalidToken       = "invalid_token"       // 401: missing, unknown, expired or revoked token
	CodeAccountDisabled    = "account_disabled"    // 403: the account is not active
	CodeEmailNotVerified   = "email_not_verified"  // 403: Options.RequireVerifiedEmail and an unverified email
	CodeForbidden          = "forbidden"           // 403: the session's role may not do this
	CodeReauthRequired     = "reauth_required"     // 403: prove the password again (Manager.Reauthenticate) or a second factor (StepUp), then retry
	CodeNotFound           = "not_found"           // 404
	CodeDuplicateEmail     = "duplicate_email"     // 409
	CodeDuplicateUsername  = "duplicate_username"  // 409
	CodeConflict           = "conflict"            // 409: a write lost a race; retrying may succeed
	CodeAccountLocked      = "account_locked"      // 429: too many failed logins; see Retry-After
	CodeRateLimited        = "rate_limited"        // 429: too many attempts from this client or for this identifier; see Retry-After
	CodeUnavailable        = "unavailable"         // 503: the request's context ended first
	CodeInternal           = "internal_error"      // 500: anything else

	CodeProviderFailed   = "provider_failed"     // 401: a sign-in with a provider was refused (state, provider's error or answer)
	CodeNoAccount        = "no_account"          // 403: no account has this identity, and the provider does not sign up
	CodeIdentityTaken    = "identity_taken"      // 409: the identity is linked to another user
	CodeLastSignInMethod = "last_sign_in_method" // 409: removing it would leave the user no way to sign in
)

// TokenFromRequest returns the bearer token of r: the credentials of an
// "Authorization: Bearer <token>" header (the scheme is matched without regard
// to case, RFC 9110 11.1), or else, when cookieName is not empty, the value of
// the cookie of that name. It returns "" when r carries neither. It does not
// validate the token; Manager.ValidateToken does. It is safe for concurrent use.
func TokenFromRequest(r *http.Request, cookieName string) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			if t := strings.TrimSpace(token); t != "" {
				return t
			}
		}
	}
	if cookieName != "" {
		if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// ClientFromRequest returns the Client of r as this server sees it: the host
// part of r.RemoteAddr and the User-Agent header. Behind a reverse proxy
// RemoteAddr is the proxy's address, and every client would count as one
// for the rate limits: there, name your proxies with TrustedProxies and put
// its Middleware outside ClientMiddleware or Middleware; they keep a Client
// that is already there. It is safe for concurrent use.
func ClientFromRequest(r *http.Request) Client {
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	return Client{IP: ip, UserAgent: r.UserAgent()}
}

// withRequestClient returns r's context with ClientFromRequest(r) in it,
// unless it has a Client already.
func withRequestClient(r *http.Request) context.Context {
	ctx := r.Context()
	if _, ok := ClientFromContext(ctx); ok {
		return ctx
	}
	return WithClient(ctx, ClientFromRequest(r))
}

// ClientMiddleware returns a handler that calls next with the request's
// Client in its context (ClientFromRequest, unless the context has one), so
// that the sessions Login creates and the audit entries of every Manager call
// made with that context record the client's IP address and user agent. Put it
// around handlers that Middleware does not guard, such as login. The handler
// is safe for concurrent use.
func ClientMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(withRequestClient(r)))
	})
}

// Middleware returns a handler that validates the request's bearer token (see
// TokenFromRequest for where it is read from) with ValidateToken and calls next
// with the Session in the request's context (see FromContext), and the
// request's Client too, as ClientMiddleware puts it there; the Session is the
// actor of the audit entries of calls made with that context. A request without
// a token, or whose token is invalid, is answered 401 with the code
// "invalid_token" and a WWW-Authenticate: Bearer header (RFC 6750), and never
// reaches next. A store failure is answered as WriteError answers it. The
// handler is safe for concurrent use.
func (m *Manager) Middleware(cookieName string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(withRequestClient(r))
		token := TokenFromRequest(r, cookieName)
		if token == "" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeErrorBody(w, http.StatusUnauthorized, CodeInvalidToken, "Authentication required", "")
			return
		}
		s, err := m.ValidateToken(r.Context(), token)
		if err != nil {
			WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), s)))
	})
}

// RequireRole returns a middleware that lets a request through only if the
// Session in its context (put there by Manager.Middleware, which must run first)
// has one of roles. Otherwise it answers 403 with the code "forbidden", or 401
// "invalid_token" if the context holds no Session at all. The role is the user's
// role as ValidateToken saw it, so a role change applies to the next request.
// The middleware and the handlers it returns are safe for concurrent use.
func RequireRole(roles ...Role) func(http.Handler) http.Handler {
	roles = slices.Clone(roles)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, ok := FromContext(r.Context())
			switch {
			case !ok || s.User == nil:
				w.Header().Set("WWW-Authenticate", "Bearer")
				writeErrorBody(w, http.StatusUnauthorized, CodeInvalidToken, "Authentication required", "")
			case !slices.Contains(roles, s.User.Role):
				writeErrorBody(w, http.StatusForbidden, CodeForbidden, "You do not have permission to do this", "")
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// HTTPError maps an error of this package to an HTTP status, a stable code (the
// Code constants) and, for a *ValidationError, the refused field (the first
// of ValidationErrors; its
// machine-readable ValidationCode is the error's Code, which WriteError writes
// as "reason"):
//
//	*ValidationError, ErrInvalidInput   400 invalid_request (with the field)
//	ErrInvalidCredentials               401 invalid_credentials
//	ErrInvalidToken                     401 invalid_token
//	ErrSecondFactorRequired (*Challenge) 401 mfa_required
//	ErrInvalidCode                      401 invalid_code
//	ErrPasskeyCloned                    401 passkey_cloned
//	ErrPasskeyRefused                   401 passkey_refused
//	ErrAccountDisabled                  403 account_disabled
//	ErrEmailNotVerified                 403 email_not_verified
//	ErrReauthRequired                   403 reauth_required
//	ErrNotFound, ErrUnknownEmail        404 not_found
//	ErrDuplicateEmail                   409 duplicate_email
//	ErrDuplicateUsername                409 duplicate_username
//	ErrConflict                         409 conflict
//	ErrMFAEnabled                       409 mfa_enabled
//	ErrMFANotEnabled                    409 mfa_not_enabled
//	ErrLastSignInMethod                 409 last_sign_in_method
//	ErrAccountLocked                    429 account_locked
//	ErrRateLimited                      429 rate_limited
//	ErrPasskeysNotConfigured            501 passkeys_not_configured
//	context.Canceled, DeadlineExceeded  503 unavailable
//	anything else                       500 internal_error
//
// ErrReauthRequired is 403, not 401: the session is valid, and the client
// should not log in again but call Manager.Reauthenticate (or StepUp) with
// it and retry. ErrUnknownEmail is mapped for completeness only: answer a password-reset or
// magic-link request for an unknown email exactly like a successful one, or the
// answer tells strangers who has an account. A nil err gives 200 and empty
// strings. The 503 for a context error is a choice: the request was not done,
// and when the client went away nobody reads the answer anyway. HTTPError is
// safe for concurrent use.
func HTTPError(err error) (status int, code, field string) {
	var ve *ValidationError
	switch {
	case err == nil:
		return http.StatusOK, "", ""
	case errors.As(err, &ve):
		return http.StatusBadRequest, CodeInvalidRequest, ve.Field
	case errors.Is(err, ErrInvalidInput):
		return http.StatusBadRequest, CodeInvalidRequest, ""
	case errors.Is(err, ErrInvalidCredentials):
		return http.StatusUnauthorized, CodeInvalidCredentials, ""
	case errors.Is(err, ErrInvalidToken):
		return http.StatusUnauthorized, CodeInvalidToken, ""
	case errors.Is(err, ErrSecondFactorRequired):
		return http.StatusUnauthorized, CodeMFARequired, ""
	case errors.Is(err, ErrInvalidCode):
		return http.StatusUnauthorized, CodeInvalidCode, ""
	case errors.Is(err, ErrPasskeyRefused), errors.Is(err, ErrPasskeysNotConfigured):
		status, code, _ := passkeyHTTPError(err) // passkey_http.go
		return status, code, ""
	case errors.Is(err, ErrMFAEnabled):
		return http.StatusConflict, CodeMFAEnabled, ""
	case errors.Is(err, ErrMFANotEnabled):
		return http.StatusConflict, CodeMFANotEnabled, ""
	case errors.Is(err, ErrAccountDisabled):
		return http.StatusForbidden, CodeAccountDisabled, ""
	case errors.Is(err, ErrEmailNotVerified):
		return http.StatusForbidden, CodeEmailNotVerified, ""
	case errors.Is(err, ErrReauthRequired):
		return http.StatusForbidden, CodeReauthRequired, ""
	case errors.Is(err, ErrProviderState), errors.Is(err, ErrProviderDenied), errors.Is(err, ErrProviderResponse):
		return http.StatusUnauthorized, CodeProviderFailed, ""
	case errors.Is(err, ErrNoAccount):
		return http.StatusForbidden, CodeNoAccount, ""
	case errors.Is(err, ErrIdentityTaken):
		return http.StatusConflict, CodeIdentityTaken, ""
	case errors.Is(err, ErrLastSignInMethod):
		return http.StatusConflict, CodeLastSignInMethod, ""
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnknownEmail), errors.Is(err, ErrUnknownProvider):
		return http.StatusNotFound, CodeNotFound, ""
	case errors.Is(err, ErrDuplicateEmail):
		return http.StatusConflict, CodeDuplicateEmail, ""
	case errors.Is(err, ErrDuplicateUsername):
		return http.StatusConflict, CodeDuplicateUsername, ""
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, CodeConflict, ""
	case errors.Is(err, ErrAccountLocked):
		return http.StatusTooManyRequests, CodeAccountLocked, ""
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests, CodeRateLimited, ""
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, CodeUnavailable, ""
	}
	return http.StatusInternalServerError, CodeInternal, ""
}

// message is the fixed English message of a code, for WriteError. The error's
// own text is never sent: it may carry a store's internals.
func message(code string) string {
	switch code {
	case CodeInvalidRequest:
		return "Invalid request"
	case CodeInvalidCredentials:
		return "Invalid email, username or password"
	case CodeInvalidToken:
		return "Invalid or expired token"
	case CodeAccountDisabled:
		return "This account is disabled"
	case CodeEmailNotVerified:
		return "This email address is not verified yet"
	case CodeForbidden:
		return "You do not have permission to do this"
	case CodeReauthRequired:
		return "Confirm your password (or a second factor) to do this"
	case CodeNotFound:
		return "Not found"
	case CodeDuplicateEmail:
		return "A user with this email already exists"
	case CodeDuplicateUsername:
		return "A user with this username already exists"
	case CodeConflict:
		return "The request conflicted with another change; try again"
	case CodeAccountLocked:
		return "Too many failed attempts; try again later"
	case CodeRateLimited:
		return "Too many attempts; try again later"
	case CodeUnavailable:
		return "The request could not be completed; try again"
	case CodeMFARequired:
		return "A second factor is required to complete the login"
	case CodeInvalidCode:
		return "Invalid or used code"
	case CodeSecondFactorRequired:
		return "Confirm with your second factor to do this"
	case CodeMFAEnabled:
		return "A second factor is already enabled"
	case CodeMFANotEnabled:
		return "No second factor is enabled"
	case CodeProviderFailed:
		return "Signing in with the provider did not work; try again"
	case CodeNoAccount:
		return "No account uses this sign-in"
	case CodeIdentityTaken:
		return "This sign-in is linked to another account"
	case CodeLastSignInMethod:
		return "This is the last way to sign in to this account"
	}
	if m := passkeyMessage(code); m != "" {
		return m
	}
	return "Internal server error"
}

// WriteError answers a request with err, mapped by HTTPError, as the JSON body
//
//	{"success":false,"error":{"code":"…","message":"…","field":"…","reason":"…",
//	  "fields":[{"field":"…","reason":"…","message":"…"}, …]}}
//
// where "field", "reason" and "fields" are present only for refused input:
// "reason" is the ValidationError's Code (such as "too_short"), stable, for
// clients to switch on or translate. The message is the ValidationError's
// field and reason ("Invalid email: must contain exactly one @"), which are
// safe to show, or a fixed message for the code: never the error's text,
// which may carry a store's internals. "field", "reason" and "message" are
// the first refused field's; "fields" lists every refused field (see
// FieldErrors), in the input's field order, each with the same three keys,
// so a client can show every error of a form at once. One refused field
// gives a "fields" of one. A 401 also gets a
// WWW-Authenticate: Bearer header, as RFC 9110 requires. A 429 whose err is
// a *LimitError with a RetryAfter (a rate limit, a timed lock) gets a
// Retry-After header in whole seconds, rounded up. WriteError logs nothing;
// log a 500's err yourself before calling it.
func WriteError(w http.ResponseWriter, err error) {
	status, code, field := HTTPError(err)
	msg, reason := message(code), ValidationCode("")
	var fields []fieldDetail
	for i, ve := range FieldErrors(err) {
		f := fieldDetail{Field: ve.Field, Reason: ve.Code, Message: "Invalid " + ve.Field + ": " + ve.Reason}
		if i == 0 {
			msg, reason = f.Message, f.Reason
		}
		fields = append(fields, f)
	}
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		if code == CodeInvalidToken {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		} else {
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
	}
	SetRetryAfter(w, err)
	writeError(w, status, errorDetail{Code: code, Message: msg, Field: field, Reason: reason, Fields: fields})
}

// SetRetryAfter sets the Retry-After header of w, in whole seconds rounded
// up (RFC 9110 10.2.3), when err is a *LimitError that says when to retry (a
// rate limit, a timed lock); otherwise it does nothing. WriteError calls it;
// call it yourself before answering such an error with a page of your own.
// It is safe for concurrent use on different writers.
func SetRetryAfter(w http.ResponseWriter, err error) {
	var le *LimitError
	if errors.As(err, &le) && le.RetryAfter > 0 {
		secs := (le.RetryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
}

type errorBody struct {
	Success bool        `json:"success"`
	Error   errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Field   string         `json:"field,omitempty"`
	Reason  ValidationCode `json:"reason,omitempty"`
	Fields  []fieldDetail  `json:"fields,omitempty"`
}

// fieldDetail is one refused field in an error body's "fields".
type fieldDetail struct {
	Field   string         `json:"field"`
	Reason  ValidationCode `json:"reason"`
	Message string         `json:"message"`
}

func writeErrorBody(w http.ResponseWriter, status int, code, msg, field string) {
	writeError(w, status, errorDetail{Code: code, Message: msg, Field: field})
}

func writeError(w http.ResponseWriter, status int, d errorDetail) {
	b, err := json.Marshal(errorBody{Error: d})
	if err != nil { // cannot happen: strings only
		b = []byte(`{"success":false,"error":{"code":"internal_error","message":"Internal server error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
