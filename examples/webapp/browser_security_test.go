package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// cookies returns the tab's cookies for the site as names and attributes,
// without their values, sorted.
func (b *tab) cookies(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, c := range b.siteCookies(t) {
		out = append(out, fmt.Sprintf("%s path=%s httponly=%v secure=%v samesite=%s session=%v",
			c.Name, c.Path, c.HTTPOnly, c.Secure, c.SameSite, c.Session))
	}
	slices.Sort(out)
	return out
}

// siteCookies returns the tab's cookies for the site.
func (b *tab) siteCookies(t *testing.T) []*network.Cookie {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	return res.Cookies
}

// TestBrowser_SignupNoOracle signs up in Chromium, each time in a new browser,
// with an email that has an account and with one that has none, and checks
// that the browser gets the same status, page (the address masked) and
// cookies; and that the address with an account is not given the password
// typed into an old form, while the other gets no account until its link is
// followed.
func TestBrowser_SignupNoOracle(t *testing.T) {
	ctx := newBrowser(t)
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "ada's own password"})
	root := &tab{ctx: ctx, base: s.srv.URL, shots: t.TempDir()}
	type answer struct {
		status  int64
		page    string
		cookies []string
	}
	signUp := func(email, subject string) answer {
		b := root.newTab(t)
		b.open(t, "/signup")
		b.fill(t, "email", email)
		st := b.click(t, "main form button")
		a := answer{status: st, page: strings.ReplaceAll(b.text(t, "body"), email, "EMAIL"), cookies: b.cookies(t)}
		s.link(t, email, subject)
		return a
	}
	known := signUp("ada@example.com", "You already have an account")
	unknown := signUp("nobody@example.com", "Create your account")
	if known.status != unknown.status || known.page != unknown.page {
		t.Errorf("different answers:\n%d %s\n---\n%d %s", known.status, known.page, unknown.status, unknown.page)
	}
	if !slices.Equal(known.cookies, unknown.cookies) {
		t.Errorf("different cookies:\n%q\n%q", known.cookies, unknown.cookies)
	}
	if known.status != 200 || !strings.Contains(known.page, "If the address can be used") {
		t.Errorf("answer %d:\n%s", known.status, known.page)
	}
	if _, err := s.users.GetByEmail(t.Context(), "nobody@example.com"); err == nil {
		t.Error("sign-up created an account before its link was followed")
	}
}

