package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// enrol gives the user a TOTP factor through the library, with the test kit,
// and returns its secret and recovery codes; the clock is then past the step
// the enrolment used.
func (s *site) enrol(t *testing.T, userID string) (secret string, recovery []string) {
	t.Helper()
	f := &storetest.Fixture{M: s.users, Store: s.store, Clock: s.clock}
	return f.MustEnrolTOTP(t, userID)
}

// code returns the TOTP code of secret now, and moves the clock to the next
// step, so that the next code is not a replay.
func (s *site) code(t *testing.T, secret string) string {
	t.Helper()
	c := storetest.TOTPCode(t, secret, s.clock.Now())
	s.clock.Advance(30 * time.Second)
	return c
}

// setCookie returns the response's Set-Cookie for name, or nil.
func setCookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestMFA_SignIn signs a user with a second factor in through the HTTP layer:
// the password, or a magic link, leads to the code page (never a 500), a
// code or a recovery code completes it, and a right password followed by a
// right code leaves no failure counted.
func TestMFA_SignIn(t *testing.T) {
	s := newSite(t, false)
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	secret, recovery := s.enrol(t, ada.ID)

	t.Run("Password", func(t *testing.T) {
		b := s.browser(t)
		resp, body := b.post("/signin", url.Values{"csrf": {b.token("/signin")}, "identifier": {"ada@example.com"},
			"password": {pw}, "next": {"/admin/users"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin/code?next=%2Fadmin%2Fusers" {
			t.Fatalf("right password: %s to %q\n%s", resp.Status, resp.Header.Get("Location"), body)
		}
		c := setCookie(resp, s.app.challengeCookie)
		if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
			t.Errorf("challenge cookie %v: want HttpOnly, Secure, SameSite=Strict, Path=/", c)
		}
		if setCookie(resp, s.app.sessionCookie) != nil && b.cookie(s.app.sessionCookie) != "" {
			t.Fatal("a session before the second factor")
		}
		if resp, _ := b.get("/account"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("the account page before the second factor: %s", resp.Status)
		}
		codeForm := func(code string) (*http.Response, string) {
			return b.post("/signin/code", url.Values{"csrf": {b.token("/signin/code")}, "code": {code}, "next": {"/account"}})
		}
		resp, body = codeForm(storetest.WrongTOTPCode(t, secret, s.clock.Now(), 0))
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "The code is wrong.") {
			t.Errorf("a wrong code: %s\n%s", resp.Status, body)
		}
		resp, body = codeForm(s.code(t, secret))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
			t.Fatalf("the right code: %s to %q\n%s", resp.Status, resp.Header.Get("Location"), body)
		}
		if c := setCookie(resp, s.app.challengeCookie); c == nil || c.MaxAge >= 0 {
			t.Errorf("the challenge cookie stays: %v", c)
		}
		sess, err := s.users.ValidateToken(t.Context(), b.cookie(s.app.sessionCookie))
		if err != nil || sess.SecondFactorAt.IsZero() {
			t.Fatalf("the session: %+v, %v; want one with a second factor", sess, err)
		}
		if st, err := s.users.LockState(t.Context(), ada.ID); err != nil || st.ConsecutiveFailures != 0 {
			t.Errorf("after a right password and a right code: %+v, %v; want no failures", st, err)
		}
	})

	t.Run("MagicLink", func(t *testing.T) {
		b := s.browser(t)
		b.post("/magic", url.Values{"csrf": {b.token("/magic")}, "email": {"ada@example.com"}})
		link := strings.TrimPrefix(s.link(t, "ada@example.com", "Your sign-in link"), s.srv.URL)
		resp, body := b.post("/magic/signin", url.Values{"csrf": {b.token(link)}, "token": {strings.TrimPrefix(link, "/magic/signin?token=")}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin/code?next=%2Faccount" {
			t.Fatalf("the link of a user with a second factor: %s to %q\n%s", resp.Status, resp.Header.Get("Location"), body)
		}
		resp, body = b.post("/signin/code", url.Values{"csrf": {b.token("/signin/code")}, "code": {recovery[0]}, "next": {"/account"}})
		if resp.StatusCode != http.StatusSeeOther || b.cookie(s.app.sessionCookie) == "" {
			t.Fatalf("a recovery code: %s\n%s", resp.Status, body)
		}
		if st, _ := s.users.MFAStatus(t.Context(), ada.ID); st.RecoveryCodesLeft != len(recovery)-1 {
			t.Errorf("%d recovery codes left, want %d", st.RecoveryCodesLeft, len(recovery)-1)
		}
	})

	t.Run("NoChallenge", func(t *testing.T) {
		b := s.browser(t)
		if resp, _ := b.get("/signin/code"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
			t.Errorf("the code page without a challenge: %s to %q", resp.Status, resp.Header.Get("Location"))
		}
		resp, _ := b.post("/signin/code", url.Values{"csrf": {b.token("/signin")}, "code": {s.code(t, secret)}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" || b.cookie(s.app.sessionCookie) != "" {
			t.Errorf("a code without a challenge: %s to %q", resp.Status, resp.Header.Get("Location"))
		}
	})

	t.Run("WrongCodesLock", func(t *testing.T) {
		b := s.browser(t)
		b.post("/signin", url.Values{"csrf": {b.token("/signin")}, "identifier": {"ada@example.com"}, "password": {pw}})
		var resp *http.Response
		for i := range 3 { // MaxFailedLogins is 3, and the password's attempt counts until a code succeeds
			resp, _ = b.post("/signin/code", url.Values{"csrf": {b.token("/signin/code")}, "code": {storetest.WrongTOTPCode(t, secret, s.clock.Now(), i)}})
			if resp.StatusCode >= 500 {
				t.Fatalf("wrong code %d: %s", i, resp.Status)
			}
		}
		resp, body := b.post("/signin/code", url.Values{"csrf": {b.token("/signin")}, "code": {s.code(t, secret)}})
		if resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") == "/account" || b.cookie(s.app.sessionCookie) != "" {
			t.Errorf("the right code after the lock signed in: %s\n%s", resp.Status, body)
		}
	})
}

