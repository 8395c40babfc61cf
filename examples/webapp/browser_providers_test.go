package main

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/userkit/users"
	"github.com/userkit/users/internal/oidctest"
)

// The accounts at the test provider.
var (
	provAda  = oidctest.Account{Subject: "sub-ada", Email: "ada@example.com", EmailVerified: true, Name: "Ada"}
	provNew  = oidctest.Account{Subject: "sub-new", Email: "newcomer@example.com", EmailVerified: true, Name: "Newcomer"}
	provTess = oidctest.Account{Subject: "sub-tess", Email: "tess@example.com", EmailVerified: true, Name: "Tess"}
	// provUnconfirmed's provider has not verified the address.
	provUnconfirmed = oidctest.Account{Subject: "sub-unconfirmed", Email: "unconfirmed@example.com", Name: "Una"}
)

// newProviderSite starts a site with the loopback OpenID Connect provider as
// its provider "test" ("Test provider"), configured as main does (anyone may
// sign up through it, no linking by email), and the provider's clock on the
// site's.
func newProviderSite(t *testing.T, dev bool) (*site, *oidctest.Server) {
	t.Helper()
	p := oidctest.New(t, provAda, provNew, provTess, provUnconfirmed)
	s := startSite(t, dev, "127.0.0.1", func(o *users.Options, base string) {
		o.Providers = []users.Provider{{Name: "test", DisplayName: "Test provider", Issuer: p.URL,
			ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: providerRedirectURL(base, "test"),
			AllowSignUp: true, HTTPClient: p.Client()}}
	})
	p.SetNow(s.clock.Now)
	return s, p
}

// requestLog keeps the URIs a site is asked for.
type requestLog struct {
	mu   sync.Mutex
	uris []string
}

// logRequests starts keeping the URIs s is asked for. Call it before the
// first request, as startSite sets the handler.
func logRequests(s *site) *requestLog {
	l := &requestLog{}
	h := s.srv.Config.Handler
	s.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.uris = append(l.uris, r.URL.RequestURI())
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
	return l
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.uris)
}

// sessionOf returns the session of the tab's session cookie, if it has a
// valid one.
func (s *site) sessionOf(t *testing.T, b *tab) (*users.Session, bool) {
	t.Helper()
	for _, c := range b.siteCookies(t) {
		if c.Name == s.app.sessionCookie {
			if sess, err := s.users.ValidateToken(t.Context(), c.Value); err == nil {
				return sess, true
			}
		}
	}
	return nil, false
}

// waitFor waits until the element css selects is on the page, as after a
// navigation the tab did not start itself (the continue page's refresh).
func (b *tab) waitFor(t *testing.T, css string) {
	t.Helper()
	b.do(t, "waiting for "+css, chromedp.WaitVisible(chromedp.CSS(css)))
}

// scrollTo scrolls the element css selects into view, for a screenshot.
func (b *tab) scrollTo(t *testing.T, css string) {
	t.Helper()
	b.do(t, "scrolling to "+css, chromedp.ScrollIntoView(chromedp.CSS(css)))
}

