package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/userkit/users"
	"github.com/userkit/users/internal/browsertest"
)

// TestMain closes the headless Chromium that the browser tests share.
func TestMain(m *testing.M) { browsertest.Main(m) }

// newBrowser opens a tab in a fresh browser context (its own cookies and
// storage, as if another browser) of the headless Chromium the package's
// tests share, kept off the network except for the loopback test servers
// (see browsertest.Tab: it skips without Chromium, or with -short, except
// under CI=true). It marks the test parallel: a browser test spends most of
// its time waiting on round trips, each has its own site, and the tab's
// browser context keeps its cookies apart from the other tests'.
func newBrowser(t *testing.T) context.Context {
	t.Parallel()
	return browsertest.Tab(t)
}

// tab drives one browser tab against the site.
type tab struct {
	ctx   context.Context
	base  string
	shots string
}

// newTab opens a tab in a new browser context: its own cookies, as if another
// browser.
func (b *tab) newTab(t *testing.T) *tab {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return &tab{ctx: ctx, base: b.base, shots: b.shots}
}

func (b *tab) timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 30*time.Second)
}

// open navigates to path (or an absolute URL) and returns the HTTP status.
func (b *tab) open(t *testing.T, path string) int64 {
	t.Helper()
	if strings.HasPrefix(path, "/") {
		path = b.base + path
	}
	ctx, cancel := b.timeout()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(path))
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	return resp.Status
}

// fill sets form fields by element id.
func (b *tab) fill(t *testing.T, fields ...string) {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	for i := 0; i+1 < len(fields); i += 2 {
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#"+fields[i]), fields[i+1])); err != nil {
			t.Fatalf("filling #%s: %v", fields[i], err)
		}
	}
}

// click clicks the button that css selects, waits for the page it leads to and
// returns that page's HTTP status.
func (b *tab) click(t *testing.T, css string) int64 {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("clicking %s: %v", css, err)
	}
	return resp.Status
}