var (
	secretOnPage = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
	codesOnPage  = regexp.MustCompile(`<li><code>([0-9a-z-]+)</code></li>`)
)

// TestMFA_Enrol enrols through the account page: the QR code is shown inline
// with the one CSP change it needs, a wrong code enables nothing, and the
// right one shows the recovery codes once.
func TestMFA_Enrol(t *testing.T) {
	s := newSite(t, false)
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	b := s.browser(t)
	b.signIn("ada@example.com", pw)

	resp, body := b.post("/account/mfa/setup", url.Values{"csrf": {b.token("/account")}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `src="data:image/png;base64,`) {
		t.Fatalf("setup: %s\n%s", resp.Status, body)
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != cspWithQRCode || !strings.Contains(got, "img-src 'self' data:;") {
		t.Errorf("setup page CSP %q", got)
	}
	if got, _ := b.get("/account"); strings.Contains(got.Header.Get("Content-Security-Policy"), "data:") {
		t.Errorf("the account page allows data: images: %q", got.Header.Get("Content-Security-Policy"))
	}
	m := secretOnPage.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no key on the setup page:\n%s", body)
	}
	secret := m[1]
	resp, body = b.post("/account/mfa/confirm", url.Values{"csrf": {b.token("/account")}, "code": {storetest.WrongTOTPCode(t, secret, s.clock.Now(), 0)}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The code is wrong.") {
		t.Errorf("a wrong first code: %s\n%s", resp.Status, body)
	}
	if st, _ := s.users.MFAStatus(t.Context(), ada.ID); st.Enabled {
		t.Fatal("a wrong code enabled the factor")
	}
	resp, body = b.post("/account/mfa/confirm", url.Values{"csrf": {b.token("/account")}, "code": {s.code(t, secret)}})
	codes := codesOnPage.FindAllStringSubmatch(body, -1)
	if resp.StatusCode != http.StatusOK || len(codes) != 10 {
		t.Fatalf("the right first code: %s, %d recovery codes\n%s", resp.Status, len(codes), body)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("the recovery codes page: Cache-Control %q, want no-store", got)
	}
	if st, _ := s.users.MFAStatus(t.Context(), ada.ID); !st.Enabled || st.RecoveryCodesLeft != 10 {
		t.Errorf("after enrolment: %+v", st)
	}
	_, page := b.get("/account")
	if strings.Contains(page, codes[0][1]) || !strings.Contains(page, "Two-factor authentication is on") {
		t.Errorf("the account page after enrolment:\n%s", page)
	}
	s.link(t, "ada@example.com", "Two-factor authentication is on")
}

// TestMFA_StepUpAndDisable makes new recovery codes, which needs a second
// factor proven in the last freshSecondFactor (a step-up otherwise), and
// turns the second factor off with the password.
func TestMFA_StepUpAndDisable(t *testing.T) {
	s := newSite(t, false)
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	secret, recovery := s.enrol(t, ada.ID)
	b := s.browser(t)
	b.post("/signin", url.Values{"csrf": {b.token("/signin")}, "identifier": {"ada@example.com"}, "password": {pw}})
	b.post("/signin/code", url.Values{"csrf": {b.token("/signin/code")}, "code": {s.code(t, secret)}})

	newCodes := func() (*http.Response, string) {
		return b.post("/account/mfa/recovery", url.Values{"csrf": {b.token("/account")}})
	}
	if resp, body := newCodes(); resp.StatusCode != http.StatusOK || len(codesOnPage.FindAllString(body, -1)) != 10 {
		t.Fatalf("new codes right after sign-in: %s\n%s", resp.Status, body)
	}
	s.clock.Advance(freshSecondFactor + time.Second)
	resp, body := newCodes()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Confirm it is you") || codesOnPage.MatchString(body) {
		t.Fatalf("new codes with a stale second factor: %s\n%s", resp.Status, body)
	}
	resp, _ = b.post("/account/stepup", url.Values{"csrf": {b.token("/account")}, "code": {storetest.WrongTOTPCode(t, secret, s.clock.Now(), 1)}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong step-up code: %s", resp.Status)
	}
	resp, _ = b.post("/account/stepup", url.Values{"csrf": {b.token("/account")}, "code": {s.code(t, secret)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("step-up: %s", resp.Status)
	}
	resp, body = newCodes()
	fresh := codesOnPage.FindAllStringSubmatch(body, -1)
	if resp.StatusCode != http.StatusOK || len(fresh) != 10 {
		t.Fatalf("new codes after step-up: %s\n%s", resp.Status, body)
	}
	if _, err := s.users.StepUp(t.Context(), b.cookie(s.app.sessionCookie), recovery[0]); err == nil {
		t.Error("a recovery code of the first set still works")
	}

	disable := func(password, code string) (*http.Response, string) {
		return b.post("/account/mfa/disable", url.Values{"csrf": {b.token("/account")}, "mfa_password": {password}, "mfa_code": {code}})
	}
	if resp, body := disable("not the password", ""); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The password is wrong.") {
		t.Errorf("disable with a wrong password: %s\n%s", resp.Status, body)
	}
	if resp, body := disable(pw, fresh[0][1]); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not both") {
		t.Errorf("disable with both: %s\n%s", resp.Status, body)
	}
	if st, _ := s.users.MFAStatus(t.Context(), ada.ID); !st.Enabled {
		t.Fatal("refused attempts disabled the factor")
	}
	if resp, _ := disable(pw, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: %s", resp.Status)
	}
	if st, _ := s.users.MFAStatus(t.Context(), ada.ID); st.Enabled {
		t.Fatal("the factor is still on")
	}
	s.link(t, "ada@example.com", "Two-factor authentication is off")
	other := s.browser(t)
	other.signIn("ada@example.com", pw)
	if other.cookie(s.app.sessionCookie) == "" {
		t.Error("no session with the password alone after disabling")
	}
}

// TestAdminResetMFA removes a user's second factor as an admin: refused to an
// admin without a second factor of their own, a step-up for one whose proof
// is stale, done for one who proved it lately.
func TestAdminResetMFA(t *testing.T) {
	s := newSite(t, false)
	const apw = "the admin's password"
	admin := s.user(t, users.NewUser{Email: "admin@example.com", Password: apw, Role: users.RoleAdmin})
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: "ada's own password"})
	s.enrol(t, ada.ID)
	reset := func(b *browser) (*http.Response, string) {
		return b.post("/admin/users/"+ada.ID+"/mfa/reset", url.Values{"csrf": {b.token("/admin/users")}, "back": {"/admin/users?q=ada"}})
	}
	enabled := func() bool {
		st, err := s.users.MFAStatus(t.Context(), ada.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st.Enabled
	}

	b := s.browser(t)
	b.signIn("admin@example.com", apw)
	if resp, body := reset(b); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "needs your own") || !enabled() {
		t.Fatalf("an admin without a second factor: %s\n%s", resp.Status, body)
	}

	secret, _ := s.enrol(t, admin.ID)
	b = s.browser(t)
	b.post("/signin", url.Values{"csrf": {b.token("/signin")}, "identifier": {"admin@example.com"}, "password": {apw}})
	b.post("/signin/code", url.Values{"csrf": {b.token("/signin/code")}, "code": {s.code(t, secret)}})
	s.clock.Advance(freshSecondFactor + time.Second)
	if resp, body := reset(b); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Confirm it is you") || !enabled() {
		t.Fatalf("a stale second factor: %s\n%s", resp.Status, body)
	}
	resp, _ := b.post("/account/stepup", url.Values{"csrf": {b.token("/account")}, "code": {s.code(t, secret)}, "next": {"/admin/users?q=ada"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/users?q=ada" {
		t.Fatalf("step-up: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, body := reset(b); resp.StatusCode != http.StatusSeeOther || enabled() {
		t.Fatalf("a fresh second factor: %s\n%s", resp.Status, body)
	}
	s.link(t, "ada@example.com", "Two-factor authentication is off")
	if resp, _ := b.post("/admin/users/"+admin.ID+"/mfa/reset", url.Values{"csrf": {b.token("/admin/users")}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("one's own: %s", resp.Status)
	}
	if st, _ := s.users.MFAStatus(t.Context(), admin.ID); !st.Enabled {
		t.Error("an admin removed their own second factor on the admin page")
	}
}

// TestMFA_AccountChanges changes the email and the password of a user with a
// second factor: neither answers 500 (the email change checked the password
// by logging in, which answers such a user with a challenge), and signing in
// again after the password change goes through the code page.
func TestMFA_AccountChanges(t *testing.T) {
	s := newSite(t, false)
	const pw, pw2 = "ada's own password", "ada's second password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	secret, _ := s.enrol(t, ada.ID)
	b := s.browser(t)
	b.post("/signin", url.Values{"csrf": {b.token("/signin")}, "identifier": {"ada@example.com"}, "password": {pw}})
	b.post("/signin/code", url.Values{"csrf": {b.token("/signin/code")}, "code": {s.code(t, secret)}})

	resp, body := b.post("/account/email", url.Values{"csrf": {b.token("/account")}, "email": {"ada.lovelace@example.com"}, "email_password": {pw}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("email change: %s\n%s", resp.Status, body)
	}
	s.link(t, "ada.lovelace@example.com", "Confirm your new email")

	resp, body = b.post("/account/password", url.Values{"csrf": {b.token("/account")}, "current_password": {pw}, "new_password": {pw2}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin/code?next=%2Faccount" {
		t.Fatalf("password change: %s to %q\n%s", resp.Status, resp.Header.Get("Location"), body)
	}
	resp, _ = b.post("/signin/code", url.Values{"csrf": {b.token("/signin/code")}, "code": {s.code(t, secret)}, "next": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" || b.cookie(s.app.sessionCookie) == "" {
		t.Fatalf("the code after the password change: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if st, _ := s.users.LockState(t.Context(), ada.ID); st.ConsecutiveFailures != 0 {
		t.Errorf("%d failures counted after right passwords and codes", st.ConsecutiveFailures)
	}
}