// TestBrowser_MFA walks the second factor in Chromium: re-authentication
// when the session is older than the library's ReauthWindow, enrolment with
// the QR code (which the page's CSP must let the browser draw), the recovery codes
// shown once, sign-in with a code after the password, sign-in with a
// recovery code after a magic link, a step-up before new recovery codes, and
// turning it off. Codes are made with the test kit's storetest.TOTPCode.
func TestBrowser_MFA(t *testing.T) {
	ctx := newBrowser(t)
	s := newSite(t, false)
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	shots := os.Getenv("WEBAPP_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	b := &tab{ctx: ctx, base: s.srv.URL, shots: shots}
	var secret string
	var recovery []string

	t.Run("Enrol", func(t *testing.T) {
		b.open(t, "/signin")
		b.fill(t, "identifier", "ada@example.com", "password", pw)
		b.click(t, "main form button")
		b.want(t, "Your account", "Two-factor authentication is off.")
		// Signed in a while ago: the library asks for the password again.
		s.clock.Advance(users.DefaultReauthWindow + time.Second)
		if st := b.click(t, `form[action="/account/mfa/setup"] button`); st != 403 {
			t.Errorf("enrolment with a stale session: status %d, want 403", st)
		}
		b.want(t, "Confirm it is you", "needs your password again")
		b.fill(t, "password", pw)
		b.click(t, "main form button")
		b.want(t, "Your account", "Confirmed. You can make the change now.")
		b.click(t, `form[action="/account/mfa/setup"] button`)
		b.want(t, "Set up two-factor authentication", "Scan this code")
		tctx, cancel := b.timeout()
		defer cancel()
		width, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.getElementById("totp-qr").naturalWidth`))
		if err != nil || width != 256 {
			t.Errorf("the QR code is %d pixels wide (%v), want 256: the browser did not draw it", width, err)
		}
		b.shot(t, "mfa-setup")
		secret = b.text(t, "#totp-secret")
		b.fill(t, "code", s.code(t, secret))
		b.click(t, `form[action="/account/mfa/confirm"] button`)
		b.want(t, "Your recovery codes", "They are shown only now.")
		recovery = strings.Fields(b.text(t, "#recovery-codes"))
		if len(recovery) != 10 {
			t.Fatalf("recovery codes %q, want 10", recovery)
		}
		b.open(t, "/account")
		b.want(t, "Your account", "Two-factor authentication is on", "You have 10 recovery codes left.")
		if strings.Contains(b.text(t, "main"), recovery[0]) {
			t.Error("the account page shows a recovery code again")
		}
	})
	t.Run("SignInWithCode", func(t *testing.T) {
		b.click(t, "header form button")
		b.open(t, "/signin")
		b.fill(t, "identifier", "ada@example.com", "password", pw)
		if st := b.click(t, "main form button"); st != 200 {
			t.Errorf("right password: status %d, want the code page", st)
		}
		b.want(t, "Enter your code")
		b.fill(t, "code", storetest.WrongTOTPCode(t, secret, s.clock.Now(), 0))
		if st := b.click(t, "main form button"); st != 401 {
			t.Errorf("wrong code: status %d, want 401", st)
		}
		b.want(t, "Enter your code", "The code is wrong.")
		b.fill(t, "code", s.code(t, secret))
		b.click(t, "main form button")
		b.want(t, "Your account", "You are signed in.")
		if st, _ := s.users.LockState(t.Context(), ada.ID); st.ConsecutiveFailures != 0 {
			t.Errorf("%d failures counted after the right code", st.ConsecutiveFailures)
		}
	})
	t.Run("MagicLinkWithRecoveryCode", func(t *testing.T) {
		b.click(t, "header form button")
		b.open(t, "/magic")
		b.fill(t, "email", "ada@example.com")
		b.click(t, "main form button")
		b.open(t, s.link(t, "ada@example.com", "Your sign-in link"))
		if st := b.click(t, "main form button"); st != 200 {
			t.Errorf("the magic link: status %d, want the code page", st)
		}
		b.want(t, "Enter your code")
		b.fill(t, "code", recovery[0])
		b.click(t, "main form button")
		b.want(t, "Your account", "You are signed in.", "You have 9 recovery codes left.")
	})
	t.Run("StepUpForNewRecoveryCodes", func(t *testing.T) {
		s.clock.Advance(freshSecondFactor + time.Second)
		if st := b.click(t, `form[action="/account/mfa/recovery"] button`); st != 403 {
			t.Errorf("new codes with a stale second factor: status %d, want 403", st)
		}
		b.want(t, "Confirm it is you")
		b.fill(t, "code", s.code(t, secret))
		b.click(t, "main form button")
		b.want(t, "Your account", "Code accepted.")
		b.click(t, `form[action="/account/mfa/recovery"] button`)
		b.want(t, "Your new recovery codes", "They are shown only now.")
		if got := strings.Fields(b.text(t, "#recovery-codes")); len(got) != 10 || got[0] == recovery[1] {
			t.Errorf("new recovery codes %q", got)
		}
	})
	t.Run("Disable", func(t *testing.T) {
		b.open(t, "/account")
		b.fill(t, "mfa_password", pw)
		b.click(t, `form[action="/account/mfa/disable"] button`)
		b.want(t, "Your account", "Two-factor authentication is off.")
		b.click(t, "header form button")
		b.open(t, "/signin")
		b.fill(t, "identifier", "ada@example.com", "password", pw)
		b.click(t, "main form button")
		b.want(t, "Your account", "You are signed in.")
	})
}
