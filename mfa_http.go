package users

import (
	"net/http"
	"time"
)

// Error codes of second-factor authentication (see HTTPError).
const (
	CodeMFARequired          = "mfa_required"           // 401: Login needs a second factor; the body carries the challenge
	CodeInvalidCode          = "invalid_code"           // 401: a wrong or used second-factor code
	CodeSecondFactorRequired = "second_factor_required" // 403: the session needs a (fresh) second factor: StepUp
	CodeMFAEnabled           = "mfa_enabled"            // 409: a second factor is enabled already
	CodeMFANotEnabled        = "mfa_not_enabled"        // 409: the user has no second factor (or enrolment)
)

// RequireSecondFactor returns a middleware that lets a request through only if
// the Session in its context (put there by Manager.Middleware, which must run
// first) proved a second factor, at login or by StepUp, at most maxAge ago (any
// time in the session's life when maxAge is zero or less). Otherwise it answers
// 403 with the code "second_factor_required" (the client should call StepUp
// and retry), or 401 "invalid_token" if the context holds no Session. Put it
// next to RequireRole on admin and other sensitive routes. It reads the
// Manager's clock. The middleware and its handlers are safe for concurrent use.
func (m *Manager) RequireSecondFactor(maxAge time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, ok := FromContext(r.Context())
			switch {
			case !ok:
				w.Header().Set("WWW-Authenticate", "Bearer")
				writeErrorBody(w, http.StatusUnauthorized, CodeInvalidToken, "Authentication required", "")
			case s.SecondFactorAt.IsZero(),
				maxAge > 0 && m.now().Sub(s.SecondFactorAt) > maxAge:
				writeErrorBody(w, http.StatusForbidden, CodeSecondFactorRequired, message(CodeSecondFactorRequired), "")
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}
