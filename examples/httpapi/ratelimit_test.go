package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/userkit/users"
)

// TestRateLimits: the API passes the client's address to the library, and a
// client over a limit gets 429 rate_limited with Retry-After, for logins and
// for the requests that work in the background alike; the account lockout's
// 429 says when it ends too.
func TestRateLimits(t *testing.T) {
	e := newEnvOpts(t, users.NewMemoryStore(), users.Options{
		MaxFailedLogins: 2,
		RateLimits: map[users.RateAction]users.RateLimit{
			users.ActionLogin:         {PerClient: 3, Window: time.Minute},
			users.ActionPasswordReset: {PerClient: 2, Window: time.Minute},
		},
	}, func(s *Server) { s.SignUp = true })
	wrong := fmt.Sprintf(`{"email":%q,"password":"not the password"}`, adminEmail)
	for range 2 {
		e.fail("POST", "/v1/auth/login", "", wrong, 401, "invalid_credentials", "")
	}
	r := e.fail("POST", "/v1/auth/login", "", wrong, 429, users.CodeAccountLocked, "")
	if got := r.Header.Get("Retry-After"); got != "900" {
		t.Errorf("the lockout's 429: Retry-After %q, want 900 (15 minutes)", got)
	}
	r = e.fail("POST", "/v1/auth/login", "", wrong, 429, users.CodeRateLimited, "")
	if got := r.Header.Get("Retry-After"); got != "60" {
		t.Errorf("the login limit's 429: Retry-After %q, want 60", got)
	}
	for range 2 {
		e.call("POST", "/v1/auth/password-reset", "", `{"email":"someone@example.com"}`, 202)
	}
	r = e.fail("POST", "/v1/auth/password-reset", "", `{"email":"someone@example.com"}`, 429, users.CodeRateLimited, "")
	if got := r.Header.Get("Retry-After"); got != "60" {
		t.Errorf("the password-reset limit's 429: Retry-After %q, want 60", got)
	}
	e.mail()
	def, _ := users.DefaultRateLimit(users.ActionSignUp)
	for range def.PerIdentifier {
		e.call("POST", "/v1/auth/signup", "", `{"email":"new@example.com"}`, 202)
	}
	e.fail("POST", "/v1/auth/signup", "", `{"email":"new@example.com"}`, 429, users.CodeRateLimited, "")
	e.mail()
	e.clock.Advance(time.Minute)
	e.call("POST", "/v1/auth/password-reset", "", `{"email":"someone@example.com"}`, 202)
}
