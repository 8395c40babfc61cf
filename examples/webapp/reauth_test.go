package main

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// TestReauth checks the web app's answers to users.ErrReauthRequired: once the
// session's last proof is older than the library's ReauthWindow, enrolling a
// second factor shows the re-authentication page and changes nothing; a wrong
// password there does not help, the right one does; and the forms that carry
// the password (password and email changes, turning the factor off) prove it
// themselves.
func TestReauth(t *testing.T) {
	s := newSite(t, false)
	const pw, pw2 = "ada's own password", "ada's second password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	b := s.browser(t)
	b.signIn("ada@example.com", pw)
	stale := func() { s.clock.Advance(users.DefaultReauthWindow + time.Second) }

	stale()
	resp, body := b.post("/account/mfa/setup", url.Values{"csrf": {b.token("/account")}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Confirm it is you") || strings.Contains(body, "totp-secret") {
		t.Fatalf("enrolment with a stale session: %s\n%s", resp.Status, body)
	}
	if st, _ := s.users.MFAStatus(t.Context(), ada.ID); st.TOTPPending || st.Enabled {
		t.Fatalf("a refused enrolment left %+v", st)
	}
	resp, body = b.post("/account/reauth", url.Values{"csrf": {b.token("/account")}, "password": {"a guess"}, "next": {"/account"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "The password is wrong.") {
		t.Errorf("a wrong password: %s\n%s", resp.Status, body)
	}
	resp, _ = b.post("/account/reauth", url.Values{"csrf": {b.token("/account")}, "password": {pw}, "next": {"//evil.example"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("the right password: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, body := b.post("/account/mfa/setup", url.Values{"csrf": {b.token("/account")}}); resp.StatusCode != http.StatusOK || !secretOnPage.MatchString(body) {
		t.Fatalf("enrolment right after re-authentication: %s\n%s", resp.Status, body)
	}
	stale()
	resp, body = b.post("/account/email", url.Values{"csrf": {b.token("/account")}, "email": {"ada.lovelace@example.com"}, "email_password": {"a guess"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The password is wrong.") {
		t.Errorf("an email change with a wrong password and a stale session: %s\n%s", resp.Status, body)
	}
	resp, _ = b.post("/account/email", url.Values{"csrf": {b.token("/account")}, "email": {"ada.lovelace@example.com"}, "email_password": {pw}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Errorf("an email change with the password and a stale session: %s", resp.Status)
	}
	s.link(t, "ada.lovelace@example.com", "Confirm your new email")

	// The email change proved the password again: enrolment goes through.
	resp, body = b.post("/account/mfa/setup", url.Values{"csrf": {b.token("/account")}})
	m := secretOnPage.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("enrolment after re-authentication: %s\n%s", resp.Status, body)
	}
	resp, _ = b.post("/account/mfa/confirm", url.Values{"csrf": {b.token("/account")}, "code": {s.code(t, m[1])}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("confirming: %s", resp.Status)
	}

	// A user with a second factor may re-authenticate with a code; a form
	// whose proof is a code cannot use it twice, so it asks.
	stale()
	resp, body = b.post("/account/mfa/disable", url.Values{"csrf": {b.token("/account")}, "mfa_code": {storetest.WrongTOTPCode(t, m[1], s.clock.Now(), 0)}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `name="code"`) {
		t.Fatalf("disabling with a code and a stale session: %s\n%s", resp.Status, body)
	}
	resp, _ = b.post("/account/reauth", url.Values{"csrf": {b.token("/account")}, "code": {s.code(t, m[1])}, "next": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("re-authentication with a code: %s", resp.Status)
	}

	stale()
	resp, _ = b.post("/account/password", url.Values{"csrf": {b.token("/account")}, "current_password": {pw}, "new_password": {pw2}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a password change with a stale session: %s", resp.Status)
	}
	if _, err := s.users.Login(t.Context(), "ada@example.com", pw2); !errors.Is(err, users.ErrSecondFactorRequired) {
		t.Errorf("the new password: %v, want the second step", err)
	}
}