// text returns the text of the first element css selects.
func (b *tab) text(t *testing.T, css string) string {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("reading %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// want checks the page's heading and that its main text contains each of texts.
func (b *tab) want(t *testing.T, h1 string, texts ...string) {
	t.Helper()
	if got := b.text(t, "h1"); got != h1 {
		t.Fatalf("heading %q, want %q; page:\n%s", got, h1, b.text(t, "main"))
	}
	main := b.text(t, "main")
	for _, s := range texts {
		if !strings.Contains(main, s) {
			t.Fatalf("page %q lacks %q; it says:\n%s", h1, s, main)
		}
	}
}

// shot saves a screenshot of the viewport as name.png.
func (b *tab) shot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser walks the site's flows in headless Chromium, over HTTPS with the
// production cookies. Screenshots go to a temporary folder, or to
// $WEBAPP_SCREENSHOTS when set (how the README's pictures are made).
func TestBrowser(t *testing.T) {
	start := time.Now()
	ctx := newBrowser(t)
	s := newSite(t, false)
	shots := os.Getenv("WEBAPP_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	one := &tab{ctx: ctx, base: s.srv.URL, shots: shots}
	const pw1, pw2, pw3 = "first password of ada", "second password of ada", "third password of ada"

	t.Run("SignUp", func(t *testing.T) {
		one.open(t, "/signup")
		one.fill(t, "email", "ada@example.com")
		one.shot(t, "signup")
		one.click(t, "main form button")
		one.want(t, "Create an account", "If the address can be used, we have sent an email to it")
	})
	t.Run("FinishThroughTheLoggedLink", func(t *testing.T) {
		one.open(t, s.link(t, "ada@example.com", "Create your account"))
		one.want(t, "Create your account", "ada@example.com")
		one.fill(t, "username", "Ada", "password", pw1)
		one.click(t, "main form button")
		one.want(t, "Your account", "Welcome! Your account is ready.", "ada@example.com, confirmed.")
		one.click(t, "header form button")
		one.want(t, "Welcome", "You are signed out.")
	})
	t.Run("SignInByUsername", func(t *testing.T) {
		one.open(t, "/signin")
		one.fill(t, "identifier", "ada", "password", pw1)
		one.click(t, "main form button")
		one.want(t, "Your account", "You are signed in.", "ada@example.com, confirmed.")
		one.shot(t, "account")
	})
	t.Run("SignOut", func(t *testing.T) {
		one.click(t, "header form button")
		one.want(t, "Welcome", "You are signed out.")
		if st := one.open(t, "/account"); st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
		one.want(t, "Sign in") // sent to sign in
	})
	t.Run("WrongPassword", func(t *testing.T) {
		one.open(t, "/signin")
		one.fill(t, "identifier", "ada@example.com", "password", "not the password")
		if st := one.click(t, "main form button"); st != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", st)
		}
		one.want(t, "Sign in", "The email, username or password is wrong.")
	})
	t.Run("Lockout", func(t *testing.T) {
		s.user(t, users.NewUser{Email: "bob@example.com", Password: "bob's own password"})
		locked := false
		for i := 0; i < 4 && !locked; i++ { // MaxFailedLogins is 3
			one.open(t, "/signin")
			one.fill(t, "identifier", "bob@example.com", "password", "a wrong guess "+fmt.Sprint(i))
			one.click(t, "main form button")
			locked = strings.Contains(one.text(t, "main"), "sign-in is locked")
		}
		if !locked {
			t.Fatal("no lockout message after 4 wrong passwords")
		}
		one.open(t, "/signin")
		one.fill(t, "identifier", "bob@example.com", "password", "bob's own password")
		if st := one.click(t, "main form button"); st != http.StatusTooManyRequests {
			t.Errorf("right password while locked: status %d, want 429", st)
		}
		one.want(t, "Sign in", "Too many failed attempts")
	})
	t.Run("ResetPassword", func(t *testing.T) {
		one.open(t, "/forgot")
		one.fill(t, "email", "ada@example.com")
		one.click(t, "main form button")
		one.want(t, "Reset your password", "If the address can be used")
		one.open(t, s.link(t, "ada@example.com", "Reset your password"))
		one.fill(t, "password", pw2)
		one.click(t, "main form button")
		one.want(t, "Sign in", "Your password is changed.")
		one.fill(t, "identifier", "ada@example.com", "password", pw2)
		one.click(t, "main form button")
		one.want(t, "Your account", "You are signed in.")
		one.click(t, "header form button")
		one.want(t, "Welcome", "You are signed out.")
	})
	t.Run("MagicLink", func(t *testing.T) {
		one.open(t, "/magic")
		one.fill(t, "email", "ada@example.com")
		one.click(t, "main form button")
		one.want(t, "Sign in with a link", "If the address can be used")
		link := s.link(t, "ada@example.com", "Your sign-in link")
		one.open(t, link)
		one.click(t, "main form button")
		one.want(t, "Your account", "You are signed in.")
		one.open(t, link) // used up
		one.click(t, "main form button")
		one.want(t, "This link does not work")
	})
	two := one.newTab(t)
	t.Run("ChangePasswordSignsOutElsewhere", func(t *testing.T) {
		two.open(t, "/signin")
		two.fill(t, "identifier", "ada", "password", pw2)
		two.click(t, "main form button")
		two.want(t, "Your account")

		one.open(t, "/account")
		one.fill(t, "current_password", pw2, "new_password", pw3)
		one.click(t, `form[action="/account/password"] button`)
		one.want(t, "Your account", "Your password is changed. Your other sessions are signed out.")

		two.open(t, "/account")
		two.want(t, "Sign in") // the other browser was signed out
		one.open(t, "/account")
		one.want(t, "Your account") // this one was signed in again
	})
	t.Run("CrossOriginFormPostRefused", func(t *testing.T) {
		// Another origin on the same site (another port), so the SameSite=Lax
		// cookies do travel with its POST: only the CSRF defences stop it.
		evil := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<!doctype html><title>Win a prize</title>
<form method="post" action="%s/account/profile">
<input type="hidden" name="first_name" value="Mallory"><input type="hidden" name="username" value="mallory">
<button id="go">Claim</button></form>`, s.srv.URL)
		}))
		defer evil.Close()
		one.open(t, evil.URL)
		if st := one.click(t, "#go"); st != http.StatusForbidden {
			t.Errorf("status %d, want 403", st)
		}
		one.want(t, "Cross-origin request refused")
		if u, _ := s.users.GetByEmail(t.Context(), "ada@example.com"); u.FirstName != "" || u.Username != "ada" {
			t.Fatalf("the forged post changed the profile: %q %q", u.FirstName, u.Username)
		}
		// The same form from the site itself works.
		one.open(t, "/account")
		one.fill(t, "first_name", "Ada", "last_name", "Lovelace")
		one.click(t, `form[action="/account/profile"] button`)
		one.want(t, "Your account", "Your profile is saved.")
	})
	t.Run("Admin", func(t *testing.T) {
		s.user(t, users.NewUser{Email: "admin@example.com", Password: "the admin's password", Role: users.RoleAdmin, FirstName: "Grace"})
		for i := range 12 {
			if _, err := s.users.Create(t.Context(), users.NewUser{Email: fmt.Sprintf("user%02d@example.com", i),
				Password: "a password for filler", FirstName: "Filler", Role: users.RoleViewer}); err != nil {
				t.Fatal(err)
			}
		}
		total, _ := s.users.Count(t.Context(), users.Filter{})
		two.open(t, "/signin?next=/admin/users")
		two.fill(t, "identifier", "admin@example.com", "password", "the admin's password")
		two.click(t, "main form button")
		two.want(t, "Users", fmt.Sprintf("%d users, page 1 of 2.", total))
		two.click(t, `a[rel="next"]`)
		two.want(t, "Users", fmt.Sprintf("%d users, page 2 of 2.", total))

		two.open(t, "/admin/users?status=active&role=viewer")
		two.want(t, "Users", "12 users, page 1 of 2.")

		two.open(t, "/admin/users")
		two.fill(t, "q", "ada")
		two.click(t, ".filters button")
		two.want(t, "Users", "1 user, page 1 of 1.", "ada@example.com")
		ada, _ := s.users.GetByEmail(t.Context(), "ada@example.com")
		two.fill(t, "role-"+ada.ID, "viewer")
		two.click(t, `form[action="/admin/users/`+ada.ID+`/role"] button`)
		two.want(t, "Users", "The role is changed.", "1 user, page 1 of 1.")
		if u, _ := s.users.Get(t.Context(), ada.ID); u.Role != users.RoleViewer {
			t.Errorf("ada's role is %s, want viewer", u.Role)
		}

		bob, _ := s.users.GetByEmail(t.Context(), "bob@example.com")
		two.open(t, "/admin/users?q=bob")
		two.click(t, `form[action="/admin/users/`+bob.ID+`/status"] button`)
		two.want(t, "Users", "The account status is changed.", "suspended")
		if u, _ := s.users.Get(t.Context(), bob.ID); u.Status != users.StatusSuspended {
			t.Errorf("bob's status is %s, want suspended", u.Status)
		}
		two.open(t, "/admin/users")
		two.shot(t, "admin")

		// A viewer is not an admin.
		one.open(t, "/admin/users")
		one.want(t, "Not allowed")
	})
	t.Run("Invitation", func(t *testing.T) {
		two.open(t, "/admin/users")
		two.fill(t, "invite-email", "carol@example.com")
		two.click(t, `form[action="/admin/invite"] button`)
		two.want(t, "Users", "The invitation is sent.")
		three := one.newTab(t)
		three.open(t, s.link(t, "carol@example.com", "You are invited"))
		three.want(t, "Accept your invitation")
		three.fill(t, "password", "carol's chosen password")
		three.click(t, "main form button")
		three.want(t, "Your account", "Welcome! Your account is ready.", "carol@example.com, confirmed.")
	})
	t.Run("ChangeEmail", func(t *testing.T) {
		one.open(t, "/account")
		one.fill(t, "email", "ada.lovelace@example.com", "email_password", "not the password")
		one.click(t, `form[action="/account/email"] button`)
		one.want(t, "Your account", "The password is wrong.")
		one.fill(t, "email", "ada.lovelace@example.com", "email_password", pw3)
		one.click(t, `form[action="/account/email"] button`)
		one.want(t, "Your account", "If that address can be used", "Your email changes when you follow it.",
			"ada@example.com, confirmed.") // nothing changes before the link is followed
		s.link(t, "ada@example.com", "A change of your email was asked for")
		one.open(t, s.link(t, "ada.lovelace@example.com", "Confirm your new email"))
		one.want(t, "Confirm your new email")
		one.click(t, "main form button")
		one.want(t, "Your account", "Your email is changed.", "ada.lovelace@example.com, confirmed.")
	})
	t.Logf("browser flows took %v", time.Since(start).Round(time.Millisecond))
}

// TestBrowser_Dev signs in over plain HTTP with the -dev cookies, the way
// "go run ./examples/webapp -dev" is used.
func TestBrowser_Dev(t *testing.T) {
	ctx := newBrowser(t)
	s := newSite(t, true)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "ada's dev password"})
	b := &tab{ctx: ctx, base: s.srv.URL, shots: t.TempDir()}
	if !strings.HasPrefix(b.base, "http://127.0.0.1:") {
		t.Fatalf("not plain HTTP on loopback: %s", b.base)
	}
	b.open(t, "/signin")
	b.fill(t, "identifier", "ada@example.com", "password", "ada's dev password")
	b.click(t, "main form button")
	b.want(t, "Your account", "You are signed in.")
	b.click(t, "header form button")
	b.want(t, "Welcome", "You are signed out.")
}