// do runs the action in the tab, failing t with what on an error.
func (b *tab) do(t *testing.T, what string, action chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	if err := chromedp.Do(ctx, action); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// location returns the tab's URL.
func (b *tab) location(t *testing.T) string {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// atProvider clicks the button css, which leads to the provider's page
// through the continue page, and there signs in as the account with
// subject (or cancels, with subject "deny"); it returns the status of the
// page the provider's redirect ends on.
func (b *tab) atProvider(t *testing.T, css, subject string) int64 {
	t.Helper()
	if st := b.click(t, css); st != http.StatusOK {
		t.Fatalf("the continue page: status %d", st)
	}
	target := "#account-" + subject
	if subject == "deny" {
		target = "#deny"
	}
	b.waitFor(t, target)
	return b.click(t, target)
}

// TestBrowser_Providers signs in through the loopback provider's own pages in
// Chromium, over HTTPS with the production cookies: sign-up through the
// provider, the "sign in to link" answer for an email with an account,
// linking from the account page, sign-in with the linked identity, unlinking
// (refused for the last way to sign in, shown on the page), the second step
// after an external sign-in for a user with TOTP, re-authentication through
// the provider for a user without a password, and the refusals of a
// cancelled sign-in and of a callback used twice.
func TestBrowser_Providers(t *testing.T) {
	ctx := newBrowser(t)
	s, _ := newProviderSite(t, false)
	log := logRequests(s)
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: provAda.Email, Password: pw})
	shots := os.Getenv("WEBAPP_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	b := &tab{ctx: ctx, base: s.srv.URL, shots: shots}

	t.Run("SignUpThroughTheProvider", func(t *testing.T) {
		one := b.newTab(t)
		one.open(t, "/signin")
		one.want(t, "Sign in", "Or sign in with a provider")
		one.shot(t, "signin-providers")
		if st := one.atProvider(t, "#signin-with-test", provNew.Subject); st != http.StatusOK {
			t.Errorf("status %d", st)
		}
		one.want(t, "Your account", "Welcome! Your account is ready.", "newcomer@example.com, confirmed.", "Test provider (newcomer@example.com)")
		if c := one.cookies(t); strings.Contains(strings.Join(c, "\n"), "__Host-provider") {
			t.Errorf("the flow cookie outlived the callback: %q", c)
		}
		// The provider is this account's only way to sign in.
		one.click(t, `form[action="/account/identities/unlink"] button`)
		one.want(t, "Your account", "This is your last way to sign in, so it stays linked.", "Test provider (newcomer@example.com)")
		one.scrollTo(t, "#identities-heading")
		one.shot(t, "account-providers")
		u, err := s.users.GetByEmail(t.Context(), provNew.Email)
		if err != nil {
			t.Fatal(err)
		}
		if ids, _ := s.users.ListIdentities(t.Context(), u.ID); len(ids) != 1 {
			t.Errorf("%d identities after the refused unlink, want 1", len(ids))
		}
	})
	t.Run("EmailWithAnAccountMustSignInToLink", func(t *testing.T) {
		one := b.newTab(t)
		one.open(t, "/signin")
		if st := one.atProvider(t, "#signin-with-test", provAda.Subject); st != http.StatusConflict {
			t.Errorf("status %d, want 409", st)
		}
		one.want(t, "Sign in to link Test provider", "An account with the email ada@example.com exists already", "Nothing was changed.")
		if ids, _ := s.users.ListIdentities(t.Context(), ada.ID); len(ids) != 0 {
			t.Errorf("ada has %d identities, want none", len(ids))
		}
		if _, ok := s.sessionOf(t, one); ok {
			t.Error("the browser is signed in")
		}
	})
	t.Run("LinkSignInUnlink", func(t *testing.T) {
		one := b.newTab(t)
		one.open(t, "/signin")
		one.fill(t, "identifier", provAda.Email, "password", pw)
		one.click(t, "main form button")
		one.want(t, "Your account", "No provider is linked")
		one.atProvider(t, "#link-test", provAda.Subject)
		one.want(t, "Your account", "The provider is linked: you can sign in with it.", "Test provider (ada@example.com)")

		one.click(t, "header form button")
		one.want(t, "Welcome", "You are signed out.")
		one.open(t, "/signin")
		one.atProvider(t, "#signin-with-test", provAda.Subject)
		one.want(t, "Your account", "You are signed in.", "ada@example.com, confirmed.")

		one.click(t, `form[action="/account/identities/unlink"] button`)
		one.want(t, "Your account", "The provider is unlinked.", "No provider is linked")
		if ids, _ := s.users.ListIdentities(t.Context(), ada.ID); len(ids) != 0 {
			t.Errorf("ada has %d identities after unlinking, want none", len(ids))
		}
	})
	t.Run("SecondStepAfterTheProvider", func(t *testing.T) {
		tess := s.user(t, users.NewUser{Email: provTess.Email, Password: "tess's own password"})
		one := b.newTab(t)
		one.open(t, "/signin")
		one.fill(t, "identifier", provTess.Email, "password", "tess's own password")
		one.click(t, "main form button")
		one.atProvider(t, "#link-test", provTess.Subject)
		one.want(t, "Your account", "The provider is linked")
		secret, _ := s.enrol(t, tess.ID)
		one.click(t, "header form button")

		one.open(t, "/signin?next=/account%3Ffrom%3Dprovider")
		if st := one.atProvider(t, "#signin-with-test", provTess.Subject); st != http.StatusOK {
			t.Errorf("status %d", st)
		}
		one.want(t, "Enter your code")
		if _, ok := s.sessionOf(t, one); ok {
			t.Fatal("signed in before the second step")
		}
		one.fill(t, "code", s.code(t, secret))
		one.click(t, "main form button")
		one.want(t, "Your account", "You are signed in.")
		if got := one.location(t); !strings.HasSuffix(got, "/account?from=provider") {
			t.Errorf("landed on %s, want the next path", got)
		}
	})
	t.Run("ReauthenticateThroughTheProvider", func(t *testing.T) {
		// A user without a password proves it is them again by signing in
		// with the provider: the re-authentication page offers it.
		one := b.newTab(t)
		one.open(t, "/signin")
		one.atProvider(t, "#signin-with-test", provNew.Subject) // signs up, unless the first subtest did
		one.want(t, "Your account")
		s.clock.Advance(users.DefaultReauthWindow + time.Second)
		if st := one.click(t, `form[action="/account/identities/unlink"] button`); st != http.StatusForbidden {
			t.Errorf("unlink with a stale session: status %d, want 403", st)
		}
		one.want(t, "Confirm it is you", "Or sign in with a provider")
		one.atProvider(t, "#signin-with-test", provNew.Subject)
		one.want(t, "Your account", "You are signed in.")
		one.click(t, `form[action="/account/identities/unlink"] button`)
		one.want(t, "Your account", "This is your last way to sign in, so it stays linked.")
	})
	t.Run("Cancelled", func(t *testing.T) {
		one := b.newTab(t)
		one.open(t, "/signin")
		if st := one.atProvider(t, "#signin-with-test", "deny"); st != http.StatusBadRequest {
			t.Errorf("status %d, want 400", st)
		}
		one.want(t, "Sign-in cancelled")
	})
	t.Run("CallbackUsedTwice", func(t *testing.T) {
		one := b.newTab(t)
		one.open(t, "/signin")
		one.atProvider(t, "#signin-with-test", provNew.Subject)
		one.want(t, "Your account", "You are signed in.")
		var callback string
		for _, e := range log.all() {
			if strings.HasPrefix(e, "/signin/with/test/callback?") {
				callback = e
			}
		}
		if callback == "" {
			t.Fatal("no callback seen")
		}
		if st := one.open(t, callback); st != http.StatusBadRequest {
			t.Errorf("the callback again: status %d, want 400", st)
		}
		one.want(t, "This sign-in has expired")
	})
}
